"""Admission from a joint plan: which waiting jobs start now, and with which shot splits.

The operator plans every waiting job together (``plan_waiting``) around the work already
admitted (each QPU's ``available_at``) and admits a job once the plan starts it within a short
lookahead; the others keep waiting and are planned again with the next arrival or as QPU time
frees up, so a late job with a tight deadline can overtake earlier ones with room to spare.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .annealing import AnnealingParams, anneal
from .baselines import edf
from .model import Problem, Schedule
from .validate import check_schedule

#: Work budget of one online plan per waiting job, with floor and cap: about 0.02-0.15 s on
#: this machine, so planning on every arrival stays cheap even in a burst.
ONLINE_WORK_PER_JOB = 4_000
ONLINE_WORK_FLOOR = 20_000
ONLINE_WORK_CAP = 150_000


@dataclass(frozen=True)
class Admit:
    """Start the job now: its shots per subcircuit index and QPU, as planned."""

    shares: dict[int, dict[str, int]]
    start: float  # planned start and end, seconds after the plan was made
    end: float


@dataclass(frozen=True)
class Wait:
    """Keep the job waiting: ``start`` is when the plan would start it (None: it cannot meet
    its deadline behind the admitted work and the other waiting jobs)."""

    start: float | None
    end: float | None


def plan_waiting(problem: Problem, seed: int = 0) -> Schedule:
    """The joint plan of ``problem``'s jobs (all waiting, released at ``problem.now``).

    One job is placed greedily (earliest finish, shots water-filled over its QPUs: what the
    annealer would find, in a millisecond); several are planned by the QB scheduler with an
    online work budget. Jobs are never re-cut: their cut plans are fixed before they wait.
    The plan is checked against every constraint before it is used.
    """
    if len(problem.jobs) <= 1:
        plan = edf(problem, split=True)
    else:
        budget = min(ONLINE_WORK_CAP,
                     max(ONLINE_WORK_FLOOR, ONLINE_WORK_PER_JOB * len(problem.jobs)))
        plan = anneal(problem, AnnealingParams(seed=seed, work_budget=budget))
        if plan.recut:  # cannot happen without cut plans in the model; never silently re-cut
            raise AssertionError(f"the joint plan re-cut {sorted(plan.recut)}")
    check_schedule(problem, plan)
    return plan


def admissions(problem: Problem, plan: Schedule, lookahead: float) -> dict[str, Admit | Wait]:
    """For each job of ``problem``: admit it when ``plan`` starts it within ``lookahead``
    seconds of ``problem.now``, else wait."""
    out: dict[str, Admit | Wait] = {}
    for job in problem.jobs:
        fragments = plan.fragments_of(job.name)
        if job.name not in plan.admitted or not fragments:
            out[job.name] = Wait(None, None)
            continue
        start = min(f.start for f in fragments) - problem.now
        end = max(f.end for f in fragments) - problem.now
        if start > lookahead:
            out[job.name] = Wait(start, end)
            continue
        shares: dict[int, dict[str, int]] = {}
        for f in fragments:
            per_qpu = shares.setdefault(f.subcircuit, {})
            per_qpu[f.qpu] = per_qpu.get(f.qpu, 0) + f.shots
        out[job.name] = Admit(shares, start, end)
    return out


def backlog_until(backlog: Mapping[str, float], now: float) -> dict[str, float]:
    """QPU name -> when its admitted work ends (``available_at``), from seconds of work left."""
    return {name: now + max(0.0, seconds) for name, seconds in backlog.items()}
