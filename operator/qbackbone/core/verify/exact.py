"""Exact reference values from statevector simulation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import Pauli, Statevector


def exact_expectations(circuit: QuantumCircuit, observables: Sequence[str]) -> list[float]:
    """<psi|P|psi> for each Pauli string, from the circuit's final statevector."""
    state = Statevector(circuit)
    return [float(np.real(state.expectation_value(Pauli(obs)))) for obs in observables]


def exact_distribution(circuit: QuantumCircuit) -> dict[str, float]:
    """Outcome probabilities over all clbits of a circuit whose measurements are all final.

    Keys are in Qiskit order (clbit 0 rightmost); clbits never measured read 0.
    """
    body = circuit.remove_final_measurements(inplace=False)
    clbit_to_qubit: dict[int, int] = {}
    for inst in circuit.data:
        if inst.operation.name == "measure":
            q = circuit.find_bit(inst.qubits[0]).index
            c = circuit.find_bit(inst.clbits[0]).index
            clbit_to_qubit[c] = q
    measured = sorted(clbit_to_qubit)
    probs = Statevector(body).probabilities_dict(qargs=[clbit_to_qubit[c] for c in measured])
    width = circuit.num_clbits
    out: dict[str, float] = {}
    for key, p in probs.items():
        bits = ["0"] * width
        for pos, c in enumerate(measured):
            bits[width - 1 - c] = key[len(measured) - 1 - pos]
        full = "".join(bits)
        out[full] = out.get(full, 0.0) + float(p)
    return out
