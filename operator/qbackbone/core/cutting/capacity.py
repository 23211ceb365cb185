"""What the planner needs to know about one QPU: its size, depth limit and noise."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

SimulatorUse = Literal["Fallback", "Allowed", "Forbidden"]
"""Ideal simulators for a subcircuit: only when no noisy QPU fits it, alongside noisy QPUs, or
never (the policy's ``hardware.idealSimulators``)."""


@dataclass(frozen=True)
class QPUCapacity:
    """A QPU's qubit count and feasible two-qubit depth (``None``: no depth limit), and the
    median gate and readout errors that estimate a subcircuit's fidelity on it (all 0 on an
    ideal simulator)."""

    name: str
    qubits: int
    max_two_qubit_depth: int | None
    ideal: bool = True
    one_qubit_error: float = 0.0
    two_qubit_error: float = 0.0
    readout_error: float = 0.0

    def __post_init__(self) -> None:
        if self.qubits < 1:
            raise ValueError(f"QPU {self.name!r}: qubits must be >= 1, got {self.qubits}")
        if self.max_two_qubit_depth is not None and self.max_two_qubit_depth < 1:
            raise ValueError(
                f"QPU {self.name!r}: max_two_qubit_depth must be >= 1 or None, "
                f"got {self.max_two_qubit_depth}"
            )
        for error in (self.one_qubit_error, self.two_qubit_error, self.readout_error):
            if not 0.0 <= error < 1.0:
                raise ValueError(f"QPU {self.name!r}: error rates must lie in [0, 1)")

    def fits(self, qubits: int, two_qubit_depth: int) -> bool:
        """Whether a subcircuit of this width and two-qubit depth runs here."""
        depth_ok = self.max_two_qubit_depth is None or two_qubit_depth <= self.max_two_qubit_depth
        return qubits <= self.qubits and depth_ok

    def fidelity(self, qubits: int, one_qubit_gates: int, two_qubit_gates: int) -> float:
        """Estimated success probability of a subcircuit here before routing: the product of
        its gates' and its readouts' median fidelities (1 on an ideal simulator)."""
        if self.ideal:
            return 1.0
        return math.exp(one_qubit_gates * math.log1p(-self.one_qubit_error)
                        + two_qubit_gates * math.log1p(-self.two_qubit_error)
                        + qubits * math.log1p(-self.readout_error))


def allowed_qpus(qpus: Sequence[QPUCapacity], qubits: int, two_qubit_depth: int,
                 simulators: SimulatorUse) -> list[QPUCapacity]:
    """The QPUs that may run a subcircuit of this size: those it fits, ideal simulators only
    as ``simulators`` allows."""
    fitting = [q for q in qpus if q.fits(qubits, two_qubit_depth)]
    noisy = [q for q in fitting if not q.ideal]
    if simulators == "Forbidden" or (simulators == "Fallback" and noisy):
        return noisy
    return fitting
