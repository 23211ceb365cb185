"""Shape a parsed circuit for what the job measures: expectation values or counts."""

from __future__ import annotations

from qiskit import QuantumCircuit
from qiskit.circuit import ControlFlowOp

from qbackbone.api.conditions import Reason
from qbackbone.core.errors import JobFailure


def _drop_initial_resets(circuit: QuantumCircuit) -> QuantumCircuit:
    """Resets before anything touched a qubit are no-ops on |0>; remove them."""
    touched: set[int] = set()
    out = circuit.copy_empty_like()
    for inst in circuit.data:
        qubits = [circuit.find_bit(q).index for q in inst.qubits]
        if inst.operation.name == "reset" and not touched.intersection(qubits):
            continue
        if inst.operation.name != "barrier":
            touched.update(qubits)
        out.append(inst)
    return out


def unitary_part(circuit: QuantumCircuit) -> QuantumCircuit:
    """The circuit without final measurements and initial resets, for expectation values.

    Mid-circuit measurements, later resets and classically controlled operations make the
    state a mixture that Pauli expectations of the final state do not describe: refuse them.
    """
    body = _drop_initial_resets(circuit.remove_final_measurements(inplace=False))
    for inst in body.data:
        op = inst.operation
        if op.name == "measure":
            raise JobFailure(
                Reason.UNSUPPORTED_OPERATION,
                "the circuit measures a qubit before its end; expectation values need the final "
                "state: remove the mid-circuit measurement or submit a sampling job",
            )
        if op.name == "reset":
            raise JobFailure(
                Reason.UNSUPPORTED_OPERATION,
                "the circuit resets a qubit after using it; expectation values need a unitary "
                "circuit: remove the reset or submit a sampling job",
            )
        if isinstance(op, ControlFlowOp):
            raise JobFailure(
                Reason.UNSUPPORTED_OPERATION,
                f"the circuit has classically controlled operations ({op.name}); expectation "
                "values need a unitary circuit: submit a sampling job instead",
            )
    return _without_clbits(body)


def _without_clbits(circuit: QuantumCircuit) -> QuantumCircuit:
    """The same gates on the same qubits, with no classical registers left over."""
    quantum = QuantumCircuit(*circuit.qregs, name=circuit.name, global_phase=circuit.global_phase)
    for inst in circuit.data:
        quantum.append(inst.operation, inst.qubits)
    return quantum


def sampling_circuit(circuit: QuantumCircuit) -> QuantumCircuit:
    """The circuit as given when it measures something; otherwise every qubit is measured."""
    if any(inst.operation.name == "measure" for inst in circuit.data):
        return circuit
    measured = circuit.copy()
    measured.measure_all()
    return measured


def is_dynamic(circuit: QuantumCircuit) -> bool:
    """True when a measurement, reset or control flow is followed by further operations."""
    body = circuit.remove_final_measurements(inplace=False)
    return any(
        inst.operation.name in ("measure", "reset") or isinstance(inst.operation, ControlFlowOp)
        for inst in body.data
    )
