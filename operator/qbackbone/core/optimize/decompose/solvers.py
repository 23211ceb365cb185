"""A classical block solver: each sub-problem solved exactly (brute force or CP-SAT)."""

from __future__ import annotations

from qbackbone.core.optimize.classical import solve_exact
from qbackbone.core.optimize.decompose.coordinator import BlockResult
from qbackbone.core.optimize.decompose.regions import Region
from qbackbone.core.optimize.decompose.subproblems import SubProblem
from qbackbone.core.optimize.solve import refine, solve_classically


class ClassicalBlockSolver:
    """Exact per block within `time_limit` seconds (annealing when no proof comes)."""

    def __init__(self, time_limit: float = 2.0) -> None:
        self.time_limit = time_limit

    def __call__(self, sub: SubProblem, region: Region, seed: int) -> BlockResult:
        problem = sub.problem
        exact = solve_exact(problem.qubo, self.time_limit, problem.objective_qubo,
                            problem.constraints)
        raw = exact if exact is not None and exact.proven_optimal else solve_classically(
            problem, self.time_limit, seed)
        chosen = refine(problem, raw.x)
        return BlockResult(chosen.x, raw.method, "Classical", method=raw.method)
