"""Shared pieces of the scheduler benchmarks: the methods compared and small statistics."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qbackbone.core.scheduling import (
    AnnealingParams,
    Problem,
    Schedule,
    anneal,
    check_schedule,
    edf,
    list_scheduling,
    problem_for,
    random_schedule,
)

#: Every method, in plotting order: the QB scheduler, its ablations, the baselines.
METHODS = ("qb", "qb-nosplit", "qb-nolocc", "qb-neither", "edf", "list", "random")


@dataclass(frozen=True)
class Outcome:
    method: str
    served: int
    seconds: float


def run_method(method: str, problem: Problem, seed: int, iterations: int | None) -> Outcome:
    """Run one method and validate its schedule against the problem it actually scheduled."""
    ablation = {"qb": (True, True), "qb-nosplit": (False, True), "qb-nolocc": (True, False),
                "qb-neither": (False, False)}
    solved = problem
    t0 = time.perf_counter()
    schedule: Schedule
    if method in ablation:
        split, locc = ablation[method]
        extra = {} if iterations is None else {"iterations": iterations}
        params = AnnealingParams(seed=seed, shot_splitting=split, locc_aware=locc, **extra)
        solved = problem_for(problem, params)
        schedule = anneal(problem, params)
    else:
        runners: dict[str, Callable[[], Schedule]] = {
            "edf": lambda: edf(problem),
            "list": lambda: list_scheduling(problem),
            "random": lambda: random_schedule(problem, seed),
        }
        schedule = runners[method]()
    seconds = time.perf_counter() - t0
    served = check_schedule(solved, schedule)
    return Outcome(method, len(served), seconds)


_T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
         9: 2.262, 10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042}


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its 95% Student-t confidence interval (0 for one value)."""
    m = statistics.fmean(values)
    if len(values) < 2:
        return m, 0.0
    dof = len(values) - 1
    t = _T975.get(dof) or min((v for k, v in _T975.items() if k <= dof), default=1.96)
    return m, t * statistics.stdev(values) / math.sqrt(len(values))
