"""Features of a job's circuit that the QIP reads."""

from __future__ import annotations

from dataclasses import dataclass

from qiskit import QuantumCircuit, transpile

# A device-neutral basis: features are comparable across QPUs of different native gates.
FEATURE_BASIS = ["rz", "sx", "x", "cx"]


def two_qubit_depth(circuit: QuantumCircuit) -> int:
    """Depth counted in layers of two-qubit gates (the quantity coherence limits)."""
    return int(circuit.depth(filter_function=lambda inst: inst.operation.num_qubits == 2))


def count_two_qubit_gates(circuit: QuantumCircuit) -> int:
    """Number of gates acting on two or more qubits (barriers and measurements excluded)."""
    return sum(
        1 for inst in circuit.data
        if inst.operation.num_qubits >= 2 and inst.operation.name not in ("barrier", "measure")
    )


@dataclass(frozen=True)
class CircuitFeatures:
    """Width, depth and gate counts of the circuit in a device-neutral basis."""

    qubits: int
    depth: int
    two_qubit_depth: int
    two_qubit_gates: int
    size: int
    measured_bases: int
    shots_per_basis: int

    @property
    def total_shots(self) -> int:
        """Shots over all measured bases."""
        return self.measured_bases * self.shots_per_basis

    def as_dict(self) -> dict[str, int | float]:
        """Numeric features, camelCase, for status.decision.features."""
        out: dict[str, int | float] = {
            "qubits": self.qubits, "depth": self.depth, "twoQubitDepth": self.two_qubit_depth,
            "twoQubitGates": self.two_qubit_gates, "size": self.size,
            "measuredBases": self.measured_bases, "shotsPerBasis": self.shots_per_basis,
            "totalShots": self.total_shots,
        }
        return out



def extract_features(
    circuit: QuantumCircuit, measured_bases: int, shots_per_basis: int
) -> CircuitFeatures:
    """Transpile to a neutral basis (no layout) and measure the circuit."""
    body = circuit.remove_final_measurements(inplace=False)
    neutral = transpile(body, basis_gates=FEATURE_BASIS, optimization_level=1, seed_transpiler=7)
    return CircuitFeatures(
        qubits=circuit.num_qubits,
        depth=int(neutral.depth()),
        two_qubit_depth=two_qubit_depth(neutral),
        two_qubit_gates=count_two_qubit_gates(neutral),
        size=int(neutral.size()),
        measured_bases=measured_bases,
        shots_per_basis=shots_per_basis,
    )
