"""What the coordinator needs of a whole problem to decompose it by region, whatever its kind.

A whole problem is a list of decision units (traffic demands, slice requests), each with a
choice (a candidate path; admitted or not). A state is the choice of every unit. Units share
capacitated resources (links; PoP and link capacities). A resource used by units homed in two
regions is a border resource, and the coordinator reconciles it. TrafficDecomposition
(traffic.py) and SliceDecomposition (slices.py) implement this interface; the coordinator,
the reconciliation, the final repair and the CP-SAT reference are written once against it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from qbackbone.core.optimize.decompose.regions import Region
from qbackbone.core.optimize.problem import ReducedProblem, Sense
from qbackbone.core.optimize.qubo import LinearConstraint, Qubo

State = list[int]  # the choice of every unit (candidate path index; 1 admitted, 0 rejected)
Score = tuple[float, float]  # (overload, objective to minimise): lower is better, overload first
Key = Hashable  # a capacitated resource (a link, a named capacity)


@dataclass(frozen=True)
class SubProblem:
    """One QPU-sized block of a region: an ordinary reduced problem over the block's units,
    with every other unit fixed at the current state."""

    region: int
    block: int
    demands: tuple[int, ...]  # units of the whole problem solved here
    problem: ReducedProblem

    @property
    def variables(self) -> int:
        """QUBO width (qubits)."""
        return self.problem.qubo.size

    def moves(self, whole: Decomposable, x: np.ndarray, state: State) -> dict[int, int]:
        """The whole-problem changes a sub-problem assignment asks for."""
        return whole.moves(self, x, state)


def pack(units: Sequence[int], fits: Callable[[list[int]], bool]) -> list[list[int]]:
    """Units, in order, in blocks: a block takes the next unit while `fits` holds, else a new
    block starts (a unit that fits nowhere alone still gets a block of its own)."""
    blocks: list[list[int]] = []
    current: list[int] = []
    for unit in units:
        trial = [*current, unit]
        if not current or fits(trial):
            current = trial
        else:
            blocks.append(current)
            current = [unit]
    if current:
        blocks.append(current)
    return blocks


def apply(state: State, moves: Mapping[int, int]) -> State:
    """A state with some units changed."""
    out = list(state)
    for d, p in moves.items():
        out[d] = p
    return out


class Decomposable(ABC):
    """A whole problem as the coordinator sees it."""

    kind: ClassVar[str]
    nouns: ClassVar[tuple[str, str]]  # a unit, a resource: ("demand", "link")
    problem: ReducedProblem  # the whole problem: its constraints, repair and local search

    @property
    def sense(self) -> Sense:
        """Whether the reported objective is minimised or maximised."""
        return self.problem.sense

    @property
    @abstractmethod
    def units(self) -> int:
        """How many decision units."""

    @abstractmethod
    def initial(self) -> State:
        """The state without optimisation (shortest paths; nothing admitted)."""

    @abstractmethod
    def encode(self, state: State) -> np.ndarray:
        """The whole QUBO's assignment of a state."""

    @abstractmethod
    def decode(self, x: np.ndarray) -> State | None:
        """The state of an assignment (None when a unit has no single choice)."""

    @abstractmethod
    def loads(self, state: State) -> Mapping[Key, float]:
        """The use of every resource."""

    @abstractmethod
    def capacity(self, key: Key) -> float:
        """A resource's capacity."""

    @abstractmethod
    def score(self, state: State) -> Score:
        """(overload, objective to minimise) of a whole state."""

    @abstractmethod
    def touches(self, unit: int) -> set[Key]:
        """Every resource a unit may use, whatever its choice."""

    @abstractmethod
    def regions(self, width: int, attribute: str | None, seed: int = 0) -> list[Region]:
        """Regions from `attribute` on the nodes (sites), else a partition balanced to about
        `width` variables per region (regions.make_regions)."""

    @abstractmethod
    def homes(self, regions: Sequence[Region]) -> list[int]:
        """The region of every unit."""

    @abstractmethod
    def border_units(self, regions: Sequence[Region], homes: Sequence[int]) -> set[int]:
        """Units that may use a resource outside their region, or shared with another."""

    @abstractmethod
    def blocks(self, members: Sequence[int], state: State, reserve: Mapping[Key, float],
               width: int) -> list[list[int]]:
        """A region's units (those that can move) in blocks whose QUBO fits `width`."""

    @abstractmethod
    def subproblem(self, region: int, block: int, members: Sequence[int], state: State,
                   reserve: Mapping[Key, float], width: int) -> SubProblem:
        """The sub-QUBO of a block, every other unit fixed and `reserve` held back."""

    @abstractmethod
    def moves(self, sub: SubProblem, x: np.ndarray, state: State) -> dict[int, int]:
        """The changes a sub-problem's assignment asks for."""

    @abstractmethod
    def exact_model(self) -> tuple[Qubo, list[LinearConstraint]]:
        """The whole problem over its decision variables only, with exact capacities as hard
        constraints, objective minimised (for CP-SAT)."""

    @abstractmethod
    def fix(self, unit: int, choice: int) -> LinearConstraint:
        """The constraint holding a unit at a choice in exact_model()."""

    @abstractmethod
    def state_of_model(self, x: Sequence[int] | np.ndarray) -> State:
        """The state of an exact_model() assignment."""

    def overloaded(self, state: State) -> set[Key]:
        """Resources used beyond their capacity."""
        return {k for k, v in self.loads(state).items()
                if v > self.capacity(k) * (1 + 1e-9) + 1e-12}

    def neighbourhood(self, keys: set[Key]) -> list[int]:
        """Units that may use any of the resources."""
        return [d for d in range(self.units) if self.touches(d) & keys]
