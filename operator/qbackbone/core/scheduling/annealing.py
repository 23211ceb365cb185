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
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from .baselines import list_scheduling, random_schedule
from .canonical import canonical
from .exact_step import exact_step
from .model import Problem, Schedule, flip_cut
from .moves import propose
from .placement import Compiled, Placed, to_schedule
from .search_state import SearchState, decode_work, is_kept, used_qpus, warm_state
from .timing import on_time
from .validate import validate

_INF = float("inf")

#: Automatic effort cap (see ``AnnealingParams.work_budget``): ``WORK_PER_JOB`` per job,
#: at least ``WORK_FLOOR``, at most ``WORK_CAP``, shared by the component searches. With the
#: compiled placement engine (:mod:`.engine`) a run does about 1.5-6 M units/s of CPU on the
#: 2-core dev machine (more where decodes dominate, less where the Python loop does): up to
#: 100 jobs about 0.1-0.25 s, 1,000 jobs on 100 QPUs (a lean run, see
#: :data:`FULL_PORTFOLIO_DECODES`) about 0.5 s; the pure-Python engine is 10-15x slower.
#: ``benchmarks/scheduler/latency.py`` measures it. More effort than the floor changed little
#: at 100 jobs on 20 QPUs (1.5 M units served the same as 0.3 M, within one job either way).
WORK_PER_JOB = 3_600
WORK_FLOOR = 360_000
WORK_CAP = 1_500_000



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


#: The decodes of the whole problem that the full portfolio's starts and baselines cost. A run
#: is *lean* when they would take more than half its work budget: then only the component its
#: params name runs (share 1), from EDF with list scheduling beside it, and those two decodes
#: count against the budget. With the default budget that is from several hundred jobs on
#: (1,000 jobs on 100 QPUs: about 0.12 M units per decode, 1.5 M budget), where the full
#: portfolio cost seconds of fixed work that the budget did not bound. A lean QB run is never
#: below EDF or list scheduling; the "never below an ablation" guarantee needs the full
#: portfolio.
FULL_PORTFOLIO_DECODES = 12

#: The component searches, keyed by (shot splitting, LOCC awareness), with the share of the
#: effort (work budget, iterations, time limit) each one gets. A run searches every component
#: its params allow: the QB scheduler all four, an ablation only the ones without the feature
#: it removes. A component's result depends only on the problem, its key, the seed and the
#: total budget, so an ablation's answer is one of the QB scheduler's candidates and QB never
#: serves fewer jobs than any ablation with the same params (in a run that is not lean).
COMPONENTS: dict[tuple[bool, bool], float] = {
    (True, True): 0.7,
    (False, True): 0.1,
    (True, False): 0.1,
    (False, False): 0.1,
}


def anneal(problem: Problem, params: AnnealingParams | None = None,
           warm: Schedule | None = None) -> Schedule:
    """Run the QB scheduler on ``problem`` (see the module docstring): the best of its
    component searches (:data:`COMPONENTS`), ties to the one with more features. ``warm``: a
    previous plan of an overlapping problem (jobs and QPUs matched by name): one more start
    for every component (its job order and QPU choices; times ignored) and, where it is still
    a valid plan of ``problem`` (restricted to its jobs), a candidate as it is (``component``
    -2 in the stats when it wins), so QB never serves fewer jobs than that plan still does."""
    params = params or AnnealingParams()
    started = time.perf_counter()
    problem = canonical(problem)  # the same answer under any order or names of QPUs and jobs
    base = problem_for(problem, params)
    lo_base: Problem | None = None
    shared = _Shared(warm=warm)
    budget = params.budget(len(base.jobs))
    shared.lean = (budget is not None
                   and 2 * FULL_PORTFOLIO_DECODES * decode_work(shared.compile(base)) > budget)
    best: Schedule | None = None
    total: dict[str, float] = {"iterations": 0.0, "work": 0.0, "accepted": 0.0}
    for (split, locc), share in COMPONENTS.items():
        if (split and not params.shot_splitting) or (locc and not params.locc_aware):
            continue
        if shared.lean and (split, locc) != (params.shot_splitting, params.locc_aware):
            continue
        if shared.lean:
            share = 1.0
        if locc == params.locc_aware:
            sched = _component(base, params, split, locc, share, shared)
        elif base.fixed:  # jobs that already run keep their cut: no all-LO component
            continue
        else:
            lo_base = lo_base or base.with_cut_kind("lo")
            sched = _component(lo_base, params, split, locc, share, shared)
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
    if warm is not None:
        kept = still_valid(base, warm)
        if kept is not None and kept.served > best.served:
            best = replace(kept, stats={**best.stats, "component": -2.0})
    exact: dict[str, float] = {}
    if params.shot_splitting and params.locc_aware:  # ablations keep to their own candidates
        best, exact = exact_step(base, params, best, total["work"], started)
    stats = {**best.stats, **total, **exact, "lean": float(shared.lean),
             "seconds": time.perf_counter() - started}
    return replace(best, method=method_name(params), stats=stats)


def _component(
    prob: Problem, params: AnnealingParams, split: bool, locc: bool, share: float,
    shared: _Shared,
) -> Schedule:
    """One annealing search over ``prob`` with shot splitting ``split`` and, with ``locc``,
    the LO re-cut move; ``share`` of the effort of ``params``. Returns the best of the annealed
    state and a portfolio of baselines on ``prob``."""
    started = time.perf_counter()
    c = shared.compile(prob)
    name = method_name(replace(params, shot_splitting=split, locc_aware=locc))
    # EDF (with this component's splitting, and with every job re-cut to LO) is a start below
    portfolio = [shared.baseline("list", c, lambda: list_scheduling(prob, compiled=c))]
    if split and not shared.lean:
        portfolio.append(shared.baseline(f"random{params.seed}", c,
                                         lambda: random_schedule(prob, params.seed, compiled=c)))
    alt: Compiled | None = None
    flippable = {j.name for j in prob.jobs if flip_cut(j) != j} - {f.job for f in prob.fixed}
    if locc and flippable and not shared.lean:
        alt = shared.compile(prob, recut=frozenset(flippable))

    seed = params.seed * len(COMPONENTS) + list(COMPONENTS).index((split, locc))
    rng = random.Random(seed)
    ncommitted = sum(jd.committed for jd in c.jobs)
    order = sorted(
        (jd.index for jd in c.jobs if jd.feasible),
        key=lambda j: (not c.jobs[j].committed, c.jobs[j].deadline, c.jobs[j].release, j),
    )
    # Start from the best EDF state: with splits, without (pinned to the QPUs it chose), and
    # with every job re-cut to LO; the search space holds all three.
    # (a lean run, on a problem too big for the whole portfolio, starts from EDF only)
    memo = shared.memo
    starts = [SearchState(c, alt, split, order, memo=memo)]
    if split and not shared.lean:
        single = SearchState(c, alt, False, order, memo=memo)
        starts.append(SearchState(c, alt, True, order, used_qpus(single), memo=memo))
    if alt is not None:
        starts.append(SearchState(c, alt, split, order, flip=True, memo=memo))
    if shared.warm is not None:  # the previous plan: its order and QPUs
        w_order, w_choices = warm_state(c, shared.warm, order)
        starts.append(SearchState(c, alt, split, w_order, w_choices, memo=memo))
    st = min(starts, key=lambda x: x.energy(x.order, x.res))
    energy, served = st.energy(st.order, st.res)
    initial_served = served
    best = (served, -energy, list(st.order), list(st.res), list(st.flip))
    full = params.budget(len(prob.jobs))
    budget = None if full is None else max(1, round(share * full))
    if budget is not None and shared.lean:  # the decodes so far count against the budget:
        # when they used it up, no move (one move may cost a whole decode: no overshoot)
        budget = max(0, budget - (len(portfolio) + len(starts)) * decode_work(c))
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
        move = propose(st, rng, ncommitted, split)
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
        if r is not None and is_kept(jd, r[1]):
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


@dataclass
class _Shared:
    """What the component searches of one run share: each problem compiled once, each start
    and baseline decoded once (keyed by identity: the run keeps every problem alive), and
    whether the run is lean (see :data:`FULL_PORTFOLIO_DECODES`)."""

    lean: bool = False
    warm: Schedule | None = None
    compiled: dict[Any, Compiled] = field(default_factory=dict)
    memo: dict[Any, Any] = field(default_factory=dict)
    keep: list[Problem] = field(default_factory=list)

    def compile(self, prob: Problem, recut: frozenset[str] = frozenset()) -> Compiled:
        """``prob`` (with the jobs ``recut`` re-cut) compiled once per run."""
        key = (id(prob), recut)
        if key not in self.compiled:
            self.keep.append(prob)
            self.compiled[key] = Compiled(prob.recut(recut) if recut else prob)
        return self.compiled[key]

    def baseline(self, kind: str, c: Compiled, run: Callable[[], Schedule]) -> Schedule:
        key = (kind, id(c))
        if key not in self.memo:
            self.memo[key] = run()
        return self.memo[key]


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


def still_valid(problem: Problem, plan: Schedule) -> Schedule | None:
    """``plan`` restricted to ``problem``'s jobs, when that is a valid schedule of ``problem``
    on its QPUs (else ``None``)."""
    jobs = {j.name for j in problem.jobs}
    qpus = {q.name for q in problem.qpus}
    kept = Schedule(admitted=plan.admitted & jobs,
                    fragments=tuple(f for f in plan.fragments if f.job in jobs),
                    method=plan.method, late=plan.late & jobs, recut=plan.recut & jobs)
    if any(f.qpu not in qpus for f in kept.fragments):
        return None
    return kept if validate(problem, kept).valid else None
