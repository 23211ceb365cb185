"""Run a circuit classically and report the same result shape as the quantum path.

The fallback only picks a method that can run the circuit: Aer's limits and the memory a
statevector needs hold whatever the policy allows (a policy may ask for MPS up to 64 qubits,
Aer's matrix_product_state stops at 63).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from qiskit import QuantumCircuit, transpile
from qiskit.circuit import ControlFlowOp
from qiskit.quantum_info import Clifford, Pauli
from qiskit_aer import AerSimulator

from qbackbone.api.conditions import Reason
from qbackbone.api.policy import FallbackOptions
from qbackbone.core.errors import JobFailure

# Rough cost model, fitted on this 2-core machine: seconds per gate per amplitude.
_STATEVECTOR_COST = 2e-9
_MPS_COST_PER_GATE = 2e-4
# Stabilizer tableau: a gate costs O(n), sampling a shot O(n^3) (fitted: 4.2 s for 1000 shots
# of 500 qubits, 268 s for 2000 qubits).
_STABILIZER_COST_PER_GATE_QUBIT = 1e-8
_STABILIZER_COST_PER_SHOT_QUBIT3 = 3.4e-11

# A statevector is 2^n complex128 amplitudes (16 bytes): 28 qubits is 4 GiB, the most a
# fallback pod on an ordinary node is given; 32 (the policy's maximum) would be 64 GiB.
STATEVECTOR_MAX_QUBITS = 28
MPS_MAX_QUBITS = 63  # Aer's matrix_product_state refuses wider circuits
STABILIZER_MAX_QUBITS = 10_000  # Aer's stabilizer method's limit
_NOT_GATES = frozenset({"barrier", "measure", "reset", "delay"})


def is_clifford(circuit: QuantumCircuit) -> bool:
    """Whether every gate is a Clifford (measurements, resets and barriers allowed; control
    flow is not), so the stabilizer method runs the circuit exactly at any width."""
    known: dict[tuple[str, int, str], bool] = {}
    for inst in circuit.data:
        op = inst.operation
        if op.name in _NOT_GATES:
            continue
        if isinstance(op, ControlFlowOp) or op.num_clbits:
            return False
        key = (op.name, op.num_qubits, repr(op.params))
        if key not in known:
            single = QuantumCircuit(op.num_qubits)
            single.append(op, range(op.num_qubits))
            try:
                Clifford(single)
                known[key] = True
            except Exception:  # qiskit raises QiskitError (or others) for non-Clifford gates
                known[key] = False
        if not known[key]:
            return False
    return True


def statevector_limit(options: FallbackOptions, memory_qubits: int | None = None) -> int:
    """Widest statevector fallback: the policy's, the memory ceiling's and the job's memory
    limit's (``memory_qubits``, from spec.limits.maxMemoryMiB) smallest."""
    limit = min(options.max_statevector_qubits, STATEVECTOR_MAX_QUBITS)
    return limit if memory_qubits is None else min(limit, memory_qubits)


def choose_method(qubits: int, options: FallbackOptions,
                  circuit: QuantumCircuit | None = None,
                  memory_qubits: int | None = None) -> str | None:
    """A method that can run the circuit within the policy's limits; None if none can.

    statevector up to min(policy, memory ceiling); with method auto, stabilizer for a
    Clifford ``circuit`` (exact at any width Aer allows); then matrix_product_state up to
    min(policy, Aer's 63 qubits).
    """
    sv_limit = statevector_limit(options, memory_qubits)
    if options.method in ("auto", "statevector") and qubits <= sv_limit:
        return "statevector"
    if (options.method == "auto" and circuit is not None and qubits <= STABILIZER_MAX_QUBITS
            and is_clifford(circuit)):
        return "stabilizer"
    if options.method in ("auto", "mps") and qubits <= min(options.max_mps_qubits,
                                                            MPS_MAX_QUBITS):
        return "matrix_product_state"
    return None


def describe_limits(qubits: int, options: FallbackOptions,
                    memory_qubits: int | None = None) -> str:
    """Why no fallback method fits a circuit this wide, and what to do about it."""
    limits = {
        "statevector": f"statevector up to {statevector_limit(options, memory_qubits)} qubits "
                       "(policy fallback.maxStatevectorQubits and limits.maxMemoryMiB)",
        "stabilizer": f"stabilizer up to {STABILIZER_MAX_QUBITS} qubits for Clifford circuits",
        "mps": f"matrix_product_state up to {min(options.max_mps_qubits, MPS_MAX_QUBITS)} qubits",
    }
    allowed = list(limits.values()) if options.method == "auto" else [limits[options.method]]
    return (f"the circuit ({qubits} qubits) is beyond every classical method the policy allows "
            f"(fallback.method {options.method}: {'; '.join(allowed)}); reduce the circuit's "
            "width, or let QPUs run it (execution.mode Auto, cutting enabled in the policy, "
            "QPUs wide enough)")


def estimate_seconds(method: str | None, qubits: int, gates: int,
                     shots: int = 0) -> float | None:
    """Estimated run time of the fallback (None when infeasible); ``shots`` sampled, if any."""
    if method is None:
        return None
    if method == "statevector":
        return 0.05 + _STATEVECTOR_COST * gates * 2.0**qubits
    if method == "stabilizer":
        return (0.05 + _STABILIZER_COST_PER_GATE_QUBIT * gates * qubits
                + _STABILIZER_COST_PER_SHOT_QUBIT3 * shots * qubits**3)
    return 0.05 + _MPS_COST_PER_GATE * gates


@dataclass(frozen=True)
class ClassicalOutcome:
    """Expectation values (exact: no shot noise) or sampled counts."""

    values: list[float] | None
    counts: dict[str, int] | None
    method: str


def _check_width(circuit: QuantumCircuit, method: str) -> None:
    limit = {"statevector": STATEVECTOR_MAX_QUBITS, "matrix_product_state": MPS_MAX_QUBITS,
             "stabilizer": STABILIZER_MAX_QUBITS}.get(method)
    if limit is not None and circuit.num_qubits > limit:
        raise JobFailure(Reason.CLASSICAL_INFEASIBLE,
                         f"the classical method {method} runs at most {limit} qubits, the "
                         f"circuit has {circuit.num_qubits}; reduce its width or allow cutting")


def run_classical(circuit: QuantumCircuit, observables: Sequence[str] | None, shots: int,
                  method: str, seed: int | None) -> ClassicalOutcome:
    """Expectations by saving them in the simulator, or counts by sampling ``shots`` times."""
    _check_width(circuit, method)
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
