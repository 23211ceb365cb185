"""The QIP as a pure function: every path, refusals, and the recorded rules."""

from __future__ import annotations

from dataclasses import replace

from qbackbone.api.policy import InvocationPolicySpec
from qbackbone.core.circuits.features import CircuitFeatures
from qbackbone.core.execute.shots import split_shots
from qbackbone.core.qip.engine import decide
from qbackbone.core.qip.inputs import JobInputs, OperationalContext, QPUAssessment
from qbackbone.core.qpus.descriptor import QPUDescriptor

FEATURES = CircuitFeatures(qubits=8, depth=40, two_qubit_depth=10, two_qubit_gates=20, size=100,
                           measured_bases=1, shots_per_basis=4000)


def qpu(name: str, qubits: int = 16, shot_time: float = 250e-6, setup: float = 1.0,
        max_depth: int | None = 50) -> QPUDescriptor:
    return QPUDescriptor(name=name, provider="fake", backend_name=name, qubits=qubits,
                         device_qubits=qubits, ideal=False, shot_time=shot_time,
                         setup_time=setup, max_depth=max_depth, max_depth_derived=True,
                         calibration=None)


def assess(d: QPUDescriptor, depth: int | None = 10, fidelity: float | None = 0.8,
           **kw: object) -> QPUAssessment:
    return QPUAssessment(d, selected=True, ready=True, two_qubit_depth=depth,
                         estimated_fidelity=fidelity, **kw)  # type: ignore[arg-type]


def context(mode: str = "Auto", deadline: float | None = 60.0,
            classical: float | None = 0.5) -> OperationalContext:
    return OperationalContext(mode=mode, deadline_remaining=deadline, classical_seconds=classical,
                              classical_method="statevector" if classical else None)


POLICY = InvocationPolicySpec()


def test_single_qpu_when_one_fits() -> None:
    d = decide(JobInputs(FEATURES, context(), (assess(qpu("a")), assess(qpu("b", qubits=4)))),
               POLICY)
    assert d.path == "SingleQPU" and d.eligible == ["a"]
    fits = [r for r in d.rules if r.name == "qubitsFit"]
    assert {(r.qpu, r.passed) for r in fits} == {("a", True), ("b", False)}


def test_low_fidelity_everywhere_means_distributed_when_cutting_allowed() -> None:
    d = decide(JobInputs(FEATURES, context(), (assess(qpu("a"), fidelity=0.1),)), POLICY)
    assert d.path == "Distributed"
    rule = next(r for r in d.rules if r.name == "estimatedFidelity")
    assert rule.value == 0.1 and rule.threshold == 0.3 and not rule.passed


def test_too_wide_without_cutting_goes_classical_or_is_refused() -> None:
    no_cut = POLICY.model_copy(update={"cutting": POLICY.cutting.model_copy(
        update={"enabled": False})})
    small = (assess(qpu("a", qubits=4)),)
    assert decide(JobInputs(FEATURES, context(), small), no_cut).path == "Classical"
    refused = decide(JobInputs(FEATURES, context(classical=None), small), no_cut)
    assert refused.refused and refused.reason == "NoEligibleQPU"
    assert "forbids cutting" in refused.message


def test_features_outside_the_policy_go_classical() -> None:
    policy = InvocationPolicySpec.model_validate({"features": {"minQubits": 12}})
    d = decide(JobInputs(FEATURES, context(), (assess(qpu("a")),)), policy)
    assert d.path == "Classical" and "qubitsAtLeast" in d.message


def test_deadline_too_tight_for_qpus_goes_classical_then_refuses() -> None:
    slow = (assess(qpu("a", setup=30.0)),)
    assert decide(JobInputs(FEATURES, context(deadline=10.0), slow), POLICY).path == "Classical"
    refused = decide(JobInputs(FEATURES, context(deadline=10.0, classical=20.0), slow), POLICY)
    assert refused.reason == "DeadlineInfeasible"


def test_mode_classical_and_unselected_qpus() -> None:
    assert decide(JobInputs(FEATURES, context("Classical"), (assess(qpu("a")),)),
                  POLICY).path == "Classical"
    unselected = replace(assess(qpu("a")), selected=False)
    d = decide(JobInputs(FEATURES, context(), (unselected, assess(qpu("b")))), POLICY)
    assert d.eligible == ["b"]


def test_queue_depth_and_calibration_age_rules() -> None:
    policy = InvocationPolicySpec.model_validate(
        {"hardware": {"maxQueueDepth": 2, "maxCalibrationAge": "1h"}})
    busy = assess(replace(qpu("busy"), queue_depth=5))
    stale = assess(qpu("stale"), calibration_age_seconds=7200.0)
    fresh = assess(qpu("fresh"), calibration_age_seconds=60.0)
    d = decide(JobInputs(FEATURES, context(), (busy, stale, fresh)), policy)
    assert d.eligible == ["fresh"]


def test_shots_split_by_speed_and_without_splitting_go_to_the_fastest() -> None:
    fast, slow = qpu("fast", shot_time=100e-6, setup=0.5), qpu("slow", shot_time=300e-6)
    shares = split_shots(4000, [slow, fast], splitting=True)
    assert {s.qpu: s.shots for s in shares} == {"fast": 3000, "slow": 1000}
    assert sum(s.shots for s in shares) == 4000
    single = split_shots(4000, [slow, fast], splitting=False)
    assert [(s.qpu, s.shots) for s in single] == [("fast", 4000)]
    assert single[0].end == 0.5 + 4000 * 100e-6
