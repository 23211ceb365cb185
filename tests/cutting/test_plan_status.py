"""status.plan of a cut job records its cut kinds, gamma, sampling overhead and QPD terms, and
the candidates the planner rejected (issue 15), through the whole pipeline on ideal QPUs."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit, qasm2

from qbackbone.api.policy import InvocationPolicy
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import make_job, make_qpu

from .circuits import exact
from .test_buildable import OBS, cu1_bridge

TWO_HALVES = build_fleet([make_qpu("left", qubits=3), make_qpu("right", qubits=3)])


def policy(kinds: list[str], fallback: bool) -> dict[str, InvocationPolicy]:
    return {"default": InvocationPolicy.model_validate({"metadata": {"name": "default"}, "spec": {
        "cutting": {"allowedCutKinds": kinds}, "fallback": {"enabled": fallback}}})}


@pytest.mark.parametrize("fallback", [False, True])
def test_the_issue_job_is_cut_with_locc_instead_of_failing_or_going_classical(
        fallback: bool) -> None:
    circuit = cu1_bridge()
    status = run_job(make_job(qasm2.dumps(circuit), OBS, shots=1000), TWO_HALVES,
                     policy(["gate", "loccWire"], fallback), seed=3)
    assert status.phase == "Succeeded", status.conditions
    assert status.decision is not None and status.decision.path == "Distributed"
    plan = status.plan
    assert plan is not None
    assert plan.cut_kinds == ["loccWire"] and plan.gamma == 3 and plan.sampling_overhead == 9
    assert plan.qpd_terms == 3
    assert plan.rejected_candidates is not None
    assert any(line.startswith("lo (gate)") and "QPD terms > the engine's limit of 5000" in line
               for line in plan.rejected_candidates)
    assert status.result is not None and status.result.expectation_values is not None
    for ev, e in zip(status.result.expectation_values, exact(circuit, OBS), strict=True):
        assert abs(ev.value - e) <= 4 * ev.std_error, (ev, e)
    assert status.verification is not None and status.verification.method == "ExactStatevector"
    wire = status.to_wire()["plan"]
    assert {"cutKinds", "gamma", "samplingOverhead", "qpdTerms", "rejectedCandidates"} <= set(wire)


def test_a_gate_cut_plan_records_its_qpd_terms() -> None:
    circuit = QuantumCircuit(4)
    circuit.ry(0.9, range(4))
    circuit.cx(0, 1)
    circuit.cx(2, 3)
    circuit.cx(1, 2)  # the one gate between the halves
    circuit.rx(0.5, range(4))
    observables = ["ZZZZ", "IZZI", "XIIX"]
    status = run_job(make_job(qasm2.dumps(circuit), observables, shots=1000), TWO_HALVES,
                     policy(["gate"], False), seed=5)
    assert status.phase == "Succeeded", status.conditions
    plan = status.plan
    assert plan is not None and plan.cut_kinds == ["gate"]
    assert plan.gamma == pytest.approx(3.0) and plan.sampling_overhead == pytest.approx(9.0)
    assert plan.qpd_terms == 6  # the library's CX decomposition
    assert status.result is not None and status.result.expectation_values is not None
    for ev, e in zip(status.result.expectation_values, exact(circuit, observables), strict=True):
        assert abs(ev.value - e) <= 4 * ev.std_error, (ev, e)
