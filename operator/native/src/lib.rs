//! The scheduler's placement engine, compiled: QPU timelines, water-filled shot splits and the
//! placement of one job (see `qbackbone/core/scheduling/placement.py`, the reference). Every
//! function mirrors its Python namesake operation for operation (same float expressions in the
//! same order, same tie-breaking: Python's `min`/`max` keep the first of equal keys), so the
//! two engines produce the same plans; `tests/scheduling/test_native_placement.py` checks it.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::sync::Arc;

const INF: f64 = f64::INFINITY;
/// `timing.TIME_EPS`: the absolute tolerance of "on time".
const TIME_EPS: f64 = 1e-9;

/// A QPU's busy intervals, sorted and non-overlapping (so `ends` is sorted too).
#[derive(Clone, Default)]
struct Timeline {
    starts: Vec<f64>,
    ends: Vec<f64>,
}

impl Timeline {
    fn inserted(&self, start: f64, end: f64) -> Timeline {
        let i = self.starts.partition_point(|&v| v <= start); // bisect_right
        let mut starts = Vec::with_capacity(self.starts.len() + 1);
        starts.extend_from_slice(&self.starts[..i]);
        starts.push(start);
        starts.extend_from_slice(&self.starts[i..]);
        let mut ends = Vec::with_capacity(self.ends.len() + 1);
        ends.extend_from_slice(&self.ends[..i]);
        ends.push(end);
        ends.extend_from_slice(&self.ends[i..]);
        Timeline { starts, ends }
    }

    /// Earliest start >= max(release, ready) where `duration` fits between busy intervals.
    fn earliest_fit(&self, release: f64, ready: f64, duration: f64) -> f64 {
        let mut t = if release > ready { release } else { ready };
        let ends = &self.ends;
        match ends.last() {
            None => return t,
            Some(&last) if last <= t => return t,
            _ => {}
        }
        let mut i = ends.partition_point(|&v| v <= t); // bisect_right
        while i < ends.len() {
            if self.starts[i] >= t + duration {
                return t;
            }
            if ends[i] > t {
                t = ends[i];
            }
            i += 1;
        }
        t
    }

    /// Start of the first busy interval at or after `t` (`inf` if none).
    fn gap_end(&self, t: f64) -> f64 {
        let i = self.starts.partition_point(|&v| v < t); // bisect_left
        if i < self.starts.len() {
            self.starts[i]
        } else {
            INF
        }
    }
}

/// Every QPU's timeline; copies share the timelines they did not change.
#[pyclass(module = "qbackbone.core.scheduling._placement")]
#[derive(Clone)]
struct Busy {
    lines: Vec<Arc<Timeline>>,
}

#[pymethods]
impl Busy {
    /// An independent copy (the timelines are shared until one of them changes).
    fn copy(&self) -> Busy {
        self.clone()
    }

    /// Mark QPU `q` busy over [start, end).
    fn insert(&mut self, q: usize, start: f64, end: f64) -> PyResult<()> {
        let line = self.lines.get(q).ok_or_else(|| PyValueError::new_err("no such QPU"))?;
        self.lines[q] = Arc::new(line.inserted(start, end));
        Ok(())
    }

    /// The same timelines (by identity, as the Python engine compares them).
    fn same(&self, other: &Busy) -> bool {
        self.lines.len() == other.lines.len()
            && self.lines.iter().zip(&other.lines).all(|(a, b)| Arc::ptr_eq(a, b))
    }

    /// The timelines as ((starts...), (ends...)) per QPU, as the Python engine keeps them.
    fn timelines(&self) -> Vec<(Vec<f64>, Vec<f64>)> {
        self.lines.iter().map(|l| (l.starts.clone(), l.ends.clone())).collect()
    }
}

struct Job {
    release: f64,
    deadline: f64,
    topo: Vec<usize>,
    preds: Vec<Vec<usize>>,
    eligible: Vec<Vec<usize>>,
    remaining: Vec<i64>,
    fixed_end: Vec<f64>,
    splittable: bool,
    feasible: bool,
}

/// One fragment: (subcircuit, qpu, shots, start, end).
type Placed = (usize, usize, i64, f64, f64);
type JobSpec = (f64, f64, Vec<usize>, Vec<Vec<usize>>, Vec<Vec<usize>>, Vec<i64>, Vec<f64>, bool);

/// A problem in index form (the compiled twin of `placement.Compiled`).
#[pyclass(module = "qbackbone.core.scheduling._placement", frozen)]
struct Engine {
    rate: Vec<f64>,
    setup: Vec<f64>,
    release: Vec<f64>,
    base: Vec<Arc<Timeline>>,
    min_fragment: f64,
    jobs: Vec<Job>,
}

#[pymethods]
impl Engine {
    /// `jobs`: per job (release, deadline, topo, preds, eligible, remaining, fixed_end,
    /// splittable); `base`: per QPU (starts, ends) of the fragments that already run.
    #[new]
    fn new(
        rate: Vec<f64>,
        setup: Vec<f64>,
        release: Vec<f64>,
        base: Vec<(Vec<f64>, Vec<f64>)>,
        min_fragment: f64,
        jobs: Vec<JobSpec>,
    ) -> PyResult<Engine> {
        let nq = rate.len();
        if setup.len() != nq || release.len() != nq || base.len() != nq {
            return Err(PyValueError::new_err("per-QPU lists differ in length"));
        }
        let mut out = Vec::with_capacity(jobs.len());
        for (release_j, deadline, topo, preds, eligible, remaining, fixed_end, splittable) in jobs
        {
            let ns = remaining.len();
            let ok = topo.len() == ns
                && preds.len() == ns
                && eligible.len() == ns
                && fixed_end.len() == ns
                && topo.iter().all(|&s| s < ns)
                && preds.iter().flatten().all(|&p| p < ns)
                && eligible.iter().flatten().all(|&q| q < nq);
            if !ok {
                return Err(PyValueError::new_err("malformed job data"));
            }
            let feasible =
                eligible.iter().zip(&remaining).all(|(e, &r)| !e.is_empty() || r == 0);
            out.push(Job {
                release: release_j,
                deadline,
                topo,
                preds,
                eligible,
                remaining,
                fixed_end,
                splittable,
                feasible,
            });
        }
        let base = base
            .into_iter()
            .map(|(starts, ends)| Arc::new(Timeline { starts, ends }))
            .collect();
        Ok(Engine { rate, setup, release, base, min_fragment, jobs: out })
    }

    /// The timelines before any job is placed.
    fn fresh(&self) -> Busy {
        Busy { lines: self.base.clone() }
    }

    /// Place every remaining shot of job `j` into `busy` (modified): see
    /// `placement.place_job`. `choices`: per subcircuit None or a tuple of QPU indices.
    fn place_job(
        &self,
        mut busy: PyRefMut<'_, Busy>,
        j: usize,
        choices: Vec<Option<Vec<usize>>>,
        split: bool,
    ) -> PyResult<(Vec<Placed>, f64)> {
        let jd = self.jobs.get(j).ok_or_else(|| PyValueError::new_err("no such job"))?;
        if choices.len() != jd.remaining.len()
            || choices.iter().flatten().flatten().any(|&q| q >= self.rate.len())
        {
            return Err(PyValueError::new_err("malformed choices"));
        }
        if !jd.feasible {
            return Ok((Vec::new(), INF));
        }
        if split && choices.iter().any(|c| c.is_none()) {
            let mut trial = busy.lines.clone();
            let (placed, finish) = self.place(&mut trial, jd, &choices, split, false);
            if finish <= jd.deadline + TIME_EPS {
                busy.lines = trial;
                return Ok((placed, finish));
            }
        }
        Ok(self.place(&mut busy.lines, jd, &choices, split, true))
    }
}

impl Engine {
    fn place(
        &self,
        busy: &mut [Arc<Timeline>],
        jd: &Job,
        choices: &[Option<Vec<usize>>],
        split: bool,
        auto_split: bool,
    ) -> (Vec<Placed>, f64) {
        let mut end = jd.fixed_end.clone();
        let mut placed: Vec<Placed> = Vec::new();
        for &s in &jd.topo {
            let shots = jd.remaining[s];
            if shots == 0 {
                continue;
            }
            let mut ready = jd.release;
            for &p in &jd.preds[s] {
                if end[p] > ready {
                    ready = end[p];
                }
            }
            let choice = &choices[s];
            let pool = match choice {
                Some(c) if !c.is_empty() => c,
                _ => &jd.eligible[s],
            };
            let cands: Vec<usize> = pool.iter().copied().filter(|&q| self.release[q] < INF).collect();
            if cands.is_empty() {
                return (Vec::new(), INF);
            }
            if split && jd.splittable && cands.len() > 1 && (choice.is_some() || auto_split) {
                let mf = if choice.is_none() { self.min_fragment } else { 0.0 };
                for (q, n, st, en) in self.place_split(busy, &cands, ready, shots, mf) {
                    busy[q] = Arc::new(busy[q].inserted(st, en));
                    placed.push((s, q, n, st, en));
                    if en > end[s] {
                        end[s] = en;
                    }
                }
            } else {
                let (q, st, en) = self.place_single(busy, &cands, ready, shots);
                let q = q.unwrap_or(busy.len() - 1); // as Python's busy[-1]; never with finite times
                busy[q] = Arc::new(busy[q].inserted(st, en));
                placed.push((s, q, shots, st, en));
                if en > end[s] {
                    end[s] = en;
                }
            }
        }
        let mut finish = -INF;
        for &e in &end {
            if e > finish {
                finish = e;
            }
        }
        (placed, finish)
    }

    fn place_single(
        &self,
        busy: &[Arc<Timeline>],
        cands: &[usize],
        ready: f64,
        shots: i64,
    ) -> (Option<usize>, f64, f64) {
        let mut best = (None, INF, INF);
        for &q in cands {
            let dur = self.setup[q] + shots as f64 * self.rate[q];
            let s = busy[q].earliest_fit(self.release[q], ready, dur);
            if s + dur < best.2 {
                best = (Some(q), s, s + dur);
            }
        }
        best
    }

    fn place_split(
        &self,
        busy: &[Arc<Timeline>],
        cands: &[usize],
        ready: f64,
        shots: i64,
        min_fragment: f64,
    ) -> Vec<(usize, i64, f64, f64)> {
        let mut starts: Vec<f64> =
            cands.iter().map(|&q| busy[q].earliest_fit(self.release[q], ready, 0.0)).collect();
        let first = starts.clone();
        let rates: Vec<f64> = cands.iter().map(|&q| self.rate[q]).collect();
        let mins: Vec<f64> = cands.iter().map(|&q| min_fragment * self.setup[q]).collect();
        let mut n: Vec<i64> = Vec::new();
        let mut conflict = false;
        let mut moved_out: Option<Vec<(usize, i64, f64, f64)>> = None;
        for _ in 0..3 {
            let avail: Vec<f64> =
                starts.iter().zip(cands).map(|(&s, &q)| s + self.setup[q]).collect();
            n = waterfill(shots, &avail, &rates, &mins);
            let mut fits = Vec::new();
            let mut moved = false;
            for (k, &q) in cands.iter().enumerate() {
                if n[k] != 0 {
                    let dur = self.setup[q] + n[k] as f64 * rates[k];
                    let s = busy[q].earliest_fit(self.release[q], ready, dur);
                    fits.push((q, n[k], s, s + dur));
                    if s > starts[k] + 1e-12 {
                        starts[k] = s;
                        moved = true;
                    }
                }
            }
            if !moved {
                moved_out = Some(fits);
                break;
            }
            conflict = true;
        }
        let moved_out = match moved_out {
            Some(m) => m,
            None => {
                let mut m = Vec::new();
                for (k, &q) in cands.iter().enumerate() {
                    if n[k] != 0 {
                        let dur = self.setup[q] + n[k] as f64 * rates[k];
                        let s = busy[q].earliest_fit(self.release[q], ready, dur);
                        m.push((q, n[k], s, s + dur));
                    }
                }
                m
            }
        };
        if !conflict {
            return moved_out;
        }
        // the uneven alternative: every QPU keeps its first gap, shares capped to what it holds
        let avail: Vec<f64> = first.iter().zip(cands).map(|(&s, &q)| s + self.setup[q]).collect();
        let caps: Vec<f64> = cands
            .iter()
            .enumerate()
            .map(|(k, &q)| {
                let g = busy[q].gap_end(first[k]);
                if g < INF {
                    ((g - avail[k]) / rates[k]).floor().max(0.0)
                } else {
                    INF
                }
            })
            .collect();
        let capped = match waterfill_capped(shots, &avail, &rates, &mins, &caps) {
            Some(c) => c,
            None => return moved_out,
        };
        let uneven: Vec<(usize, i64, f64, f64)> = cands
            .iter()
            .enumerate()
            .filter(|(k, _)| capped[*k] != 0)
            .map(|(k, &q)| (q, capped[k], first[k], first[k] + self.setup[q] + capped[k] as f64 * rates[k]))
            .collect();
        if latest(&uneven) < latest(&moved_out) - 1e-12 {
            return uneven;
        }
        moved_out
    }
}

fn latest(frags: &[(usize, i64, f64, f64)]) -> f64 {
    frags.iter().fold(-INF, |m, f| if f.3 > m { f.3 } else { m })
}

fn cmp_f64(a: f64, b: f64) -> std::cmp::Ordering {
    a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal)
}

/// Integer split of `shots` minimising the latest finish (see `placement.waterfill`).
fn waterfill(shots: i64, avail: &[f64], rate: &[f64], min_time: &[f64]) -> Vec<i64> {
    let k = avail.len();
    if k == 1 {
        return vec![shots];
    }
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| cmp_f64(avail[a], avail[b])); // stable, as Python's sorted
    let (mut inv, mut weighted, mut finish, mut used) = (0.0f64, 0.0f64, INF, 0usize);
    for (pos, &q) in order.iter().enumerate() {
        let a = avail[q];
        if pos > 0 && finish <= a {
            break;
        }
        let new_inv = inv + 1.0 / rate[q];
        let new_weighted = weighted + a / rate[q];
        let new_finish = (shots as f64 + new_weighted) / new_inv;
        if pos > 0 && new_finish - a < min_time[q] {
            break;
        }
        inv = new_inv;
        weighted = new_weighted;
        finish = new_finish;
        used = pos + 1;
    }
    let mut n = vec![0i64; k];
    if used == 1 {
        n[order[0]] = shots;
        return n;
    }
    let active = &order[..used];
    let mut total = 0i64;
    for &q in active {
        let v = ((finish - avail[q]) / rate[q] + 1e-9).floor().max(0.0) as i64;
        n[q] = v;
        total += v;
    }
    while total > shots {
        // rounding noise: take back from the latest finisher (the first of equals)
        let mut pick: Option<(usize, f64)> = None;
        for &i in active {
            if n[i] != 0 {
                let key = avail[i] + n[i] as f64 * rate[i];
                if pick.map_or(true, |(_, best)| key > best) {
                    pick = Some((i, key));
                }
            }
        }
        let q = pick.expect("some QPU holds shots").0;
        n[q] -= 1;
        total -= 1;
    }
    while total < shots {
        // the few leftover shots go where they finish first (the first of equals)
        let mut pick: Option<(usize, f64)> = None;
        for &i in active {
            let key = avail[i] + (n[i] + 1) as f64 * rate[i];
            if pick.map_or(true, |(_, best)| key < best) {
                pick = Some((i, key));
            }
        }
        let q = pick.expect("some QPU is active").0;
        n[q] += 1;
        total += 1;
    }
    n
}

/// `waterfill` where QPU k takes at most `cap[k]` shots (see `placement.waterfill_capped`).
fn waterfill_capped(
    shots: i64,
    avail: &[f64],
    rate: &[f64],
    min_time: &[f64],
    cap: &[f64],
) -> Option<Vec<i64>> {
    let k = avail.len();
    let mut n = vec![0i64; k];
    let mut pool: Vec<usize> = (0..k).collect();
    let mut left = shots;
    while left > 0 {
        if pool.is_empty() {
            return None;
        }
        let a: Vec<f64> = pool.iter().map(|&i| avail[i]).collect();
        let r: Vec<f64> = pool.iter().map(|&i| rate[i]).collect();
        let m: Vec<f64> = pool.iter().map(|&i| min_time[i]).collect();
        let part = waterfill(left, &a, &r, &m);
        let over: Vec<usize> = pool
            .iter()
            .zip(&part)
            .filter(|(&i, &v)| v as f64 > cap[i])
            .map(|(&i, _)| i)
            .collect();
        if over.is_empty() {
            for (&i, &v) in pool.iter().zip(&part) {
                n[i] += v;
            }
            return Some(n);
        }
        for i in over {
            let take = cap[i] as i64;
            if take > 0 && take as f64 * rate[i] >= min_time[i] {
                n[i] = take;
                left -= take;
            }
            pool.retain(|&x| x != i);
        }
    }
    Some(n)
}

/// `placement.waterfill`, for the tests that compare the engines.
#[pyfunction(name = "waterfill")]
fn py_waterfill(shots: i64, avail: Vec<f64>, rate: Vec<f64>, min_time: Vec<f64>) -> PyResult<Vec<i64>> {
    if avail.is_empty() || rate.len() != avail.len() || min_time.len() != avail.len() {
        return Err(PyValueError::new_err("avail, rate and min_time must be equal and non-empty"));
    }
    Ok(waterfill(shots, &avail, &rate, &min_time))
}

#[pymodule]
fn _placement(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Engine>()?;
    m.add_class::<Busy>()?;
    m.add_function(wrap_pyfunction!(py_waterfill, m)?)?;
    Ok(())
}
