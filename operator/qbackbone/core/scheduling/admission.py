"""Admission from a joint plan: which waiting jobs start now, and with which shot splits.

The operator plans every waiting job together (``plan_waiting``) around the work already
admitted (the problem's fixed fragments) and admits a job once the plan starts it within a
short lookahead; the others keep waiting and are planned again with the next arrival or as QPU time
frees up, so a late job with a tight deadline can overtake earlier ones with room to spare.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .annealing import AnnealingParams, anneal
from .baselines import edf
from .model import Job, Problem, Schedule
from .schedule import schedule
from .validate import check_schedule

#: Budget of one online plan when the params set neither ``work_budget`` nor ``time_limit``:
#: work per waiting job, with floor and cap (the heuristic searches: about 0.02-0.25 s on the
#: 2-core dev machine under load, so planning on every arrival stays cheap even in a burst),
#: and a wall-clock cap for the whole plan. The cap is a safety net for the CP-SAT step,
#: whose wall time the work does not bound (2.6-2.8 s measured on 10-20 waiting jobs with
#: nothing admitted yet); only when it binds does the plan depend on the machine's speed.
ONLINE_WORK_PER_JOB = 4_000
ONLINE_WORK_FLOOR = 20_000
ONLINE_WORK_CAP = 150_000
ONLINE_SECONDS = 0.5


def online_params(params: AnnealingParams, waiting: int) -> AnnealingParams:
    """``params`` for one online plan of ``waiting`` jobs: as given when they set a budget
    (``work_budget`` or ``time_limit``), else with the online budget (work and
    :data:`ONLINE_SECONDS`); always LOCC-aware (the jobs' cut kinds were fixed before they
    waited: the plan never re-cuts)."""
    if params.work_budget is None and params.time_limit is None:
        budget = min(ONLINE_WORK_CAP, max(ONLINE_WORK_FLOOR, ONLINE_WORK_PER_JOB * waiting))
        params = replace(params, work_budget=budget, time_limit=ONLINE_SECONDS)
    return replace(params, locc_aware=True)


@dataclass(frozen=True)
class Admit:
    """Start the job now: its shots per subcircuit index and QPU, as planned, and when each
    of those fragments is planned to start (seconds after the plan was made)."""

    shares: dict[int, dict[str, int]]
    start: float  # planned start and end of the whole job, seconds after the plan was made
    end: float
    starts: dict[int, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Wait:
    """Keep the job waiting: ``start`` is when the plan would start it (None: it cannot meet
    its deadline behind the admitted work and the other waiting jobs)."""

    start: float | None
    end: float | None


def plan_waiting(problem: Problem, algorithm: str = "annealing",
                 params: AnnealingParams | None = None,
                 previous: Schedule | None = None) -> Schedule:
    """The joint plan of ``problem``'s waiting jobs (released at ``problem.now``) around its
    fixed fragments (admitted work: jobs that have them are committed, never dropped), made
    with ``algorithm`` (see :data:`~.schedule.ALGORITHMS`) and ``params`` (default
    ``AnnealingParams()``), bounded as :func:`online_params` says.

    ``annealing``: one waiting job is placed greedily first (EDF: earliest finish, shots
    split over QPUs only when its deadline needs it, which leaves QPUs free for later
    arrivals; a millisecond; the annealer's portfolio holds this plan too); when that misses
    its deadline, and with several waiting jobs, the QB scheduler
    (:func:`~.annealing.anneal`) plans within the budget. ``greedyEDF``, ``list`` and
    ``random``: that baseline alone (``random`` with ``params.seed``). Jobs are never re-cut:
    their cut plans are fixed before they wait. The plan is checked against every
    constraint before it is used.
    """
    waiting = waiting_jobs(problem)
    params = online_params(params or AnnealingParams(), len(waiting))
    plan = None
    if algorithm == "annealing" and len(waiting) <= 1:
        plan = edf(problem, split=params.shot_splitting)
        if not all(j.name in plan.admitted for j in waiting):
            plan = None
    if plan is None and algorithm == "annealing":
        plan = anneal(problem, params, warm=previous)  # the previous plan: one more start
    if plan is None:
        plan = schedule(problem, algorithm, params)
    if plan.recut:  # cannot happen without cut plans in the model; never silently re-cut
        raise AssertionError(f"the joint plan re-cut {sorted(plan.recut)}")
    check_schedule(problem, plan)
    return plan


def waiting_jobs(problem: Problem) -> list[Job]:
    """The problem's jobs without fixed fragments (the others are admitted work)."""
    committed = {f.job for f in problem.fixed}
    return [j for j in problem.jobs if j.name not in committed]


def admission(problem: Problem, plan: Schedule, name: str, lookahead: float) -> Admit | Wait:
    """Admit the waiting job ``name`` when ``plan`` starts it within ``lookahead`` seconds of
    ``problem.now``, else wait (``Wait(None, None)``: the plan drops it, or does not cover
    it)."""
    fragments = plan.fragments_of(name)
    if name not in plan.admitted or not fragments or any(f.job == name for f in problem.fixed):
        return Wait(None, None)
    start = min(f.start for f in fragments) - problem.now
    end = max(f.end for f in fragments) - problem.now
    if start > lookahead:
        return Wait(start, end)
    shares: dict[int, dict[str, int]] = {}
    starts: dict[int, dict[str, float]] = {}
    for f in fragments:
        per_qpu = shares.setdefault(f.subcircuit, {})
        per_qpu[f.qpu] = per_qpu.get(f.qpu, 0) + f.shots
        at = starts.setdefault(f.subcircuit, {})
        at[f.qpu] = min(at.get(f.qpu, f.start - problem.now), f.start - problem.now)
    return Admit(shares, start, end, starts)


def admissions(problem: Problem, plan: Schedule, lookahead: float) -> dict[str, Admit | Wait]:
    """:func:`admission` of every waiting job of ``problem``."""
    return {j.name: admission(problem, plan, j.name, lookahead) for j in waiting_jobs(problem)}
