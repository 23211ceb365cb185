"""Mitigation end to end: a wrong result fails verification; cut jobs report their bias."""

from __future__ import annotations

import dataclasses
import math

import pytest
from qiskit import QuantumCircuit, qasm2

from qbackbone.api.policy import InvocationPolicy
from qbackbone.core.pipeline import decide_job, start_job
from qbackbone.core.pipeline.run import run_job
from qbackbone.core.pipeline.single import execute_single_qpu, finish_single_qpu
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import exact_values, ghz_circuit, make_job, make_qpu


@pytest.mark.slow
def test_a_shifted_mitigated_result_fails_verification() -> None:
    fleet = build_fleet([make_qpu("manila", provider="fake", backend="fake_manila")])
    job = make_job(qasm2.dumps(ghz_circuit(3)), ["ZZI", "XXX"], shots=4000)
    decided = decide_job(start_job(job), fleet, {}, seed=4)
    outcomes = execute_single_qpu(decided)
    (values,) = outcomes.estimates.values()
    values[0] = dataclasses.replace(values[0], value=values[0].value - 0.4)
    status = finish_single_qpu(decided, outcomes)
    assert status.phase == "Failed"
    conditions = {c.type: c for c in status.conditions}
    assert conditions["Verified"].status == "False"
    assert conditions["Failed"].reason == "VerificationFailed"


@pytest.mark.slow
@pytest.mark.parametrize(("readout", "level"), [("Auto", "Readout"), ("Never", "None")])
def test_cut_jobs_on_noisy_qpus_report_a_covering_systematic_error(readout: str,
                                                                   level: str) -> None:
    fleet = build_fleet([make_qpu("manila", provider="fake", backend="fake_manila"),
                         make_qpu("lima", provider="fake", backend="fake_lima")])
    circuit = ghz_circuit(6)
    observables = ["ZZZZZZ", "XXXXXX", "IIIIZZ"]
    policies = {"default": InvocationPolicy.model_validate(
        {"metadata": {"name": "default"}, "spec": {"mitigation": {"readout": readout}}})}
    status = run_job(make_job(qasm2.dumps(circuit), observables, shots=4000), fleet, policies,
                     seed=3)
    assert status.phase == "Succeeded", status.conditions
    r = status.result
    assert r is not None and r.path == "Distributed" and r.expectation_values is not None
    assert r.mitigation is not None and r.mitigation[0].level == level
    if level == "Readout":  # corrected with each QPU's own readout calibration, named
        assert r.mitigation[0].techniques == ["tensoredReadoutInverse"]
        assert r.mitigation[0].calibration is not None
        assert all(q in r.mitigation[0].calibration for q in r.qpus)
        assert all("readout-corrected" in (ev.method or "") for ev in r.expectation_values)
    assert not r.ideal_simulator
    for ev, e in zip(r.expectation_values, exact_values(circuit, observables), strict=True):
        assert ev.systematic_error > 0
        assert abs(ev.value - e) <= 3 * math.hypot(ev.std_error, ev.systematic_error), ev
    reasons = {c.type: c.reason for c in status.conditions}
    assert reasons["Verified"] in ("WithinReportedUncertainty", "UncertaintyTooLarge")


def _qaoa_ring(width: int, layers: int) -> QuantumCircuit:
    circuit = QuantumCircuit(width)
    circuit.h(range(width))
    for layer in range(layers):
        for q in range(width):
            circuit.rzz(0.8 + 0.4 * layer, q, (q + 1) % width)
        circuit.rx(1.4 - 0.3 * layer, range(width))
    return circuit


@pytest.mark.slow
def test_a_circuit_too_deep_once_routed_falls_back_to_classical() -> None:
    """The QIP sends it to cutting (too deep for the one QPU); the planner's uncut plan fits
    by logical depth but not once routed: the fallback serves it instead of CutInfeasible."""
    fleet = build_fleet([make_qpu("belem", provider="fake", backend="fake_belem")])
    job = make_job(qasm2.dumps(_qaoa_ring(5, 2)), ["ZZIII", "IIIZZ"], shots=2000)
    status = run_job(job, fleet, {}, seed=1)
    assert status.phase == "Succeeded", status.conditions
    assert status.result is not None and status.result.path == "Classical"
    assert status.decision is not None and "after routing" in status.decision.message
    assert status.verification is not None and status.verification.method == "SelfCheck"
