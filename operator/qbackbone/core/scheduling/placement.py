"""The placement engine shared by the heuristics: QPU timelines, water-filled shot splits and a
serial decoder that places jobs one after another (gaps may be filled, nothing moves back).

A *choice* for a subcircuit is ``None`` (automatic: all eligible QPUs with shot splitting, the
earliest-finishing QPU without) or a tuple of QPU indices to water-fill over.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from .model import Fragment, Problem, Schedule
from .timing import on_time

Interval = tuple[float, float]
#: A QPU's busy intervals as (starts, ends), sorted, non-overlapping (so ends are sorted too).
Timeline = tuple[tuple[float, ...], tuple[float, ...]]
Choice = tuple[int, ...] | None
Placed = tuple[int, int, int, float, float]  # subcircuit, qpu index, shots, start, end

_INF = float("inf")

#: A split fragment's shots must take at least this many times its QPU's setup time
#: (otherwise the QPU is left out of the split): splitting pays only for long subcircuits.
MIN_FRAGMENT = 2.0


@dataclass(frozen=True, slots=True)
class JobData:
    """Per-job facts the decoder needs, computed once per problem."""

    index: int
    name: str
    release: float
    deadline: float
    topo: tuple[int, ...]
    preds: tuple[tuple[int, ...], ...]
    eligible: tuple[tuple[int, ...], ...]
    remaining: tuple[int, ...]
    fixed_end: tuple[float, ...]
    committed: bool
    splittable: bool = True

    @property
    def feasible(self) -> bool:
        """Every subcircuit with shots left has at least one eligible QPU."""
        return all(e or r == 0 for e, r in zip(self.eligible, self.remaining, strict=True))


class Compiled:
    """A problem in index form: QPU rates, release times, base timelines, job data."""

    def __init__(self, problem: Problem, min_fragment: float = MIN_FRAGMENT) -> None:
        self.problem = problem
        self.min_fragment = min_fragment
        self.qpus = problem.qpus
        qindex = {q.name: i for i, q in enumerate(problem.qpus)}
        self.rate = [q.shot_time for q in problem.qpus]
        self.setup = [q.setup_time for q in problem.qpus]
        self.release = [max(problem.now, q.available_at) for q in problem.qpus]
        base: list[list[Interval]] = [[] for _ in problem.qpus]
        for f in problem.fixed:
            base[qindex[f.qpu]].append((f.start, f.end))
        self.base: list[Timeline] = []
        for iv in base:
            iv.sort()
            self.base.append((tuple(a for a, _ in iv), tuple(b for _, b in iv)))
        self.jobs: list[JobData] = []
        for ji, job in enumerate(problem.jobs):
            fixed = [f for f in problem.fixed if f.job == job.name]
            remaining = [s.shots for s in job.subcircuits]
            fixed_end = [-_INF] * len(job.subcircuits)
            for f in fixed:
                remaining[f.subcircuit] -= f.shots
                fixed_end[f.subcircuit] = max(fixed_end[f.subcircuit], f.end)
            eligible = tuple(
                tuple(qi for qi, q in enumerate(problem.qpus) if q.can_run(s))
                for s in job.subcircuits
            )
            self.jobs.append(
                JobData(
                    index=ji,
                    name=job.name,
                    release=max(job.arrival, problem.now),
                    deadline=job.deadline,
                    topo=tuple(job.topological_order()),
                    preds=tuple(tuple(p) for p in job.predecessors()),
                    eligible=eligible,
                    remaining=tuple(max(0, r) for r in remaining),
                    fixed_end=tuple(fixed_end),
                    committed=bool(fixed),
                    splittable=job.splittable,
                )
            )

    def fresh(self) -> list[Timeline]:
        return list(self.base)


def earliest_fit(timeline: Timeline, release: float, ready: float, duration: float) -> float:
    """Earliest start >= max(release, ready) where ``duration`` fits between busy intervals."""
    t = release if release > ready else ready
    starts, ends = timeline
    if not ends or ends[-1] <= t:
        return t
    i = bisect_right(ends, t)
    n = len(ends)
    while i < n:
        if starts[i] >= t + duration:
            return t
        if ends[i] > t:
            t = ends[i]
        i += 1
    return t


def insert(timeline: Timeline, start: float, end: float) -> Timeline:
    starts, ends = timeline
    i = bisect_right(starts, start)
    return ((*starts[:i], start, *starts[i:]), (*ends[:i], end, *ends[i:]))


def waterfill(
    shots: int, avail: Sequence[float], rate: Sequence[float], min_time: Sequence[float]
) -> list[int]:
    """Integer split of ``shots`` minimising the latest finish, QPU k free for shots from
    ``avail[k]`` (its start plus setup) at ``rate[k]`` seconds per shot. QPUs join in order of
    ``avail``; one joins only while its share of the time would be at least ``min_time[k]``."""
    k = len(avail)
    if k == 1:
        return [shots]
    order = sorted(range(k), key=avail.__getitem__)
    inv = 0.0
    weighted = 0.0
    finish = _INF
    used = 0
    for pos, q in enumerate(order):
        a = avail[q]
        if pos and finish <= a:
            break
        new_inv = inv + 1.0 / rate[q]
        new_weighted = weighted + a / rate[q]
        new_finish = (shots + new_weighted) / new_inv
        if pos and new_finish - a < min_time[q]:
            break
        inv, weighted, finish, used = new_inv, new_weighted, new_finish, pos + 1
    n = [0] * k
    if used == 1:
        n[order[0]] = shots
        return n
    active = order[:used]
    total = 0
    for q in active:
        v = max(0, math.floor((finish - avail[q]) / rate[q] + 1e-9))
        n[q] = v
        total += v
    while total > shots:  # rounding noise: take back from the latest finisher
        q = max((i for i in active if n[i]), key=lambda i: avail[i] + n[i] * rate[i])
        n[q] -= 1
        total -= 1
    while total < shots:  # the few leftover shots go where they finish first
        q = min(active, key=lambda i: avail[i] + (n[i] + 1) * rate[i])
        n[q] += 1
        total += 1
    return n


def _place_single(
    c: Compiled, busy: list[Timeline], cands: Sequence[int], ready: float, shots: int
) -> tuple[int, float, float]:
    best = (-1, _INF, _INF)
    for q in cands:
        dur = c.setup[q] + shots * c.rate[q]
        s = earliest_fit(busy[q], c.release[q], ready, dur)
        if s + dur < best[2]:
            best = (q, s, s + dur)
    return best


def gap_end(timeline: Timeline, t: float) -> float:
    """Start of the first busy interval at or after ``t`` (``inf`` if none): with ``t`` free,
    the QPU is idle over ``[t, gap_end)``."""
    starts = timeline[0]
    i = bisect_left(starts, t)
    return starts[i] if i < len(starts) else _INF


def waterfill_capped(
    shots: int,
    avail: Sequence[float],
    rate: Sequence[float],
    min_time: Sequence[float],
    cap: Sequence[float],
) -> list[int] | None:
    """:func:`waterfill` where QPU k takes at most ``cap[k]`` shots: a QPU whose share would
    exceed its cap is filled to the cap (or left out when the cap is below ``min_time``) and
    the rest is water-filled over the others. ``None`` if the caps cannot hold every shot."""
    k = len(avail)
    n = [0] * k
    pool = list(range(k))
    left = shots
    while left > 0:
        if not pool:
            return None
        part = waterfill(left, [avail[i] for i in pool], [rate[i] for i in pool],
                         [min_time[i] for i in pool])
        over = [i for i, v in zip(pool, part, strict=True) if v > cap[i]]
        if not over:
            for i, v in zip(pool, part, strict=True):
                n[i] += v
            return n
        for i in over:
            take = int(cap[i])
            if take > 0 and take * rate[i] >= min_time[i]:
                n[i] = take
                left -= take
            pool.remove(i)
    return n


def _place_split(
    c: Compiled,
    busy: list[Timeline],
    cands: Sequence[int],
    ready: float,
    shots: int,
    min_fragment: float,
) -> list[tuple[int, int, float, float]]:
    """Split ``shots`` over ``cands`` so that the subcircuit finishes early. Water-filling
    assumes each QPU free from its first idle time; a share that does not fit in that gap is
    either moved to the QPU's next gap where it fits (re-balancing up to three times) or, when
    that finishes later, cut to what the gap holds with the rest spread over the other QPUs
    (an uneven split that leaves the busy interval in place)."""
    starts = [earliest_fit(busy[q], c.release[q], ready, 0.0) for q in cands]
    first = list(starts)
    rates = [c.rate[q] for q in cands]
    mins = [min_fragment * c.setup[q] for q in cands]
    n: list[int] = []
    conflict = False
    moved_out: list[tuple[int, int, float, float]] | None = None
    for _ in range(3):
        avail = [s + c.setup[q] for s, q in zip(starts, cands, strict=True)]
        n = waterfill(shots, avail, rates, mins)
        fits: list[tuple[int, int, float, float]] = []
        moved = False
        for k, q in enumerate(cands):
            if n[k]:
                dur = c.setup[q] + n[k] * rates[k]
                s = earliest_fit(busy[q], c.release[q], ready, dur)
                fits.append((q, n[k], s, s + dur))
                if s > starts[k] + 1e-12:
                    starts[k] = s
                    moved = True
        if not moved:  # each fragment fits where it was assumed to start (or earlier)
            moved_out = fits
            break
        conflict = True
    if moved_out is None:
        moved_out = []
        for k, q in enumerate(cands):
            if n[k]:
                dur = c.setup[q] + n[k] * rates[k]
                s = earliest_fit(busy[q], c.release[q], ready, dur)
                moved_out.append((q, n[k], s, s + dur))
    if not conflict:
        return moved_out
    # the uneven alternative: every QPU keeps its first gap, shares capped to what it holds
    avail = [s + c.setup[q] for s, q in zip(first, cands, strict=True)]
    caps = [
        max(0.0, math.floor((gap_end(busy[q], s) - a) / r)) if gap_end(busy[q], s) < _INF
        else _INF
        for s, a, r, q in zip(first, avail, rates, cands, strict=True)
    ]
    capped = waterfill_capped(shots, avail, rates, mins, caps)
    if capped is None:
        return moved_out
    uneven = [
        (q, capped[k], first[k], first[k] + c.setup[q] + capped[k] * rates[k])
        for k, q in enumerate(cands)
        if capped[k]
    ]
    if max(f[3] for f in uneven) < max(f[3] for f in moved_out) - 1e-12:
        return uneven
    return moved_out


def place_job(
    c: Compiled,
    busy: list[Timeline],
    jd: JobData,
    choices: Sequence[Choice],
    split: bool,
) -> tuple[list[Placed], float]:
    """Place every remaining shot of ``jd`` into ``busy`` (modified); return fragments, finish
    (``inf`` when a subcircuit has no usable QPU; ``busy`` is then partly filled).

    With shot splitting, subcircuits on the automatic choice are split only when needed: the
    job is first placed with each of them whole on its earliest-finishing QPU, and only if that
    misses the deadline are their shots water-filled (splits cost a setup per extra QPU)."""
    if not jd.feasible:
        return [], _INF
    if split and any(ch is None for ch in choices):
        trial = list(busy)
        placed, finish = _place(c, trial, jd, choices, split, auto_split=False)
        if on_time(finish, jd.deadline):
            busy[:] = trial
            return placed, finish
    return _place(c, busy, jd, choices, split, auto_split=True)


def _place(
    c: Compiled,
    busy: list[Timeline],
    jd: JobData,
    choices: Sequence[Choice],
    split: bool,
    auto_split: bool,
) -> tuple[list[Placed], float]:
    end = list(jd.fixed_end)
    placed: list[Placed] = []
    for s in jd.topo:
        shots = jd.remaining[s]
        if shots == 0:
            continue
        ready = max([jd.release, *(end[p] for p in jd.preds[s])])
        choice = choices[s]
        cands = [q for q in (choice or jd.eligible[s]) if c.release[q] < _INF]
        if not cands:
            return [], _INF
        if split and jd.splittable and len(cands) > 1 and (choice is not None or auto_split):
            # an explicit QPU set is used as given; the automatic one skips short fragments
            min_fragment = c.min_fragment if choice is None else 0.0
            for q, n, st, en in _place_split(c, busy, cands, ready, shots, min_fragment):
                busy[q] = insert(busy[q], st, en)
                placed.append((s, q, n, st, en))
                end[s] = max(end[s], en)
        else:
            q, st, en = _place_single(c, busy, cands, ready, shots)
            busy[q] = insert(busy[q], st, en)
            placed.append((s, q, shots, st, en))
            end[s] = max(end[s], en)
    return placed, max(end, default=-_INF)


def decode(
    c: Compiled,
    order: Sequence[int],
    choices: Sequence[Sequence[Choice]] | None = None,
    split: bool = True,
) -> tuple[dict[int, list[Placed]], set[int]]:
    """Serial decoder: jobs in ``order``; a job that would miss its deadline is dropped (its
    tentative fragments removed) unless it already runs. Returns placements and late jobs."""
    busy = c.fresh()
    placed: dict[int, list[Placed]] = {}
    late: set[int] = set()
    for j in order:
        jd = c.jobs[j]
        trial = list(busy)
        ch = choices[j] if choices is not None else [None] * len(jd.topo)
        frags, finish = place_job(c, trial, jd, ch, split)
        if on_time(finish, jd.deadline) or (jd.committed and finish < _INF):
            busy = trial
            placed[j] = frags
            if not on_time(finish, jd.deadline):
                late.add(j)
    return placed, late


def to_schedule(
    c: Compiled,
    placed: dict[int, list[Placed]],
    late: set[int],
    method: str,
    recut: frozenset[str] = frozenset(),
) -> Schedule:
    """Turn decoder output (plus the problem's fixed fragments) into a :class:`Schedule`."""
    frags = list(c.problem.fixed)
    for j, items in placed.items():
        name = c.jobs[j].name
        for s, q, n, st, en in items:
            frags.append(Fragment(name, s, c.qpus[q].name, n, st, en))
    admitted = {c.jobs[j].name for j in placed} | {f.job for f in c.problem.fixed}
    frags.sort(key=lambda f: (f.start, f.qpu))
    return Schedule(
        admitted=frozenset(admitted),
        fragments=tuple(frags),
        method=method,
        late=frozenset(c.jobs[j].name for j in late),
        recut=recut & admitted,
    )
