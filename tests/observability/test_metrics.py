"""The metrics module: names by Prometheus conventions, each event counted once, gauges from
the views, a valid exposition, and no exception ever reaching the caller."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from qbackbone.api.conditions import Phase
from qbackbone.api.quantumjob import QuantumJobStatus
from qbackbone.observability import OperatorMetrics
from qbackbone.observability.state import JobKey, QPULoad, job_key, qpu_load, read_index
from qbackbone.observability.transitions import deadline_outcome, decided, finished


def cond(type_: str, ok: bool, reason: str = "R") -> dict[str, Any]:
    return {"type": type_, "status": "True" if ok else "False", "reason": reason,
            "message": "", "lastTransitionTime": "2026-11-23T00:00:00Z"}


RUNNING: dict[str, Any] = {
    "phase": "Running",
    "decision": {"path": "SingleQPU", "reason": "QuantumSelected", "policy": "default",
                 "policyGeneration": 1},
    "timings": {"reduceSeconds": 0.05, "decideSeconds": 0.2}}
SUCCEEDED = {**RUNNING, "phase": "Succeeded",
             "timings": {**RUNNING["timings"], "totalSeconds": 2.4},
             "conditions": [cond("DeadlineMet", True, "FinishedInTime"),
                            cond("Succeeded", True, "Completed")]}


def samples(metrics: OperatorMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed back by prometheus_client's own parser."""
    out = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, tuple(sorted(labels.items()))))


def test_names_follow_prometheus_conventions() -> None:
    m = OperatorMetrics()
    families = {f.name: f for f in text_string_to_metric_families(m.exposition().decode())}
    assert set(families) == {
        "qbackbone_jobs", "qbackbone_qip_decisions", "qbackbone_job_deadline",
        "qbackbone_job_failures", "qbackbone_reconcile_errors",
        "qbackbone_scheduler_decision_seconds", "qbackbone_job_duration_seconds",
        "qbackbone_qpu_queue_depth", "qbackbone_qpu_utilisation_ratio", "qbackbone_qpu_ready",
        "qbackbone_joint_plan_seconds", "qbackbone_joint_plan_jobs",
        "qbackbone_job_energy_joules"}
    for name, family in families.items():
        assert family.documentation, name
        if family.type == "counter":
            assert all(s.name == f"{name}_total" for s in family.samples), name
        if family.type == "histogram":  # in base units
            assert name.endswith(("_seconds", "_joules")), name
    # No *_created series, and bounded labels only (no job or pod names).
    text = m.exposition().decode()
    assert "_created" not in text
    allowed = {"namespace", "phase", "path", "reason", "outcome", "controller", "kind", "qpu",
               "le"}
    for family in families.values():
        for s in family.samples:
            assert set(s.labels) <= allowed, (s.name, s.labels)


def test_label_values_are_pre_created_at_zero() -> None:
    m = OperatorMetrics()
    assert value(m, "qbackbone_job_deadline_total", outcome="met") == 0
    assert value(m, "qbackbone_job_deadline_total", outcome="missed") == 0
    assert value(m, "qbackbone_qip_decisions_total", path="Classical",
                 reason="ClassicalSelected") == 0
    assert value(m, "qbackbone_reconcile_errors_total", controller="qpunode", kind="api") == 0
    assert value(m, "qbackbone_job_duration_seconds_count", path="Distributed") == 0
    # Every failure reason and every QIP refusal, so rate() sees the first one happen.
    assert value(m, "qbackbone_job_failures_total", reason="PolicyNotFound") == 0
    assert value(m, "qbackbone_job_failures_total", reason="ExecutionFailed") == 0
    assert value(m, "qbackbone_job_failures_total", reason="QuantumSelected") is None
    assert value(m, "qbackbone_qip_decisions_total", path="None", reason="NoEligibleQPU") == 0


def test_a_job_is_counted_once_per_event_even_when_written_twice() -> None:
    m = OperatorMetrics()
    m.job_status_written("u1", None, RUNNING)
    m.job_status_written("u1", None, RUNNING)  # a second write over a stale body
    assert value(m, "qbackbone_qip_decisions_total", path="SingleQPU",
                 reason="QuantumSelected") == 1
    assert value(m, "qbackbone_scheduler_decision_seconds_count") == 1
    assert value(m, "qbackbone_scheduler_decision_seconds_sum") == pytest.approx(0.25)
    m.job_status_written("u1", RUNNING, SUCCEEDED)
    m.job_status_written("u1", RUNNING, SUCCEEDED)
    assert value(m, "qbackbone_job_duration_seconds_count", path="SingleQPU") == 1
    assert value(m, "qbackbone_job_duration_seconds_sum", path="SingleQPU") == pytest.approx(2.4)
    assert value(m, "qbackbone_job_duration_seconds_bucket", path="SingleQPU", le="2.0") == 0
    assert value(m, "qbackbone_job_duration_seconds_bucket", path="SingleQPU", le="3.0") == 1
    assert value(m, "qbackbone_job_deadline_total", outcome="met") == 1


def test_the_energy_of_a_finished_job_is_observed_once_by_path() -> None:
    m = OperatorMetrics()
    assert value(m, "qbackbone_job_energy_joules_count", path="Classical") == 0  # pre-created
    done = {**SUCCEEDED, "result": {"path": "SingleQPU", "energyJoules": 35_157.0}}
    m.job_status_written("e1", RUNNING, done)
    m.job_status_written("e1", RUNNING, done)  # written twice: observed once
    m.job_status_written("e2", RUNNING, SUCCEEDED)  # no estimate: nothing observed
    assert value(m, "qbackbone_job_energy_joules_count", path="SingleQPU") == 1
    assert value(m, "qbackbone_job_energy_joules_sum", path="SingleQPU") == 35_157.0
    assert value(m, "qbackbone_job_energy_joules_bucket", path="SingleQPU", le="30000.0") == 0
    assert value(m, "qbackbone_job_energy_joules_bucket", path="SingleQPU", le="100000.0") == 1


def test_a_restarted_operator_does_not_count_what_it_only_observes() -> None:
    restarted = OperatorMetrics()
    # It sees the finished job (its index) and, were it to write, would write terminal over
    # terminal.
    restarted.watch({job_key("a", SUCCEEDED): [None]}, {})
    restarted.job_status_written("u1", SUCCEEDED, SUCCEEDED)
    # A job decided before the restart and finished after it: the finish only.
    restarted.job_status_written("u2", RUNNING, SUCCEEDED)
    assert value(restarted, "qbackbone_qip_decisions_total", path="SingleQPU",
                 reason="QuantumSelected") == 0
    assert value(restarted, "qbackbone_job_duration_seconds_count", path="SingleQPU") == 1
    assert value(restarted, "qbackbone_jobs", namespace="a", phase="Succeeded",
                 path="SingleQPU") == 1


def test_refusals_failures_and_deadline_misses() -> None:
    m = OperatorMetrics()
    refused = {"phase": "Failed",
               "decision": {"reason": "DeadlineInfeasible", "policy": "default",
                            "policyGeneration": 1},
               "conditions": [cond("Failed", True, "DeadlineInfeasible")]}
    m.job_status_written("r", None, refused)
    invalid = {"phase": "Failed", "conditions": [cond("Failed", True, "InvalidCircuit")]}
    m.job_status_written("i", {}, invalid)
    late = {**SUCCEEDED, "conditions": [cond("DeadlineMet", False, "DeadlineMissed")]}
    m.job_status_written("l", RUNNING, late)
    assert value(m, "qbackbone_qip_decisions_total", path="None",
                 reason="DeadlineInfeasible") == 1
    assert value(m, "qbackbone_job_failures_total", reason="DeadlineInfeasible") == 1
    assert value(m, "qbackbone_job_failures_total", reason="InvalidCircuit") == 1
    assert value(m, "qbackbone_job_deadline_total", outcome="missed") == 2
    assert value(m, "qbackbone_job_deadline_total", outcome="met") == 0
    # Only Succeeded jobs have a duration: the failures are not in the histogram.
    assert value(m, "qbackbone_job_duration_seconds_count", path="SingleQPU") == 1


def test_the_reconciler_status_model_is_accepted() -> None:
    m = OperatorMetrics()
    status = QuantumJobStatus.model_validate(RUNNING)
    assert status.phase == Phase.RUNNING
    m.job_status_written("u", None, status)
    assert value(m, "qbackbone_qip_decisions_total", path="SingleQPU",
                 reason="QuantumSelected") == 1


def test_jobs_gauge_reads_the_index_and_keeps_emptied_series_at_zero() -> None:
    m = OperatorMetrics()
    assert value(m, "qbackbone_jobs", namespace="team-a", phase="Pending", path="None") is None
    index: dict[JobKey, list[None]] = {job_key("team-a", None): [None]}  # no status: Pending
    m.watch(index, None)
    assert value(m, "qbackbone_jobs", namespace="team-a", phase="Pending", path="None") == 1
    index.clear()
    index[job_key("team-a", RUNNING)] = [None, None]
    assert value(m, "qbackbone_jobs", namespace="team-a", phase="Running", path="SingleQPU") == 2
    assert value(m, "qbackbone_jobs", namespace="team-a", phase="Pending", path="None") == 0
    index[job_key("team-a", RUNNING)] = [None]  # one deleted
    assert value(m, "qbackbone_jobs", namespace="team-a", phase="Running", path="SingleQPU") == 1


def test_qpu_gauges_mirror_the_qpunode_status() -> None:
    m = OperatorMetrics()
    ready = {"conditions": [cond("Ready", True, "Calibrated")], "queueDepth": 3,
             "utilisation": 0.42}
    qpus = {"qpu-a": [qpu_load(ready)], "qpu-b": [qpu_load(None)]}  # b: not validated yet
    m.watch(None, qpus)
    assert value(m, "qbackbone_qpu_queue_depth", qpu="qpu-a") == 3
    assert value(m, "qbackbone_qpu_utilisation_ratio", qpu="qpu-a") == pytest.approx(0.42)
    assert value(m, "qbackbone_qpu_ready", qpu="qpu-a") == 1
    assert value(m, "qbackbone_qpu_queue_depth", qpu="qpu-b") == 0
    assert value(m, "qbackbone_qpu_ready", qpu="qpu-b") == 0
    del qpus["qpu-a"]  # deleted QPUNode
    assert value(m, "qbackbone_qpu_queue_depth", qpu="qpu-a") is None


class Racing(dict[str, list[QPULoad]]):
    """An index changed by another thread while it is read: the first reads fail."""

    def __init__(self, failures: int) -> None:
        super().__init__({"q": [QPULoad(True, 1, 0.5)]})
        self.failures = failures

    def __iter__(self) -> Iterator[str]:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("dictionary changed size during iteration")
        return super().__iter__()


def test_an_index_read_racing_a_change_is_retried() -> None:
    assert read_index(Racing(2)) == {"q": [QPULoad(True, 1, 0.5)]}
    assert read_index(Racing(100)) == {}  # gives up: an empty scrape, not an error


def test_reconcile_errors_by_controller_and_kind() -> None:
    m = OperatorMetrics()
    m.reconcile_error("quantumjob", "api")
    m.reconcile_error("quantumjob", "api")
    assert value(m, "qbackbone_reconcile_errors_total", controller="quantumjob", kind="api") == 2


@pytest.mark.parametrize("garbage", [
    {"decision": "not a mapping"},
    {"phase": 7, "timings": {"totalSeconds": "soon"}, "conditions": "none"},
    {"decision": {"path": "SingleQPU", "reason": "QuantumSelected"}, "timings": []},
])
def test_bad_input_never_raises(garbage: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="qbackbone.observability.metrics")
    m = OperatorMetrics()
    m.job_status_written("x", None, garbage)
    m.job_status_written("x", {"phase": "Running"}, garbage)
    m.job_status_written("y", None, {"decision": ["a list"]})  # raises inside, logged
    jobs: Any = {"not a key": "nor a collection", job_key("ns", None): [None]}
    m.watch(jobs, {"q": ["not a load"], "r": [QPULoad(True, 2, 0.1)]})  # type: ignore[list-item]
    text = m.exposition().decode()  # a scrape still answers, with what is sound
    assert list(text_string_to_metric_families(text))
    assert value(m, "qbackbone_jobs", namespace="ns", phase="Pending", path="None") == 1
    assert value(m, "qbackbone_qpu_queue_depth", qpu="r") == 2
    assert "metrics:" in caplog.text  # logged, not raised


def test_transitions_are_pure_and_need_a_change() -> None:
    assert decided(RUNNING, RUNNING) is None
    assert decided({}, {"phase": "Running"}) is None
    d = decided(None, RUNNING)
    assert d is not None and (d.path, d.reason) == ("SingleQPU", "QuantumSelected")
    assert finished(SUCCEEDED, SUCCEEDED) is None
    assert finished(RUNNING, RUNNING) is None
    f = finished(RUNNING, SUCCEEDED)
    assert f is not None and (f.phase, f.path, f.deadline, f.seconds) == \
        ("Succeeded", "SingleQPU", "met", 2.4)
    assert deadline_outcome({"phase": "Failed",
                             "conditions": [cond("Failed", True, "ExecutionFailed")]}) is None
    assert deadline_outcome({"conditions": [cond("Failed", True, "DeadlineExceeded")]}) == \
        "missed"
