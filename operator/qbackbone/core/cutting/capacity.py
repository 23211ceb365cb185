"""What the planner needs to know about one QPU."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QPUCapacity:
    """A QPU's qubit count and feasible two-qubit depth (``None``: no depth limit)."""

    name: str
    qubits: int
    max_two_qubit_depth: int | None

    def __post_init__(self) -> None:
        if self.qubits < 1:
            raise ValueError(f"QPU {self.name!r}: qubits must be >= 1, got {self.qubits}")
        if self.max_two_qubit_depth is not None and self.max_two_qubit_depth < 1:
            raise ValueError(
                f"QPU {self.name!r}: max_two_qubit_depth must be >= 1 or None, "
                f"got {self.max_two_qubit_depth}"
            )

    def fits(self, qubits: int, two_qubit_depth: int) -> bool:
        """Whether a subcircuit of this width and two-qubit depth runs here."""
        depth_ok = self.max_two_qubit_depth is None or two_qubit_depth <= self.max_two_qubit_depth
        return qubits <= self.qubits and depth_ok
