"""Solve and verify: samples or a classical solver to the best feasible decision, reported."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from qbackbone.api.problem import ProblemSolution
from qbackbone.core.optimize.classical import (
    QuboSolution,
    simulated_annealing,
    solve_exact,
)
from qbackbone.core.optimize.problem import ReducedProblem
from qbackbone.core.optimize.qubo import bits_from_key, key_from_bits

MAX_DISTINCT_SAMPLES = 512  # most frequent bitstrings post-processed; the rest are rare


@dataclass(frozen=True)
class Candidate:
    """A post-processed assignment."""

    x: np.ndarray
    objective: float
    feasible: bool


@dataclass(frozen=True)
class SampleOutcome:
    """The best decision found in the samples, and how feasible the raw samples were."""

    best: Candidate
    samples: int
    feasible_before: float
    feasible_after: float


def refine(problem: ReducedProblem, x: np.ndarray) -> Candidate:
    """Repair, then local search; the objective and feasibility of what results."""
    repaired = problem.repair(x)
    improved = problem.improve(repaired) if not problem.violations(repaired) else repaired
    feasible = not problem.violations(improved)
    return Candidate(improved, problem.objective(improved), feasible)


def _beats(problem: ReducedProblem, a: Candidate, b: Candidate | None) -> bool:
    if b is None:
        return True
    if a.feasible != b.feasible:
        return a.feasible
    return problem.better(a.objective, b.objective)


def best_of_samples(problem: ReducedProblem, counts: Mapping[str, int]) -> SampleOutcome:
    """Decode the most frequent bitstrings, repair and improve each, keep the best."""
    n = problem.qubo.size
    total = sum(counts.values())
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:MAX_DISTINCT_SAMPLES]
    best: Candidate | None = None
    feasible_raw = feasible_repaired = 0
    for key, count in ranked:
        x = bits_from_key(key, n)
        if not problem.violations(x):
            feasible_raw += count
        candidate = refine(problem, x)
        if candidate.feasible:  # improve() keeps a repaired assignment feasible
            feasible_repaired += count
        if _beats(problem, candidate, best):
            best = candidate
    assert best is not None
    covered = sum(c for _, c in ranked)
    return SampleOutcome(best, total, feasible_raw / covered, feasible_repaired / covered)


def exact_solution(problem: ReducedProblem, time_limit: float) -> QuboSolution | None:
    """The QUBO's minimum (proven when possible) within the time limit."""
    if problem.qubo.size == 0:
        return None
    return solve_exact(problem.qubo, time_limit, problem.objective_qubo, problem.constraints)


def solve_classically(problem: ReducedProblem, time_limit: float,
                      seed: int | None) -> QuboSolution:
    """Exact when it proves the optimum in time, else the better of the exact solver's
    incumbent and simulated annealing (the caller refines it)."""
    exact = exact_solution(problem, time_limit)
    if exact is not None and exact.proven_optimal:
        return exact
    heuristic = simulated_annealing(problem.qubo, max(time_limit, 0.5), seed)
    return exact if exact is not None and exact.energy <= heuristic.energy else heuristic


def approximation_ratio(problem: ReducedProblem, objective: float,
                        optimum: float) -> float | None:
    """1 is optimal; below 1 is worse. None when the ratio is not meaningful (signs)."""
    if not (math.isfinite(objective) and math.isfinite(optimum)):
        return None
    if abs(optimum) < 1e-12 and abs(objective) < 1e-12:
        return 1.0
    if problem.sense == "maximize":
        return objective / optimum if optimum > 0 else None
    if optimum > 0 and objective > 0:
        return optimum / objective
    if optimum < 0 and objective <= 0:
        return objective / optimum
    return None


def report(problem: ReducedProblem, chosen: Candidate, solver: str,
           optimum: tuple[float, bool] | None = None,
           samples: SampleOutcome | None = None) -> ProblemSolution:
    """The solution in network terms; optimum is (objective, proven) when computed."""
    solution = ProblemSolution(
        kind=problem.kind, solver=solver, variables=problem.qubo.size,
        feasible=chosen.feasible, violations=problem.violations(chosen.x),
        objective=round(chosen.objective, 9) if math.isfinite(chosen.objective) else 0.0,
        objective_sense=problem.sense, energy=round(float(problem.qubo.energy(chosen.x)), 9),
        assignment=key_from_bits(chosen.x),
    )
    if optimum is not None:
        solution.optimum = round(optimum[0], 9)
        solution.optimum_proven = optimum[1]
        ratio = approximation_ratio(problem, chosen.objective, optimum[0])
        solution.approximation_ratio = None if ratio is None else round(ratio, 6)
    if samples is not None:
        solution.samples = samples.samples
        solution.feasible_fraction_before_repair = round(samples.feasible_before, 6)
        solution.feasible_fraction_after_repair = round(samples.feasible_after, 6)
    problem.describe(chosen.x, solution)
    return solution
