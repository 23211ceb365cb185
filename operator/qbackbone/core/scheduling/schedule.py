"""One entry point for the operator: pick the algorithm the InvocationPolicy names."""

from __future__ import annotations

from .annealing import AnnealingParams, anneal
from .baselines import edf, list_scheduling, random_schedule
from .model import Problem, Schedule

#: Names as in the InvocationPolicy's ``scheduler.algorithm``.
ALGORITHMS = ("annealing", "greedyEDF", "list", "random")


def schedule(
    problem: Problem, algorithm: str = "annealing", params: AnnealingParams | None = None
) -> Schedule:
    """Plan ``problem`` with ``algorithm``; ``params`` apply to annealing (and the random
    baseline's seed). With ``params.locc_aware=False`` the jobs are re-cut with LO cuts first
    (see :func:`problem_for`); validate the result against that problem."""
    params = params or AnnealingParams()
    if algorithm == "annealing":
        return anneal(problem, params)
    prob = problem if params.locc_aware else problem.with_cut_kind("lo")
    if algorithm == "greedyEDF":
        return edf(prob, split=params.shot_splitting)
    if algorithm == "list":
        return list_scheduling(prob)
    if algorithm == "random":
        return random_schedule(prob, params.seed)
    raise ValueError(f"unknown scheduler algorithm {algorithm!r}; expected one of {ALGORITHMS}")
