"""Noise-aware placement in the QIP (issue 15): the most faithful QPU that meets the deadline
takes every shot; shots are split only when no single QPU meets it, then only over one noise
class; ideal simulators run a job only as hardware.idealSimulators allows, and say so."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from qbackbone.api.policy import InvocationPolicySpec, SchedulerOptions
from qbackbone.api.quantumjob import RuleOutcome
from qbackbone.core.qip.engine import QIPDecision, decide
from qbackbone.core.qip.inputs import JobInputs, QPUAssessment

from .test_qip import FEATURES, assess, context, qpu

# FEATURES: 4,000 shots of one basis. Noisy QPUs: 250 us per shot and 1 s setup, so 2 s alone.
SIM = assess(replace(qpu("sim", shot_time=20e-6, setup=0.05), ideal=True, max_depth=None),
             fidelity=1.0)
GOOD = assess(qpu("good"), fidelity=0.70)
PEER = assess(qpu("peer"), fidelity=0.65)  # within 0.1 of good: the same noise class
POOR = assess(qpu("poor"), fidelity=0.40)


def policy(**spec: object) -> InvocationPolicySpec:
    return InvocationPolicySpec.model_validate(spec)


def run(*qpus: QPUAssessment, deadline: float | None = None, mode: str = "Auto",
        spec: InvocationPolicySpec | None = None, classical: float | None = 0.5) -> QIPDecision:
    return decide(JobInputs(FEATURES, context(mode, deadline=deadline, classical=classical),
                            qpus), spec or policy())


def shares(d: QIPDecision) -> dict[str, int]:
    return {s.qpu: s.shots for s in d.shares}


def rules(d: QIPDecision, name: str) -> dict[str | None, RuleOutcome]:
    return {r.qpu: r for r in d.rules if r.name == name}


def test_no_deadline_means_the_most_faithful_noisy_qpu_alone() -> None:
    d = run(POOR, SIM, PEER, GOOD)
    assert d.path == "SingleQPU" and shares(d) == {"good": 4000}
    assert d.eligible == ["good", "peer"]  # the chosen QPU's noise class may stand in for it
    assert "most faithful" in d.message and "no deadline" in d.message
    placed = rules(d, "placement")
    assert placed["good"].passed and not placed["peer"].passed and not placed["poor"].passed
    assert placed["poor"].value == "estimated fidelity 0.4, 2.00s alone"
    sim = rules(d, "idealSimulator")["sim"]
    assert not sim.passed and sim.value == "hardware.idealSimulators Fallback"
    assert "sim" not in d.eligible and "ideal simulator" not in d.message
    assert rules(d, "shotSplitting")[None].threshold == "WhenDeadlineNeeds"


def test_a_deadline_one_qpu_meets_takes_the_most_faithful_that_meets_it() -> None:
    slow_good = assess(qpu("slow-good", setup=9.0), fidelity=0.9)
    d = run(slow_good, GOOD, POOR, deadline=5.0)
    assert shares(d) == {"good": 4000}  # slow-good needs 10 s alone
    assert "the 2 of 3 candidate QPU(s) that meet the deadline alone (2.00s of 5.00s)" \
        in d.message
    assert not rules(d, "placement")["slow-good"].passed


def test_a_deadline_no_single_qpu_meets_splits_within_one_noise_class() -> None:
    d = run(GOOD, PEER, POOR, SIM, deadline=1.8)  # alone 2 s; split over two: 1.5 s
    assert d.path == "SingleQPU" and shares(d) == {"good": 2000, "peer": 2000}
    assert "no single QPU meets the deadline" in d.message
    assert "one noise class" in d.message
    assert not rules(d, "placement")["poor"].passed  # 0.3 less faithful: never mixed in
    assert not rules(d, "idealSimulator")["sim"].passed
    assert rules(d, "shotSplitting")[None].value == "2 QPU(s)"


def test_when_one_noise_class_cannot_meet_the_deadline_auto_falls_back_and_modes_refuse(
) -> None:
    d = run(GOOD, POOR, deadline=1.8)  # only a mixed split would meet it
    assert d.path == "Classical" and "no single QPU meets the deadline" in d.message
    asked = run(GOOD, POOR, deadline=1.8, mode="SingleQPU")
    assert asked.refused and asked.reason == "DeadlineInfeasible"
    assert "execution.mode SingleQPU was requested" in asked.message
    mixed = run(GOOD, POOR, deadline=1.8, spec=policy(scheduler={"shotSplitting": "Always"}))
    assert mixed.path == "SingleQPU" and shares(mixed) == {"good": 2000, "poor": 2000}


def test_always_splits_by_speed_and_never_keeps_one_qpu() -> None:
    fast = assess(qpu("fast", shot_time=125e-6), fidelity=0.5)
    always = run(GOOD, fast, spec=policy(scheduler={"shotSplitting": "Always"}))
    assert shares(always) == {"fast": 2667, "good": 1333}
    never = run(GOOD, PEER, deadline=1.8, spec=policy(scheduler={"shotSplitting": "Never"}))
    assert never.path == "Classical"
    assert "shotSplitting is Never" in never.message


def test_allowed_ideal_simulators_compete_and_win_on_fidelity_with_a_label() -> None:
    d = run(GOOD, SIM, spec=policy(hardware={"idealSimulators": "Allowed"}))
    assert shares(d) == {"sim": 4000}
    assert "ideal simulator sim" in d.message and "labelled idealSimulator" in d.message
    assert rules(d, "idealSimulator")["sim"].passed


def test_fallback_uses_the_simulator_only_when_no_noisy_qpu_can() -> None:
    no_noisy = run(replace(GOOD, estimated_fidelity=0.1), SIM)
    assert shares(no_noisy) == {"sim": 4000}
    assert "no noisy QPU is eligible" in no_noisy.message
    assert rules(no_noisy, "idealSimulator")["sim"].passed
    too_slow = run(GOOD, SIM, deadline=1.0)
    assert shares(too_slow) == {"sim": 4000}
    assert "no noisy QPU meets the deadline" in too_slow.message
    assert not rules(too_slow, "placement")["good"].passed


def test_forbidden_simulators_are_never_used() -> None:
    forbid = policy(hardware={"idealSimulators": "Forbidden"})
    d = run(GOOD, SIM, deadline=1.0, spec=forbid)
    assert d.path == "Classical" and not rules(d, "idealSimulator")["sim"].passed
    only_sim = run(SIM, spec=forbid, classical=None)
    assert only_sim.refused and "hardware.idealSimulators Forbidden" in only_sim.message
    narrow = replace(GOOD, descriptor=replace(GOOD.descriptor, qubits=4))
    cut = run(narrow, SIM, spec=forbid)  # the simulator would fit; the noisy QPU needs a cut
    assert cut.path == "Distributed" and cut.eligible == ["good"]


def test_a_cut_job_lists_simulators_as_usable_unless_forbidden() -> None:
    narrow = replace(GOOD, descriptor=replace(GOOD.descriptor, qubits=4))
    small_sim = replace(SIM, descriptor=replace(SIM.descriptor, qubits=4))
    forbid = run(narrow, small_sim, spec=policy(hardware={"idealSimulators": "Forbidden"}))
    assert forbid.path == "Distributed" and forbid.eligible == ["good"]
    assert not rules(forbid, "idealSimulator")["sim"].passed
    fallback = run(narrow, small_sim)
    assert fallback.path == "Distributed" and fallback.eligible == ["good", "sim"]
    assert rules(fallback, "idealSimulator")["sim"].threshold == \
        "runs a subcircuit only when no noisy QPU fits it"


def test_shot_splitting_reads_the_old_booleans_and_refuses_other_words() -> None:
    assert SchedulerOptions.model_validate({"shotSplitting": True}).shot_splitting_mode \
        == "Always"
    never = SchedulerOptions.model_validate({"shotSplitting": False})
    assert never.shot_splitting_mode == "Never" and not never.shot_splitting
    default = SchedulerOptions()
    assert default.shot_splitting_mode == "WhenDeadlineNeeds" and default.shot_splitting
    assert default.to_wire()["shotSplitting"] == "WhenDeadlineNeeds"
    with pytest.raises(ValidationError):
        SchedulerOptions.model_validate({"shotSplitting": "Sometimes"})
    with pytest.raises(ValidationError):
        InvocationPolicySpec.model_validate({"hardware": {"idealSimulators": "Maybe"}})
