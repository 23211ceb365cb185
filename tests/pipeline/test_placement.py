"""Noise-aware placement end to end (issue 15), checked against exact simulation: a default
policy sends a job to the most faithful noisy QPU, unsplit, never to the ideal simulator
beside it; an ideal simulator that runs a job says so; a deadline no single QPU meets splits
the shots over one noise class and reports every stratum; a cut job is placed for fidelity."""

from __future__ import annotations

import math

import pytest
from qiskit import qasm2

from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import QuantumJobStatus
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import exact_values, ghz_circuit, make_job, make_qpu

from .test_distributed import chain_circuit

SIMULATOR = make_qpu("aer-ideal", qubits=20, shotTime="20us", setupTime="50ms")
# For a 3-qubit GHZ: nairobi 0.86, quito 0.75 estimated fidelity (not one noise class).
NOISY = build_fleet([SIMULATOR, make_qpu("quito", provider="fake", backend="fake_quito"),
                     make_qpu("nairobi", provider="fake", backend="fake_nairobi")])
OBSERVABLES = ["ZZI", "IZZ", "XXX"]


def policy(**spec: object) -> dict[str, InvocationPolicy]:
    return {"default": InvocationPolicy.model_validate({"metadata": {"name": "default"},
                                                       "spec": spec})}


def rule(status: QuantumJobStatus, name: str, qpu: str | None) -> bool:
    assert status.decision is not None
    return next(r.passed for r in status.decision.rules if r.name == name and r.qpu == qpu)


@pytest.mark.slow
def test_default_policy_runs_on_the_most_faithful_noisy_qpu_without_a_split() -> None:
    status = run_job(make_job(qasm2.dumps(ghz_circuit(3)), OBSERVABLES, shots=1000), NOISY, {},
                     seed=3)
    assert status.phase == "Succeeded", status.conditions
    r, d = status.result, status.decision
    assert r is not None and d is not None and r.expectation_values is not None
    assert r.qpus == ["nairobi"] and not r.ideal_simulator  # no deadline: one QPU
    assert d.eligible_qpus == ["nairobi"]
    assert r.mitigation is not None and r.mitigation[0].qpus == ["nairobi"]
    assert rule(status, "placement", "nairobi") and not rule(status, "placement", "quito")
    assert not rule(status, "idealSimulator", "aer-ideal")
    assert "ideal simulator" not in d.message and "no shot split" in d.message
    for ev, e in zip(r.expectation_values, exact_values(ghz_circuit(3), OBSERVABLES), strict=True):
        assert ev.strata is None
        assert abs(ev.value - e) <= 3 * math.hypot(ev.std_error, ev.systematic_error), ev
    assert status.verification is not None and status.verification.noisy


def test_an_allowed_ideal_simulator_wins_and_the_result_says_so() -> None:
    status = run_job(make_job(qasm2.dumps(ghz_circuit(3)), OBSERVABLES, shots=2000), NOISY,
                     policy(hardware={"idealSimulators": "Allowed"}), seed=3)
    assert status.phase == "Succeeded", status.conditions
    r, d = status.result, status.decision
    assert r is not None and d is not None and r.expectation_values is not None
    assert r.qpus == ["aer-ideal"] and r.ideal_simulator and r.mitigation is None
    assert "ideal simulator aer-ideal" in d.message
    assert "hardware.idealSimulators Allowed" in d.message
    assert rule(status, "idealSimulator", "aer-ideal")
    for ev, e in zip(r.expectation_values, exact_values(ghz_circuit(3), OBSERVABLES), strict=True):
        assert ev.systematic_error == 0 and abs(ev.value - e) <= 4 * ev.std_error + 1e-9
    assert status.verification is not None and not status.verification.noisy


def test_a_deadline_one_qpu_cannot_meet_splits_one_noise_class_and_reports_strata() -> None:
    # Two QPUs of one device (one noise class), slow shots: two bases with readout
    # mitigation (2x) need 1 s + 1000 x 2 x 2 x 20 ms = 81 s alone, 41 s split; 60 s left.
    fleet = build_fleet([SIMULATOR] + [
        make_qpu(name, provider="fake", backend="fake_nairobi", shotTime="20ms")
        for name in ("nairobi-a", "nairobi-b")])
    spec = {"mitigation": {"zne": "Never", "readout": "Always"}}
    job = make_job(qasm2.dumps(ghz_circuit(3)), OBSERVABLES, shots=1000, deadline="60s")
    status = run_job(job, fleet, policy(**spec), seed=4)
    assert status.phase == "Succeeded", status.conditions
    r, d = status.result, status.decision
    assert r is not None and d is not None and r.expectation_values is not None
    assert sorted(r.qpus) == ["nairobi-a", "nairobi-b"] and not r.ideal_simulator
    assert "no single QPU meets the deadline" in d.message
    for ev, e in zip(r.expectation_values, exact_values(ghz_circuit(3), OBSERVABLES), strict=True):
        assert ev.strata is not None
        assert sorted(s.qpu for s in ev.strata) == ["nairobi-a", "nairobi-b"]
        assert sum(s.shots for s in ev.strata) == 1000
        assert abs(ev.value - e) <= 3 * math.hypot(ev.std_error, ev.systematic_error), ev
    # Without the deadline the same job stays on one QPU.
    unhurried = run_job(make_job(qasm2.dumps(ghz_circuit(3)), OBSERVABLES, shots=1000), fleet,
                        policy(**spec), seed=4)
    assert unhurried.result is not None and len(unhurried.result.qpus) == 1


# The cut: a noisy 7-qubit device beside 6- and 5-qubit ideal QPUs, a 10-qubit job.
CUT_FLEET = build_fleet([make_qpu("nairobi", provider="fake", backend="fake_nairobi"),
                         make_qpu("ideal-6", qubits=6), make_qpu("ideal-5", qubits=5)])
CUT_OBSERVABLES = ["ZZZZZZZZZZ", "IIIIZZIIII"]


def test_a_cut_job_prefers_the_faithful_placement() -> None:
    circuit = chain_circuit(10, seed=3)
    job = make_job(qasm2.dumps(circuit), CUT_OBSERVABLES, shots=1000)
    status = run_job(job, CUT_FLEET, policy(hardware={"idealSimulators": "Allowed"}), seed=2)
    assert status.phase == "Succeeded", status.conditions
    assert status.plan is not None and status.result is not None
    assert sorted(s.qubits for s in status.plan.subcircuits) == [5, 6]  # 6 + 5, not 7 + 4
    assert {f.qpu for f in status.plan.fragments} == {"ideal-6", "ideal-5"}
    assert status.result.ideal_simulator
    noisy = [line for line in status.plan.rejected_candidates if "<= 7 qubits" in line]
    assert noisy and all("once noise is counted" in line for line in noisy)
    assert not rule(status, "subcircuitPlacement", "nairobi")
    values = status.result.expectation_values
    assert values is not None
    for ev, e in zip(values, exact_values(circuit, CUT_OBSERVABLES), strict=True):
        assert abs(ev.value - e) <= 4 * ev.std_error + 1e-9, (ev, e)


def test_by_default_a_cut_job_runs_on_the_noisy_qpu_that_fits() -> None:
    job = make_job(qasm2.dumps(chain_circuit(10, seed=3)), CUT_OBSERVABLES, shots=1000)
    status = run_job(job, CUT_FLEET, {}, seed=2)
    assert status.phase == "Succeeded", status.conditions
    assert status.plan is not None and status.result is not None
    assert {f.qpu for f in status.plan.fragments} == {"nairobi"}
    assert not status.result.ideal_simulator
    assert status.decision is not None
    held = [r for r in status.decision.rules
            if r.name == "subcircuitPlacement" and r.qpu in ("ideal-6", "ideal-5")]
    assert held and all(not r.passed and "held back" in str(r.value) for r in held)
