"""A record from a finished job's status: nominal time parts, learned values undone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from qbackbone.api.common import ObjectMeta
from qbackbone.api.conditions import ConditionType, Phase, Reason, set_condition
from qbackbone.api.mitigation import MitigationReport
from qbackbone.api.quantumjob import (
    CircuitSpec,
    Decision,
    Plan,
    PlannedFragment,
    QuantumJob,
    QuantumJobSpec,
    QuantumJobStatus,
    Result,
    RuleOutcome,
    Timings,
    Verification,
)
from qbackbone.core.history.collect import problem_class, record_from_status
from qbackbone.core.qpus.descriptor import QPUDescriptor

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def qpu(name: str) -> QPUDescriptor:
    return QPUDescriptor(name=name, provider="fake", backend_name=name, qubits=8,
                         device_qubits=8, ideal=False, shot_time=1e-3, setup_time=1.0,
                         max_depth=50, max_depth_derived=True, calibration=None)


def finished() -> tuple[QuantumJob, QuantumJobStatus]:
    job = QuantumJob(metadata=ObjectMeta(name="j", namespace="ns"), spec=QuantumJobSpec(
        circuit=CircuitSpec(qasm="OPENQASM 2.0;", observables=["ZZ", "XX"]), deadline=30.0))
    status = QuantumJobStatus(
        phase=Phase.SUCCEEDED,
        decision=Decision(path="SingleQPU", policy="p", policy_generation=3,
                          reason="QuantumSelected", estimated_energy_joules=5.0,
                          features={"qubits": 2, "twoQubitDepth": 3, "measuredBases": 2},
                          rules=[RuleOutcome(name="learnedSuccessScale", value=2.0,
                                             passed=True, qpu="a")]),
        plan=Plan(fragments=[
            PlannedFragment(name="main-a", subcircuit="main", qpu="a", backend="a", shots=300,
                            estimated_fidelity=0.81, planned_start_seconds=0.0,
                            planned_end_seconds=3.0),
            PlannedFragment(name="main-b", subcircuit="main", qpu="b", backend="b", shots=100,
                            estimated_fidelity=0.9, planned_start_seconds=0.0,
                            planned_end_seconds=1.0)]),
        result=Result(path="SingleQPU", qpus=["a", "b"], energy_joules=6.0,
                      mitigation=[MitigationReport(level="Readout", shot_multiplier=2.0,
                                                   qpus=["a"])]),
        verification=Verification(method="ExactStatevector", passed=True, noisy=True,
                                  implied_success_probability=0.7),
        timings=Timings(execute_seconds=8.0, total_seconds=9.0))
    set_condition(status.conditions, ConditionType.DEADLINE_MET, True, Reason.FINISHED_IN_TIME,
                  "", None, NOW)
    return job, status


def test_record_keeps_nominal_parts_and_shares_the_execute_time() -> None:
    job, status = finished()
    r = record_from_status(job, status, {"a": qpu("a"), "b": qpu("b")}, NOW)
    assert (r.name, r.namespace, r.policy, r.policy_generation) == ("j", "ns", "p", 3)
    assert r.problem_class == "expectation/q<=4/d<=10"
    assert r.finished_at == NOW.timestamp() and r.deadline_met is True
    assert r.deadline_seconds == 30.0 and r.verified is True and r.implied_success == 0.7
    a, b = r.fragments
    assert a.shots == 300 * 2 * 2.0 and b.shots == 200  # bases x mitigation multiplier
    assert a.actual_seconds == pytest.approx(6.0) and b.actual_seconds == pytest.approx(2.0)
    assert a.estimated_success == pytest.approx(0.9)  # 0.81 ** (1/2): the nominal estimate
    assert b.estimated_success == 0.9
    assert r.learned == ["learnedSuccessScale:a"] and r.mitigation == ["Readout"]
    assert (r.estimated_energy_joules, r.energy_joules) == (5.0, 6.0) and r.succeeded


def test_measured_fragment_times_win_and_unknown_qpus_are_left_out() -> None:
    job, status = finished()
    r = record_from_status(job, status, {"a": qpu("a")}, NOW,
                           fragment_seconds={"main-a": 4.5}, fragment_waits={"main-a": 2.0})
    assert [f.qpu for f in r.fragments] == ["a"]
    assert r.fragments[0].actual_seconds == 4.5 and r.fragments[0].actual_wait_seconds == 2.0


def test_problem_classes_bucket_width_and_depth() -> None:
    assert problem_class({"qubits": 9, "twoQubitDepth": 400}, True) == "sampling/q<=16/d>200"
    assert problem_class({}, False) == "expectation/q<=4/d<=10"
