"""The QB scheduler: simulated annealing over job admission, shot splits and job order.

State: a job order, a set of excluded jobs and, per subcircuit, the QPUs its shots may use.
The shared serial decoder turns a state into start times (water-filling each subcircuit's
shots over its QPUs, filling gaps) and drops any job that would miss its deadline, so every
state is a feasible schedule. Neighbours: admit a dropped job (move it earlier), swap an
admitted job for a dropped one, drop a job, change a subcircuit's QPU set (moves shots between
QPUs), move a job in the order (changes start times). Metropolis acceptance, exponential
cooling, one ``random.Random(seed)``: the result is a function of the problem and the params.

A run is a portfolio of component searches (:data:`COMPONENTS`): the full QB search and the
restricted ones without shot splitting, without LOCC (every job LO-cut) and without either,
each with a fixed share of the effort and its own derived seed; the answer is the best of
them. An ablation runs only the components without the feature it removes, with the same
shares, so each of its candidates is also one of QB's: QB never serves fewer jobs than any
ablation run with the same params (unless ``time_limit`` cuts searches short). Each
component starts from the best of three greedy EDF states (with splits, without, all jobs
re-cut to LO) and returns the best of its annealed state and a portfolio of baselines (EDF,
list scheduling and, with shot splitting, the random baseline with the same seed), so QB
never serves fewer jobs than any of them either.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .baselines import edf, list_scheduling, random_schedule
from .canonical import canonical
from .exact_step import exact_step
from .model import Problem, Schedule, flip_cut
from .placement import (
    Choice,
    Compiled,
    JobData,
    Placed,
    Timeline,
    insert,
    place_job,
    to_schedule,
)
from .timing import on_time

_INF = float("inf")

#: Automatic effort cap (see ``AnnealingParams.work_budget``): ``WORK_PER_JOB`` per job,
#: at least ``WORK_FLOOR``, at most ``WORK_CAP``, shared by the component searches. The unit
#: is slower in the all-LO split component (bigger shot counts, more re-balancing), so a run
#: does about 0.35-0.45 M/s on the 2-core dev machine: about 0.9 s up to 20 jobs, then about
#: 50 ms per job, at most about 4.3 s (100 jobs on 20 QPUs, measured under load).
WORK_PER_JOB = 18_000
WORK_FLOOR = 360_000
WORK_CAP = 1_500_000
#: Fixed work of placing one job, beside one unit per eligible QPU per subcircuit.
PLACE_COST = 15



@dataclass(frozen=True, slots=True)
class AnnealingParams:
    """Parameters of the QB scheduler (mapped from the InvocationPolicy's scheduler fields).

    ``cooling_rate`` is the per-iteration factor of the exponential schedule; ``None`` cools
    from ``initial_temperature`` to 1% of it over the run (iterations or work budget, whichever
    ends it first). ``work_budget`` caps the search effort in a deterministic unit (one QPU
    considered for one subcircuit, plus ``PLACE_COST`` per job placed), which bounds latency
    while the result still depends only on the problem and the seed. ``None`` is automatic
    (``WORK_PER_JOB`` per job, between ``WORK_FLOOR`` and ``WORK_CAP``: with the default
    iterations this, not the iteration count, ends the run); ``0`` is no cap.
    ``time_limit`` (seconds) also stops early but makes the result depend on the machine.
    ``shot_splitting=False`` and ``locc_aware=False`` are the paper's ablations.
    """

    iterations: int = 20_000
    initial_temperature: float = 0.5
    cooling_rate: float | None = None
    seed: int = 0
    shot_splitting: bool = True
    locc_aware: bool = True
    time_limit: float | None = None
    work_budget: int | None = None

    def budget(self, n_jobs: int) -> int | None:
        """The effort cap for ``n_jobs`` jobs (``None``: no cap)."""
        if self.work_budget is None:
            return min(WORK_CAP, max(WORK_FLOOR, WORK_PER_JOB * n_jobs))
        return self.work_budget or None

    def __post_init__(self) -> None:
        if self.iterations < 0 or self.initial_temperature <= 0:
            raise ValueError("iterations must be >= 0 and initial_temperature > 0")
        if self.work_budget is not None and self.work_budget < 0:
            raise ValueError("work_budget must be >= 0 (0: no cap)")
        if self.cooling_rate is not None and not 0 < self.cooling_rate <= 1:
            raise ValueError("cooling_rate must be in (0, 1]")


def problem_for(problem: Problem, params: AnnealingParams) -> Problem:
    """The problem a run with ``params`` actually schedules (LO-cut jobs without LOCC)."""
    return problem if params.locc_aware else problem.with_cut_kind("lo")


def method_name(params: AnnealingParams) -> str:
    if params.shot_splitting and params.locc_aware:
        return "qb"
    if params.locc_aware:
        return "qb-nosplit"
    return "qb-nolocc" if params.shot_splitting else "qb-neither"


class _Search:
    """Incremental decoding: timelines are cached before every position of the order."""

    def __init__(
        self,
        c: Compiled,
        alt: Compiled | None,
        split: bool,
        order: list[int],
        choices: list[list[Choice]] | None = None,
        flip: bool = False,
    ) -> None:
        self.c = c
        self.variants = (c, alt or c)
        self.flippable = [
            alt is not None and not jd.committed and job != alt.problem.jobs[jd.index]
            for jd, job in zip(c.jobs, c.problem.jobs, strict=True)
        ]
        self.flip = [flip and f for f in self.flippable]
        self.split = split
        self.order = order
        self.pos = [0] * len(c.jobs)
        for i, j in enumerate(order):
            self.pos[j] = i
        self.excluded = [False] * len(c.jobs)
        self.work = 0
        self.cost = [PLACE_COST + sum(len(e) for e in jd.eligible) for jd in c.jobs]
        self.choices: list[list[Choice]] = choices or [[None] * len(jd.topo) for jd in c.jobs]
        self.snaps: list[list[Timeline]] = [c.fresh()]
        self.res: list[tuple[list[Placed], float] | None] = []
        busy = c.fresh()
        for j in order:
            trial = list(busy)
            frags, finish = place_job(c, trial, self.jd(j), self.choices[j], split)
            if _on_time(c.jobs[j], finish):
                busy = trial
            self.res.append((frags, finish))
            self.snaps.append(busy)

    def jd(self, j: int) -> JobData:
        """Job data of ``j`` in the cut variant the state gives it."""
        return self.variants[self.flip[j]].jobs[j]

    def decode_from(
        self, p: int, order: Sequence[int], excluded: Sequence[bool], last: int
    ) -> tuple[list[list[Timeline]], list[tuple[list[Placed], float] | None]]:
        """Timelines and results for positions >= p after a move that changed positions
        p..last. The cached prefix is reused; after ``last``, a job released after every
        time where the new timelines differ from the cached ones (``horizon``) sees the same
        free time, so its cached placement is reused instead of recomputed."""
        c = self.c
        snaps = self.snaps[: p + 1]
        res = self.res[:p]
        busy = snaps[p]
        old_res, old_pos, old_snaps = self.res, self.pos, self.snaps
        horizon = -_INF
        for k in range(p, last + 1):
            r = old_res[k]
            if r is not None and _on_time(c.jobs[self.order[k]], r[1]):
                horizon = max(horizon, r[1])
        for k in range(p, len(order)):
            j = order[k]
            jd = c.jobs[j]
            old = old_res[old_pos[j]]
            new: tuple[list[Placed], float] | None
            if excluded[j]:
                new = None
            elif k > last and jd.release >= horizon and old is not None:
                new = old
                if _on_time(jd, old[1]) and old[0]:
                    busy = list(busy)
                    for _, q, _, st, en in old[0]:
                        busy[q] = insert(busy[q], st, en)
            else:
                trial = list(busy)
                frags, finish = place_job(c, trial, self.jd(j), self.choices[j], self.split)
                self.work += self.cost[j]
                new = (frags, finish)
                kept = _on_time(jd, finish)
                if kept:
                    busy = trial
                was = old is not None and _on_time(jd, old[1])
                if kept != was or (kept and old is not None and old[0] != frags):
                    if kept:
                        horizon = max(horizon, finish)
                    if was and old is not None:
                        horizon = max(horizon, old[1])
            res.append(new)
            snaps.append(busy)
            if k >= last and _same(busy, old_snaps[k + 1]):
                snaps.extend(old_snaps[k + 2 :])
                res.extend(old_res[k + 1 :])
                break
        return snaps, res

    def served(self, res: Sequence[tuple[list[Placed], float] | None]) -> list[bool]:
        out = [False] * len(self.c.jobs)
        for i, r in enumerate(res):
            jd = self.c.jobs[self.order[i]]
            out[jd.index] = r is not None and _on_time(jd, r[1])
        return out

    def energy(
        self, order: Sequence[int], res: Sequence[tuple[list[Placed], float] | None]
    ) -> tuple[float, int]:
        """-(jobs served) plus a guide below one job: unserved jobs closer to their deadline
        and served jobs with more slack score better."""
        n = len(order)
        served = 0
        guide = 0.0
        for j, r in zip(order, res, strict=True):
            jd = self.c.jobs[j]
            window = max(jd.deadline - jd.release, 1e-9)
            if r is None:
                guide += 1.0
            elif _on_time(jd, r[1]):
                served += 1
                guide -= 0.2 * max(0.0, min(1.0, (jd.deadline - r[1]) / window))
            else:
                guide += min(1.0, (r[1] - jd.deadline) / window)
        return -served + 0.5 * guide / max(1, n), served


#: The component searches, keyed by (shot splitting, LOCC awareness), with the share of the
#: effort (work budget, iterations, time limit) each one gets. A run searches every component
#: its params allow: the QB scheduler all four, an ablation only the ones without the feature
#: it removes. A component's result depends only on the problem, its key, the seed and the
#: total budget, so an ablation's answer is one of the QB scheduler's candidates and QB never
#: serves fewer jobs than any ablation with the same params.
COMPONENTS: dict[tuple[bool, bool], float] = {
    (True, True): 0.7,
    (False, True): 0.1,
    (True, False): 0.1,
    (False, False): 0.1,
}


def anneal(problem: Problem, params: AnnealingParams | None = None) -> Schedule:
    """Run the QB scheduler on ``problem`` (see the module docstring): the best of its
    component searches (:data:`COMPONENTS`), ties to the one with more features."""
    params = params or AnnealingParams()
    started = time.perf_counter()
    problem = canonical(problem)  # the same answer under any order or names of QPUs and jobs
    base = problem_for(problem, params)
    lo_base: Problem | None = None
    best: Schedule | None = None
    total: dict[str, float] = {"iterations": 0.0, "work": 0.0, "accepted": 0.0}
    for (split, locc), share in COMPONENTS.items():
        if (split and not params.shot_splitting) or (locc and not params.locc_aware):
            continue
        if locc == params.locc_aware:
            sched = _component(base, params, split, locc, share)
        elif base.fixed:  # jobs that already run keep their cut: no all-LO component
            continue
        else:
            lo_base = lo_base or base.with_cut_kind("lo")
            sched = _component(lo_base, params, split, locc, share)
            # the same plan on the LOCC problem: jobs whose LO variant differs are re-cut
            changed = frozenset(
                j.name for j, k in zip(base.jobs, lo_base.jobs, strict=True) if j != k
            )
            sched = replace(sched, recut=sched.admitted & changed)
        for k in total:
            total[k] += sched.stats[k]
        if best is None or sched.served > best.served:
            index = list(COMPONENTS).index((split, locc))
            best = replace(sched, stats={**sched.stats, "component": float(index)})
    assert best is not None
    exact: dict[str, float] = {}
    if params.shot_splitting and params.locc_aware:  # ablations keep to their own candidates
        best, exact = exact_step(base, params, best, total["work"], started)
    stats = {**best.stats, **total, **exact, "seconds": time.perf_counter() - started}
    return replace(best, method=method_name(params), stats=stats)


def _component(
    prob: Problem, params: AnnealingParams, split: bool, locc: bool, share: float
) -> Schedule:
    """One annealing search over ``prob`` with shot splitting ``split`` and, with ``locc``,
    the LO re-cut move; ``share`` of the effort of ``params``. Returns the best of the annealed
    state and a portfolio of baselines on ``prob``."""
    started = time.perf_counter()
    c = Compiled(prob)
    name = method_name(replace(params, shot_splitting=split, locc_aware=locc))
    portfolio = [edf(prob, split=split, compiled=c), list_scheduling(prob, compiled=c)]
    if split:
        portfolio.append(random_schedule(prob, params.seed, compiled=c))
    alt: Compiled | None = None
    flippable = {j.name for j in prob.jobs if flip_cut(j) != j} - {f.job for f in prob.fixed}
    if locc and flippable:
        alt = Compiled(prob.recut(flippable))
        lo = edf(alt.problem, split=split, compiled=alt)
        portfolio.append(replace(lo, recut=lo.admitted & flippable))

    seed = params.seed * len(COMPONENTS) + list(COMPONENTS).index((split, locc))
    rng = random.Random(seed)
    ncommitted = sum(jd.committed for jd in c.jobs)
    order = sorted(
        (jd.index for jd in c.jobs if jd.feasible),
        key=lambda j: (not c.jobs[j].committed, c.jobs[j].deadline, c.jobs[j].release, j),
    )
    # Start from the best EDF state: with splits, without (pinned to the QPUs it chose), and
    # with every job re-cut to LO; the search space holds all three.
    starts = [_Search(c, alt, split, order)]
    if split:
        single = _Search(c, alt, False, order)
        starts.append(_Search(c, alt, True, order, _used_qpus(single)))
    if alt is not None:
        starts.append(_Search(c, alt, split, order, flip=True))
    st = min(starts, key=lambda x: x.energy(x.order, x.res))
    energy, served = st.energy(st.order, st.res)
    initial_served = served
    best = (served, -energy, list(st.order), list(st.res), list(st.flip))
    full = params.budget(len(prob.jobs))
    budget = None if full is None else max(1, round(share * full))
    n_iter = math.ceil(share * params.iterations)
    limit = None if params.time_limit is None else share * params.time_limit
    st.work = 0
    n = len(order)
    accepted = 0
    iterations = 0
    for it in range(n_iter if n else 0):
        if limit is not None and it % 16 == 0 and time.perf_counter() - started > limit:
            break
        if budget is not None and st.work >= budget:
            break
        iterations = it + 1
        move = _propose(st, rng, ncommitted, split)
        if move is None:
            continue
        p, last, new_order, new_excl, change = move
        old_choice = None
        if change is not None:
            j, s, ch = change
            if s < 0:
                st.flip[j] = not st.flip[j]
            else:
                old_choice = st.choices[j][s]
                st.choices[j][s] = ch
        snaps, res = st.decode_from(p, new_order, new_excl, last)
        new_energy, new_served = st.energy(new_order, res)
        delta = new_energy - energy
        temp = _temperature(params, it, n_iter, st.work, budget)
        if delta <= 0 or rng.random() < math.exp(-delta / temp):
            accepted += 1
            st.order, st.excluded, st.snaps, st.res = list(new_order), list(new_excl), snaps, res
            for i, j in enumerate(st.order):
                st.pos[j] = i
            energy = new_energy
            if (new_served, -new_energy) > best[:2]:
                best = (new_served, -new_energy, list(st.order), list(st.res), list(st.flip))
        elif change is not None:
            j, s, _ = change
            if s < 0:
                st.flip[j] = not st.flip[j]
            else:
                st.choices[j][s] = old_choice

    placed: dict[int, list[Placed]] = {}
    late: set[int] = set()
    for j, r in zip(best[2], best[3], strict=True):
        jd = c.jobs[j]
        if r is not None and _on_time(jd, r[1]):
            placed[j] = r[0]
            if not on_time(r[1], jd.deadline):
                late.add(j)
    recut = frozenset(c.jobs[j].name for j in placed if best[4][j])
    result = to_schedule(c, placed, late, name, recut)
    for other in portfolio:
        if other.served > result.served:
            result = other
    stats = {
        "iterations": float(iterations),
        "work": float(st.work),
        "accepted": float(accepted),
        "annealed_served": float(best[0]),
        "initial_served": float(initial_served),
    }
    return replace(result, method=name, stats=stats)


def _used_qpus(st: _Search) -> list[list[Choice]]:
    """Pin every placed subcircuit to the QPUs it got in ``st`` (same decode, any mode)."""
    out = [list(row) for row in st.choices]
    for j, r in zip(st.order, st.res, strict=True):
        if r is not None:
            for s in {f[0] for f in r[0]}:
                out[j][s] = tuple(sorted({f[1] for f in r[0] if f[0] == s}))
    return out


def _temperature(
    params: AnnealingParams, it: int, n_iter: int, work: int, budget: int | None
) -> float:
    """Exponential cooling by iteration (given rate) or by progress through the run."""
    if params.cooling_rate is not None:
        return params.initial_temperature * params.cooling_rate**it
    progress = it / max(1, n_iter)
    if budget:
        progress = max(progress, work / budget)
    return params.initial_temperature * 0.01 ** min(1.0, progress)


def _same(a: list[Timeline], b: list[Timeline]) -> bool:
    return a is b or all(x is y for x, y in zip(a, b, strict=True))


def _on_time(jd: JobData, finish: float) -> bool:
    """Kept in the plan: on time, or already running (cannot be dropped)."""
    return on_time(finish, jd.deadline) or (jd.committed and finish < _INF)


_Move = tuple[int, int, list[int], list[bool], tuple[int, int, Choice] | None]


def _propose(st: _Search, rng: random.Random, lo: int, split: bool) -> _Move | None:
    """One random neighbour: (first position to re-decode, order, excluded, choice change)."""
    order, excl, pos = st.order, st.excluded, st.pos
    served = st.served(st.res)
    movable = order[lo:]
    if not movable:
        return None
    up = [j for j in movable if served[j]]
    down = [j for j in movable if not served[j]]
    r = rng.random()
    new_order = list(order)
    new_excl = list(excl)
    if r < 0.15 and down:  # admit a dropped job: try it earlier in the order
        j = rng.choice(down)
        new_excl[j] = False
        a = pos[j]
        b = rng.randint(lo, a)
        new_order.insert(b, new_order.pop(a))
        return b, a, new_order, new_excl, None
    if r < 0.30 and up and down:  # swap an admitted job for a dropped one
        a_job, d_job = rng.choice(up), rng.choice(down)
        new_excl[a_job], new_excl[d_job] = True, False
        a, b = pos[a_job], pos[d_job]
        new_order[a], new_order[b] = d_job, a_job
        return min(a, b), max(a, b), new_order, new_excl, None
    if r < 0.35 and up:  # drop an admitted job
        j = rng.choice(up)
        new_excl[j] = True
        return pos[j], pos[j], new_order, new_excl, None
    if r < 0.40:  # re-cut a job: LOCC with precedence <-> LO without (more shots)
        cands = [j for j in movable if st.flippable[j] and not excl[j]]
        if cands:
            j = rng.choice(cands)
            return pos[j], pos[j], new_order, new_excl, (j, -1, None)
    if r < 0.68:  # move shots: change the QPUs of one subcircuit
        tried = [j for j in movable if not excl[j]]
        j = rng.choice(tried or movable)
        jd = st.c.jobs[j]
        subs = [s for s in jd.topo if len(jd.eligible[s]) > 1 and jd.remaining[s]]
        if subs:
            s = rng.choice(subs)
            elig = jd.eligible[s]
            auto = st.choices[j][s] is None
            cur = st.choices[j][s] or (elig if split else ())
            u = rng.random()
            if not split:
                ch: Choice = (rng.choice([q for q in elig if (q,) != cur]),)
            elif u < 0.1:  # back to the automatic split (or forced onto every eligible QPU)
                ch = elig if auto else None
            elif len(cur) > 1 and (len(cur) == len(elig) or u < 0.55):
                drop = rng.choice(cur)
                ch = tuple(q for q in cur if q != drop)
            else:
                ch = tuple(sorted((*cur, rng.choice([q for q in elig if q not in cur]))))
            return pos[j], pos[j], new_order, new_excl, (j, s, ch)
    # move a job in the order (changes start times)
    a = rng.randrange(lo, len(order))
    if rng.random() < 0.5:
        b = min(len(order) - 1, max(lo, a + rng.choice((-3, -2, -1, 1, 2, 3))))
    else:
        b = rng.randrange(lo, len(order))
    if a == b:
        return None
    new_order.insert(b, new_order.pop(a))
    return min(a, b), max(a, b), new_order, new_excl, None
