"""Slice admission as a decomposable whole problem: slice requests are the units (admitted or
not), PoP and link capacities the shared resources.

A request is homed in the region of its anchor, the place carrying the largest share of its
use (amount / capacity). A resource used by requests of two regions, or lying in two, is a
border resource: its capacity is shared, and the coordinator reconciles it. A block's
sub-problem is an ordinary SliceProblem (the same QUBO, repair and local search) over the
block's requests, each capacity reduced by what every other admitted request uses and by the
coordinator's reserve on contested resources, so its objective is the whole revenue with the
rest held fixed. A request that cannot fit on its own (an amount above a capacity) is never
offered to a sub-problem: it is rejected with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import ClassVar, cast

import networkx as nx
import numpy as np

from qbackbone.api.problem import SliceAdmissionProblem
from qbackbone.core.optimize.decompose.base import (
    Decomposable,
    Key,
    Score,
    State,
    SubProblem,
    pack,
)
from qbackbone.core.optimize.decompose.places import place_graph, resource_places
from qbackbone.core.optimize.decompose.regions import Region, make_regions
from qbackbone.core.optimize.limits import MIN_QUANTITY
from qbackbone.core.optimize.qubo import LinearConstraint, Qubo
from qbackbone.core.optimize.slices import SliceProblem, reduce_slices

CAPACITY_SCALE = 1000  # amounts and capacities in thousandths of their unit in CP-SAT


class SliceDecomposition(Decomposable):
    """A SliceProblem seen by the coordinator."""

    kind: ClassVar[str] = "sliceAdmission"
    nouns: ClassVar[tuple[str, str]] = ("slice", "resource")

    def __init__(self, problem: SliceProblem, graph: nx.Graph | None = None) -> None:
        self.problem: SliceProblem = problem
        assert problem.spec is not None
        self.spec: SliceAdmissionProblem = problem.spec
        self.places = resource_places(self.spec, graph)
        self.graph = place_graph(self.spec, self.places, graph)
        self._capacity = {r.name: r.capacity for r in self.spec.resources}
        self._touches = [{r for r, a in s.demands.items() if a > 0} for s in self.spec.slices]
        self.unservable: dict[int, str] = {}  # request -> why it cannot be admitted at all
        for k, s in enumerate(self.spec.slices):
            over = [f"{r} {a:g} of capacity {self._capacity[r]:g}"
                    for r, a in sorted(s.demands.items()) if a > self._capacity[r] * (1 + 1e-9)]
            if over:
                self.unservable[k] = (f"slice {s.name!r} needs " + ", ".join(over)
                                      + ": it cannot be admitted")

    # -- the whole problem ------------------------------------------------------------------
    @property
    def units(self) -> int:
        return len(self.spec.slices)

    def initial(self) -> State:
        """Nothing admitted (feasible, no revenue)."""
        return [0] * self.units

    def encode(self, state: State) -> np.ndarray:
        return self.problem.encode([s for s, v in enumerate(state) if v])

    def decode(self, x: np.ndarray) -> State | None:
        return [int(x[s]) for s in range(self.units)]

    def loads(self, state: State) -> Mapping[Key, float]:
        return cast(Mapping[Key, float], self.problem.usage([s for s, v in enumerate(state) if v]))

    def capacity(self, key: Key) -> float:
        return float(self._capacity[str(key)])

    def score(self, state: State) -> Score:
        """(capacity overflow relative to each capacity, minus the revenue)."""
        over = sum(max(0.0, v - self._capacity[str(r)]) / max(self._capacity[str(r)], 1.0)
                   for r, v in self.loads(state).items())
        revenue = sum(s.revenue for s, v in zip(self.spec.slices, state, strict=True) if v)
        return (round(over, 9), -revenue)

    def touches(self, unit: int) -> set[Key]:
        return set(self._touches[unit])

    # -- regions ----------------------------------------------------------------------------
    def anchor(self, unit: int) -> str:
        """The place carrying the largest share of a request's use (ties: by name)."""
        share: dict[str, float] = {}
        for r, amount in self.spec.slices[unit].demands.items():
            ends = self.places[r]
            for p in ends:
                share[p] = share.get(p, 0.0) + amount / max(self._capacity[r], 1e-9) / len(ends)
        return min(share, key=lambda p: (-share[p], p))

    def weights(self) -> dict[str, float]:
        """Whole-QUBO variables per place: each request at its anchor, each overflowing
        resource's slack bits at its first place."""
        out: dict[str, float] = {}
        for k in range(self.units):
            a = self.anchor(k)
            out[a] = out.get(a, 0.0) + 1.0
        for row in self.problem.rows:
            place = self.places[row.name][0]
            out[place] = out.get(place, 0.0) + self.spec.slack_bits
        return out

    def regions(self, width: int, attribute: str | None, seed: int = 0) -> list[Region]:
        return make_regions(self.graph, (), width, attribute, seed, self.weights())

    def homes(self, regions: Sequence[Region]) -> list[int]:
        where = {n: k for k, r in enumerate(regions) for n in r.nodes}
        return [where[self.anchor(k)] for k in range(self.units)]

    def border_resources(self, regions: Sequence[Region], homes: Sequence[int]) -> set[str]:
        """Resources shared across regions: used by requests of two, or lying in two."""
        where = {n: k for k, r in enumerate(regions) for n in r.nodes}
        users: dict[str, set[int]] = {r: {where[p] for p in ends}
                                      for r, ends in self.places.items()}
        for k, h in enumerate(homes):
            for r in self._touches[k]:
                users[r].add(h)
        return {r for r, seen in users.items() if len(seen) > 1}

    def border_units(self, regions: Sequence[Region], homes: Sequence[int]) -> set[int]:
        border = self.border_resources(regions, homes)
        return {k for k in range(self.units) if self._touches[k] & border}

    # -- sub-problems -----------------------------------------------------------------------
    def _residual(self, members: Sequence[int], state: State,
                  reserve: Mapping[Key, float]) -> dict[str, float]:
        """Capacity left to the block: others' use and the reserve taken away."""
        inside = set(members)
        others = self.problem.usage([s for s, v in enumerate(state) if v and s not in inside])
        used = {r for k in members for r in self._touches[k]}
        left = {}
        for r in sorted(used):
            value = self._capacity[r] - others.get(r, 0.0) - reserve.get(r, 0.0)
            left[r] = value if value >= MIN_QUANTITY else 0.0
        return left

    def _spec_for(self, members: Sequence[int], state: State, reserve: Mapping[Key, float],
                  bits: int) -> SliceAdmissionProblem:
        left = self._residual(members, state, reserve)
        return SliceAdmissionProblem.model_validate({
            "resources": [{"name": r, "capacity": c} for r, c in left.items()],
            "slices": [self.spec.slices[k].model_dump(by_alias=True) for k in members],
            "slackBits": bits})

    def _width(self, members: Sequence[int], state: State, reserve: Mapping[Key, float],
               bits: int) -> int:
        left = self._residual(members, state, reserve)
        over = sum(1 for r, c in left.items()
                   if sum(self.spec.slices[k].demands.get(r, 0.0) for k in members) > c)
        return len(members) + bits * over

    def _bits(self, members: Sequence[int], state: State, reserve: Mapping[Key, float],
              width: int) -> int:
        """The most slack bits (up to the problem's) that keep the block within `width`."""
        for bits in range(self.spec.slack_bits, 1, -1):
            if self._width(members, state, reserve, bits) <= width:
                return bits
        return 1

    def blocks(self, members: Sequence[int], state: State, reserve: Mapping[Key, float],
               width: int) -> list[list[int]]:
        """The region's servable requests, highest revenue first, in blocks that fit `width`
        (with the fewest slack bits, one)."""
        movable = sorted((k for k in members if k not in self.unservable),
                         key=lambda k: (-self.spec.slices[k].revenue, k))
        return pack(movable, lambda trial: self._width(trial, state, reserve, 1) <= width)

    def subproblem(self, region: int, block: int, members: Sequence[int], state: State,
                   reserve: Mapping[Key, float], width: int) -> SubProblem:
        """The block's SliceProblem, its slack bits lowered (to one) until it fits `width`."""
        bits = self._bits(members, state, reserve, width)
        problem = reduce_slices(self._spec_for(members, state, reserve, bits))
        return SubProblem(region, block, tuple(members), problem)

    def moves(self, sub: SubProblem, x: np.ndarray, state: State) -> dict[int, int]:
        assert isinstance(sub.problem, SliceProblem)
        admitted = set(sub.problem.admitted(x))
        out = {}
        for position, k in enumerate(sub.demands):
            value = int(position in admitted)
            if value != state[k]:
                out[k] = value
        return out

    # -- the exact model --------------------------------------------------------------------
    def exact_model(self) -> tuple[Qubo, list[LinearConstraint]]:
        """Minus the revenue over the admission variables; every capacity exact (amounts
        rounded up, capacities down, in thousandths: never more permissive)."""
        n = self.units
        objective = self.problem.objective_qubo or self.problem.qubo
        admit = Qubo(objective.variables[:n], objective.linear[:n].copy(),
                     objective.quadratic[:n, :n].copy(), objective.offset)
        constraints = []
        for r in self.spec.resources:
            use = {k: math.ceil(s.demands.get(r.name, 0.0) * CAPACITY_SCALE - 1e-6)
                   for k, s in enumerate(self.spec.slices) if s.demands.get(r.name, 0.0) > 0}
            if sum(s.demands.get(r.name, 0.0) for s in self.spec.slices) > r.capacity:
                constraints.append(LinearConstraint(
                    use, math.floor(r.capacity * CAPACITY_SCALE + 1e-6), equality=False))
        return admit, constraints

    def fix(self, unit: int, choice: int) -> LinearConstraint:
        return LinearConstraint({unit: 1}, choice)

    def state_of_model(self, x: Sequence[int] | np.ndarray) -> State:
        return [int(x[k]) for k in range(self.units)]
