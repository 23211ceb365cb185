"""Traffic engineering as a decomposable whole problem: demands are the units, paths the
choices, links the shared resources (the helpers are in subproblems.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar, cast

import numpy as np

from qbackbone.core.optimize.decompose.base import Decomposable, Key, Score, State, SubProblem
from qbackbone.core.optimize.decompose.regions import (
    Region,
    crosses_border,
    home_regions,
    make_regions,
)
from qbackbone.core.optimize.decompose.subproblems import (
    build_subproblem,
    score,
    split_region,
    traffic_moves,
)
from qbackbone.core.optimize.qubo import LinearConstraint, Qubo
from qbackbone.core.optimize.routing import Edge, path_edges
from qbackbone.core.optimize.traffic import TrafficProblem

CAPACITY_SCALE = 1000  # volumes and capacities in thousandths of their unit in CP-SAT


def routing_model(whole: TrafficProblem) -> tuple[Qubo, list[LinearConstraint]]:
    """The whole problem over its path variables only: congestion as the objective, one path
    per demand and every capacity (not the QUBO's conservative units) as hard constraints."""
    n = sum(len(idx) for idx in whole.variable_of)
    objective = whole.objective_qubo or whole.qubo
    paths_only = Qubo(objective.variables[:n], objective.linear[:n].copy(),
                      objective.quadratic[:n, :n].copy(), objective.offset)
    constraints = [LinearConstraint({i: 1 for i in idx}, 1) for idx in whole.variable_of]
    users: dict[Edge, dict[int, int]] = {}
    for d, (demand, idx) in enumerate(zip(whole.free, whole.variable_of, strict=True)):
        for p, i in enumerate(idx):
            for e in path_edges(demand.paths[p]):
                users.setdefault(e, {})[i] = round(whole.free[d].volume * CAPACITY_SCALE)
    for e, use in sorted(users.items()):
        room = whole.graph.edges[e]["capacity"] - whole.background.get(e, 0.0)
        if sum(use.values()) > room * CAPACITY_SCALE:
            constraints.append(LinearConstraint(use, math.floor(room * CAPACITY_SCALE + 1e-6),
                                                equality=False))
    return paths_only, constraints


class TrafficDecomposition(Decomposable):
    """A TrafficProblem seen by the coordinator."""

    kind: ClassVar[str] = "trafficEngineering"
    nouns: ClassVar[tuple[str, str]] = ("demand", "link")

    def __init__(self, problem: TrafficProblem) -> None:
        self.problem: TrafficProblem = problem
        self._touches = [{e for path in d.paths for e in path_edges(path)} for d in problem.free]

    @property
    def units(self) -> int:
        return len(self.problem.free)

    def initial(self) -> State:
        """Every demand on its shortest candidate path (the routing without optimisation)."""
        return [0] * self.units

    def encode(self, state: State) -> np.ndarray:
        return self.problem.encode(state)

    def decode(self, x: np.ndarray) -> State | None:
        return self.problem.routing_of(x)

    def loads(self, state: State) -> Mapping[Key, float]:
        return cast(Mapping[Key, float], self.problem.loads(state))

    def capacity(self, key: Key) -> float:
        return float(self.problem.graph.edges[key]["capacity"])

    def score(self, state: State) -> Score:
        return score(self.problem, state)

    def touches(self, unit: int) -> set[Key]:
        return set(self._touches[unit])

    def regions(self, width: int, attribute: str | None, seed: int = 0) -> list[Region]:
        return make_regions(self.problem.graph, self.problem.free, width, attribute, seed)

    def homes(self, regions: Sequence[Region]) -> list[int]:
        return home_regions(regions, self.problem.free)

    def border_units(self, regions: Sequence[Region], homes: Sequence[int]) -> set[int]:
        return {d for d, h in enumerate(homes) if crosses_border(regions[h], self.problem.free[d])}

    def blocks(self, members: Sequence[int], state: State, reserve: Mapping[Key, float],
               width: int) -> list[list[int]]:
        return split_region(self.problem, members, state, _edges(reserve), width)

    def subproblem(self, region: int, block: int, members: Sequence[int], state: State,
                   reserve: Mapping[Key, float], width: int) -> SubProblem:
        return build_subproblem(self.problem, region, block, members, state, _edges(reserve))

    def moves(self, sub: SubProblem, x: np.ndarray, state: State) -> dict[int, int]:
        return traffic_moves(self.problem, sub, x, state)

    def exact_model(self) -> tuple[Qubo, list[LinearConstraint]]:
        return routing_model(self.problem)

    def fix(self, unit: int, choice: int) -> LinearConstraint:
        return LinearConstraint({self.problem.variable_of[unit][choice]: 1}, 1)

    def state_of_model(self, x: Sequence[int] | np.ndarray) -> State:
        return [int(np.argmax([x[i] for i in idx])) for idx in self.problem.variable_of]


def _edges(reserve: Mapping[Key, float]) -> dict[Edge, float]:
    return {cast(Edge, e): v for e, v in reserve.items()}
