"""The classical fallback only chooses a method that can run the circuit (Aer's MPS stops at 63
qubits, a statevector is bounded by memory, the stabilizer method takes Clifford circuits of
any width), and a job no method can run ends with ClassicalInfeasible and what to do."""

from __future__ import annotations

import math

import pytest
from qiskit import QuantumCircuit, qasm2
from qiskit.quantum_info import Clifford, Pauli, StabilizerState, Statevector

from qbackbone.api.policy import FallbackOptions, InvocationPolicy
from qbackbone.api.quantumjob import QuantumJobStatus
from qbackbone.core.classical.fallback import (
    MPS_MAX_QUBITS,
    STATEVECTOR_MAX_QUBITS,
    choose_method,
    estimate_seconds,
    is_clifford,
    run_classical,
)
from qbackbone.core.errors import JobFailure
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import make_job, make_qpu

FLEET = build_fleet([make_qpu("ideal", qubits=20)])
DEFAULTS = FallbackOptions()


def ghz(n: int, t_gate: bool = False) -> QuantumCircuit:
    circuit = QuantumCircuit(n)
    circuit.h(0)
    if t_gate:
        circuit.t(0)
    for q in range(n - 1):
        circuit.cx(q, q + 1)
    return circuit


def failed(status: QuantumJobStatus) -> tuple[str, str]:
    cond = next(c for c in status.conditions if c.type == "Failed")
    return cond.reason, cond.message


def test_clifford_detection() -> None:
    circuit = ghz(4)
    circuit.rz(math.pi / 2, 1)
    circuit.u(math.pi / 2, 0, math.pi, 2)
    circuit.rx(math.pi, 3)
    circuit.barrier()
    circuit.measure_all()
    assert is_clifford(circuit)
    assert not is_clifford(ghz(4, t_gate=True))
    rotated = ghz(3)
    rotated.rz(0.3, 0)
    assert not is_clifford(rotated)


def test_methods_respect_aer_and_memory_limits() -> None:
    wide = FallbackOptions(max_mps_qubits=200, max_statevector_qubits=32)
    assert choose_method(24, DEFAULTS, ghz(24, True)) == "statevector"
    assert choose_method(30, wide, ghz(30, True)) == "matrix_product_state"  # not 16 GiB
    assert choose_method(STATEVECTOR_MAX_QUBITS, wide) == "statevector"
    assert choose_method(MPS_MAX_QUBITS, wide, ghz(63, True)) == "matrix_product_state"
    assert choose_method(64, wide, ghz(64, True)) is None  # Aer's MPS stops at 63
    assert choose_method(64, DEFAULTS, ghz(64)) == "stabilizer"
    assert choose_method(1000, DEFAULTS, ghz(1000)) == "stabilizer"
    assert choose_method(64, FallbackOptions(method="mps"), ghz(64)) is None  # policy: MPS only
    sv_only = FallbackOptions(method="statevector", max_statevector_qubits=32)
    assert choose_method(30, sv_only) is None
    seconds = estimate_seconds("stabilizer", 64, 127, 4000)
    assert seconds is not None and 0 < seconds < 1.0
    assert (estimate_seconds("stabilizer", 2000, 4000, 4000) or 0) > 100  # O(n^3) per shot


def test_stabilizer_fallback_matches_exact_simulation() -> None:
    circuit = ghz(5)
    circuit.s(2)
    circuit.h(3)
    circuit.cz(1, 4)
    observables = ["ZZIII", "XIXIY", "IIIZZ", "YXZXX"]
    out = run_classical(circuit, observables, 0, "stabilizer", seed=1)
    state = Statevector(circuit)
    assert out.values == pytest.approx(
        [state.expectation_value(Pauli(o)).real for o in observables], abs=1e-9)
    sampled = run_classical(circuit.measure_all(inplace=False), None, 2000, "stabilizer", 3)
    probs = Statevector(circuit).probabilities_dict()
    assert sampled.counts is not None and sum(sampled.counts.values()) == 2000
    assert {k for k, p in probs.items() if p > 1e-12} == set(sampled.counts)


def test_64_qubit_ghz_runs_on_the_stabilizer_method() -> None:
    n = 64
    circuit = ghz(n)
    observables = ["Z" * n, "X" * n, "I" * (n - 2) + "ZZ", "I" * (n - 1) + "Z"]
    status = run_job(make_job(qasm2.dumps(circuit), observables,
                              execution={"mode": "Classical"}), FLEET, {})
    assert status.phase == "Succeeded", status.conditions
    r, v = status.result, status.verification
    assert r is not None and r.method == "stabilizer" and r.expectation_values is not None
    exact = StabilizerState(Clifford(circuit))  # an independent exact simulation
    for ev, obs in zip(r.expectation_values, observables, strict=True):
        assert ev.value == pytest.approx(exact.expectation_value(Pauli(obs)), abs=1e-9)
    assert v is not None and v.method == "PhysicalBounds" and v.passed


def test_64_qubit_sampling_job_goes_to_stabilizer_not_execution_failed() -> None:
    n = 64
    measured = ghz(n).measure_all(inplace=False)
    status = run_job(make_job(qasm2.dumps(measured), shots=500), FLEET, {}, seed=2)
    assert status.phase == "Succeeded", status.conditions
    assert status.result is not None and status.result.counts is not None
    assert set(status.result.counts) <= {"0" * n, "1" * n}
    assert sum(status.result.counts.values()) == 500


def test_no_method_fits_ends_with_classical_infeasible_and_advice() -> None:
    n = 64
    job = make_job(qasm2.dumps(ghz(n, t_gate=True)), ["Z" * n],
                   execution={"mode": "Classical"})
    status = run_job(job, FLEET, {})
    assert status.phase == "Failed"
    reason, message = failed(status)
    assert reason == "ClassicalInfeasible"
    assert "matrix_product_state up to 63 qubits" in message
    assert "reduce the circuit's width" in message
    mps_only = {"p": InvocationPolicy.model_validate(
        {"metadata": {"name": "p"}, "spec": {"fallback": {"method": "mps"}}})}
    clifford_job = make_job(qasm2.dumps(ghz(n)), ["Z" * n], policyRef={"name": "p"},
                            execution={"mode": "Classical"})
    reason, message = failed(run_job(clifford_job, FLEET, mps_only))
    assert reason == "ClassicalInfeasible" and "fallback.method mps" in message


def test_run_classical_refuses_a_method_too_narrow() -> None:
    with pytest.raises(JobFailure) as err:
        run_classical(ghz(64, t_gate=True), ["Z" * 64], 0, "matrix_product_state", seed=1)
    assert err.value.reason == "ClassicalInfeasible"


def test_the_job_memory_limit_bounds_the_statevector_fallback() -> None:
    """A policy's limits.maxMemoryMiB holds a statevector of at most so many qubits."""
    from qbackbone.api.limits import JobLimits
    from qbackbone.api.policy import FallbackOptions
    from qbackbone.core.classical.fallback import choose_method

    small = JobLimits(max_memory_mib=256).statevector_qubits(copies=2)
    assert small == 23  # 2^23 amplitudes x 16 bytes x 2 copies = 256 MiB
    options = FallbackOptions()
    assert choose_method(23, options, memory_qubits=small) == "statevector"
    assert choose_method(24, options, memory_qubits=small) == "matrix_product_state"
    assert choose_method(24, FallbackOptions(method="statevector"), memory_qubits=small) is None
