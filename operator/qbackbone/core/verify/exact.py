"""Exact reference values from statevector simulation, bounded by memory."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import Pauli, Statevector

# The exact reference holds 2^n complex128 amplitudes (16 bytes each) and Statevector makes
# a copy or two of them while it evolves and takes expectations: 26 qubits is 1 GiB, about
# 3 GiB at the peak, which an operator or worker pod can be expected to have; 30 qubits (the
# most the policy's exactMaxQubits accepts) would be 16 GiB. This ceiling holds whatever the
# policy says; wider results are checked against physical bounds instead.
EXACT_MAX_QUBITS = 26


def no_exact_reason(qubits: int, policy_max_qubits: int, dynamic: bool,
                    memory_qubits: int | None = None) -> str | None:
    """Why a circuit gets no exact reference (None when it gets one); ``memory_qubits`` is the
    widest statevector the job's memory limit holds."""
    if dynamic:
        return "no exact reference: the circuit measures mid-circuit or uses classical control"
    if qubits > EXACT_MAX_QUBITS and policy_max_qubits > EXACT_MAX_QUBITS:
        return (f"no exact reference: {qubits} qubits is beyond the exact simulation's memory "
                f"ceiling of {EXACT_MAX_QUBITS} qubits (2^{EXACT_MAX_QUBITS} amplitudes, 1 GiB; "
                f"the policy's exactMaxQubits {policy_max_qubits} is capped there)")
    if memory_qubits is not None and qubits > memory_qubits and qubits <= policy_max_qubits:
        return (f"no exact reference: {qubits} qubits does not fit in the job's memory limit "
                f"(policy limits.maxMemoryMiB holds {memory_qubits} qubits)")
    if qubits > policy_max_qubits:
        return (f"no exact reference: {qubits} qubits is wider than the policy's "
                f"exactMaxQubits ({policy_max_qubits})")
    return None


def _check_width(circuit: QuantumCircuit) -> None:
    if circuit.num_qubits > EXACT_MAX_QUBITS:
        raise ValueError(f"exact simulation of {circuit.num_qubits} qubits would need 2^"
                         f"{circuit.num_qubits} amplitudes; the ceiling is {EXACT_MAX_QUBITS}")


def exact_expectations(circuit: QuantumCircuit, observables: Sequence[str]) -> list[float]:
    """<psi|P|psi> for each Pauli string, from the circuit's final statevector."""
    _check_width(circuit)
    state = Statevector(circuit)
    return [float(np.real(state.expectation_value(Pauli(obs)))) for obs in observables]


def exact_distribution(circuit: QuantumCircuit) -> dict[str, float]:
    """Outcome probabilities over all clbits of a circuit whose measurements are all final.

    Keys are in Qiskit order (clbit 0 rightmost); clbits never measured read 0.
    """
    _check_width(circuit)
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
