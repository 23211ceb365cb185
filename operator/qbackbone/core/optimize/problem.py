"""What every reduced problem offers: its QUBO, and decode, check, repair, improve, report."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from qbackbone.api.problem import ProblemKind, ProblemSolution
from qbackbone.core.optimize.classical import local_search
from qbackbone.core.optimize.qubo import LinearConstraint, Qubo

Sense = Literal["minimize", "maximize"]


class ProblemError(ValueError):
    """A problem that cannot be reduced (unknown node, empty topology, ...)."""


class ProblemTooLarge(ProblemError):
    """A problem beyond a size limit (a document, a graph, a QUBO): reported as InputTooLarge."""


@dataclass
class ReducedProblem(ABC):
    """A network problem as a QUBO, with the way back from bits to a decision.

    `objective_qubo` and `constraints` give exact solvers the same problem without penalties:
    since penalties make every feasible assignment beat every infeasible one, the QUBO's
    minimum is the constrained minimum of the objective whenever a feasible assignment exists.
    """

    qubo: Qubo
    notes: list[str] = field(default_factory=list)
    objective_qubo: Qubo | None = None
    constraints: list[LinearConstraint] = field(default_factory=list)

    kind: ClassVar[ProblemKind] = "qubo"
    sense: ClassVar[Sense] = "minimize"

    @abstractmethod
    def objective(self, x: np.ndarray) -> float:
        """The objective in network terms (congestion, revenue, energy) of an assignment."""

    @abstractmethod
    def violations(self, x: np.ndarray) -> list[str]:
        """Every operational constraint the decoded decision breaks, for a person."""

    @abstractmethod
    def repair(self, x: np.ndarray) -> np.ndarray:
        """A nearby assignment that satisfies the constraints (when one exists)."""

    @abstractmethod
    def improve(self, x: np.ndarray) -> np.ndarray:
        """Local search from a repaired assignment, keeping it feasible."""

    @abstractmethod
    def describe(self, x: np.ndarray, solution: ProblemSolution) -> None:
        """Fill in the decision in network terms (routes, admitted slices)."""

    def better(self, a: float, b: float) -> bool:
        """Whether objective a beats objective b."""
        return a < b if self.sense == "minimize" else a > b


@dataclass
class PlainQubo(ReducedProblem):
    """An explicit QUBO: no constraints beyond the energy itself."""

    def objective(self, x: np.ndarray) -> float:
        return float(self.qubo.energy(x))

    def violations(self, x: np.ndarray) -> list[str]:
        return []

    def repair(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.int8).copy()

    def improve(self, x: np.ndarray) -> np.ndarray:
        return local_search(self.qubo, x)

    def describe(self, x: np.ndarray, solution: ProblemSolution) -> None:
        return None
