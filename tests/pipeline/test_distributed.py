"""The Distributed path end to end: cut, run on QPUs that fit, reconstruct, verify."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit, qasm2
from qiskit.quantum_info import Pauli, Statevector

from qbackbone.api.policy import InvocationPolicy
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import make_job, make_qpu

SMALL_IDEAL = build_fleet([make_qpu("small-a", qubits=5), make_qpu("small-b", qubits=5,
                                                                   shotTime="40us")])


def policy(**spec: object) -> dict[str, InvocationPolicy]:
    return {"default": InvocationPolicy.model_validate({"metadata": {"name": "default"},
                                                       "spec": spec})}


def chain_circuit(width: int, seed: int) -> QuantumCircuit:
    """A brickwork-free chain: entanglement flows once from the first half to the second."""
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(width)
    for q in range(width):
        circuit.ry(float(rng.uniform(0.2, 2.8)), q)
    for q in range(width - 1):
        circuit.cx(q, q + 1)
        circuit.rz(float(rng.uniform(0, np.pi)), q + 1)
    return circuit


def exact(circuit: QuantumCircuit, observables: list[str]) -> list[float]:
    state = Statevector(circuit)
    return [float(state.expectation_value(Pauli(o)).real) for o in observables]


@pytest.mark.parametrize("kinds", [["loccWire"], ["loWire"], ["gate"]])
def test_wider_than_every_qpu_is_cut_and_matches_exact(kinds: list[str]) -> None:
    circuit = chain_circuit(8, seed=3)
    observables = ["ZZIIIIII", "IIIIIIZZ", "ZIIIIIIZ", "IIIZZIII"]
    status = run_job(make_job(qasm2.dumps(circuit), observables, shots=1500), SMALL_IDEAL,
                     policy(cutting={"allowedCutKinds": kinds, "maxSamplingOverhead": 300}),
                     seed=4)
    assert status.phase == "Succeeded", status.conditions
    assert status.decision is not None and status.decision.path == "Distributed"
    assert status.result is not None and status.result.path == "Distributed"
    assert status.plan is not None and len(status.plan.subcircuits) >= 2
    assert all(s.qubits <= 5 for s in status.plan.subcircuits)
    values = status.result.expectation_values
    assert values is not None
    for ev, e in zip(values, exact(circuit, observables), strict=True):
        assert abs(ev.value - e) <= 4 * ev.std_error + 1e-6, (ev, e)
    assert status.verification is not None and status.verification.method == "ExactStatevector"
    assert status.timings is not None and status.timings.cut_seconds is not None


def test_locc_preparation_runs_after_its_measurement() -> None:
    circuit = chain_circuit(8, seed=5)
    status = run_job(make_job(qasm2.dumps(circuit), ["ZIIIIIIZ"], shots=1000), SMALL_IDEAL,
                     policy(cutting={"allowedCutKinds": ["loccWire"]}), seed=1)
    assert status.phase == "Succeeded", status.conditions
    assert status.plan is not None
    subs = {s.name: s for s in status.plan.subcircuits}
    dependent = [s for s in subs.values() if s.depends_on]
    assert dependent, "an LOCC plan has a preparation subcircuit"
    for sub in dependent:
        starts = [f.planned_start_seconds for f in status.plan.fragments
                  if f.subcircuit == sub.name]
        for before in sub.depends_on:
            ends = [f.planned_end_seconds for f in status.plan.fragments
                    if f.subcircuit == before]
            assert max(ends) <= min(starts)


def test_overhead_beyond_policy_falls_back_or_fails_with_the_reason() -> None:
    circuit = chain_circuit(8, seed=1)
    job = make_job(qasm2.dumps(circuit), ["ZZZZZZZZ"], shots=500)
    tight = {"cutting": {"allowedCutKinds": ["loWire"], "maxSamplingOverhead": 2}}
    status = run_job(job, SMALL_IDEAL, policy(**tight), seed=1)
    assert status.phase == "Succeeded" and status.result is not None
    assert status.result.path == "Classical"
    assert status.decision is not None and "no cut plan fits" in status.decision.message
    refused = run_job(job, SMALL_IDEAL, policy(**tight, fallback={"enabled": False}), seed=1)
    failed = next(c for c in refused.conditions if c.type == "Failed")
    assert failed.reason == "CutInfeasible" and "maxSamplingOverhead" in failed.message


def test_sampling_jobs_are_not_cut() -> None:
    circuit = chain_circuit(8, seed=2)
    circuit.measure_all()
    status = run_job(make_job(qasm2.dumps(circuit), shots=500), SMALL_IDEAL,
                     policy(fallback={"enabled": False}), seed=1)
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert failed.reason == "CutInfeasible" and "sampling job cannot be cut" in failed.message
