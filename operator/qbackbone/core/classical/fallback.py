"""Run a circuit classically and report the same result shape as the quantum path."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qiskit import QuantumCircuit, transpile
from qiskit.quantum_info import Pauli
from qiskit_aer import AerSimulator

from qbackbone.api.policy import FallbackOptions

# Rough cost model, fitted on this 2-core machine: seconds per gate per amplitude.
_STATEVECTOR_COST = 2e-9
_MPS_COST_PER_GATE = 2e-4


def choose_method(qubits: int, options: FallbackOptions) -> str | None:
    """statevector or matrix_product_state within the policy's limits; None if neither fits."""
    if options.method in ("auto", "statevector") and qubits <= options.max_statevector_qubits:
        return "statevector"
    if options.method in ("auto", "mps") and qubits <= options.max_mps_qubits:
        return "matrix_product_state"
    return None


def estimate_seconds(method: str | None, qubits: int, gates: int) -> float | None:
    """Estimated run time of the fallback (None when infeasible)."""
    if method is None:
        return None
    if method == "statevector":
        return 0.05 + _STATEVECTOR_COST * gates * 2.0**qubits
    return 0.05 + _MPS_COST_PER_GATE * gates


@dataclass(frozen=True)
class ClassicalOutcome:
    """Expectation values (exact: no shot noise) or sampled counts."""

    values: list[float] | None
    counts: dict[str, int] | None
    method: str


def run_classical(circuit: QuantumCircuit, observables: Sequence[str] | None, shots: int,
                  method: str, seed: int | None) -> ClassicalOutcome:
    """Expectations by saving them in the simulator, or counts by sampling ``shots`` times."""
    simulator = AerSimulator(method=method)
    if observables is not None:
        probe = circuit.copy()
        for index, obs in enumerate(observables):
            probe.save_expectation_value(Pauli(obs), list(range(circuit.num_qubits)),
                                         label=f"obs{index}")
        compiled = transpile(probe, simulator, optimization_level=0)
        data = simulator.run(compiled, shots=1, seed_simulator=seed).result().data(0)
        return ClassicalOutcome([float(data[f"obs{i}"].real) for i in range(len(observables))],
                                None, method)
    compiled = transpile(circuit, simulator, optimization_level=0)
    counts = simulator.run(compiled, shots=shots, seed_simulator=seed).result().get_counts()
    return ClassicalOutcome(None, {k.replace(" ", ""): int(v) for k, v in counts.items()}, method)
