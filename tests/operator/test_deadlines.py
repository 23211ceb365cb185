"""A job's deadline while it waits or runs: a job whose pods cannot start (their QPU is a
QPUNode no node advertises, so they stay Pending, or gated behind them) ends Failed with
``DeadlineExceeded`` once its deadline passes, naming what was outstanding, its unfinished
pods deleted and its decision record and inputs kept; a job that finishes in time is not
touched by its deadline."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from tests.operator import test_qpu_loss
from tests.operator.kit import condition, create, quantum_job, wait_job
from tests.operator.test_distributed import ghz_job
from tests.operator.test_jobs import ENTANGLED, OBSERVABLES, exact
from tests.operator.test_qpu_loss import events_of, pods_on

pytestmark = pytest.mark.cluster
ghost = test_qpu_loss.ghost  # the fixture: a Ready QPUNode that no node advertises

DEADLINE = 12.0  # seconds: room for the cut planning, short for a test


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _configmaps(core: client.CoreV1Api, namespace: str, job: str, role: str) -> list[str]:
    return [c.metadata.name for c in core.list_namespaced_config_map(
        namespace, label_selector=f"qbackbone.io/job={job},qbackbone.io/role={role}").items]


def test_a_job_whose_pods_cannot_start_fails_at_its_deadline(api: client.ApiClient,
                                                            namespace: str,
                                                            fleet: tuple[str, ...], ghost: str,
                                                            core: client.CoreV1Api) -> None:
    create(api, namespace, ghz_job("late", deadline=f"{DEADLINE:g}s",
                                   execution={"qpuSelector": {"names": [ghost]}}))
    waiting = wait_for(lambda: pods if len(pods := pods_on(core, namespace, "late", ghost)) == 2
                       else [], 60, what=f"the measurement and the gated pod on {ghost}")
    names = {p.metadata.name for p in waiting}
    assert all(p.status.phase == "Pending" for p in waiting)
    assert sum(1 for p in waiting if p.spec.scheduling_gates) == 1
    job = wait_job(api, namespace, "late", timeout=DEADLINE + 60)
    status = job["status"]
    failed = condition(job, "Failed")
    assert status["phase"] == "Failed", status
    assert failed is not None and failed["reason"] == "DeadlineExceeded", failed
    succeeded = condition(job, "Succeeded")
    assert succeeded is not None and succeeded["status"] == "False"
    assert succeeded["reason"] == "DeadlineExceeded"
    # Not before the deadline (timestamps have whole seconds), and it names what was left.
    created = _time(job["metadata"]["creationTimestamp"])
    assert (_time(failed["lastTransitionTime"]) - created).total_seconds() >= DEADLINE - 1
    message = failed["message"]
    assert "2 of 2 fragment result(s) outstanding" in message, message
    assert all(name in message for name in names), message
    assert "Pending, not scheduled" in message and "gated" in message, message
    # Its pods that never ran are deleted; the decision record, cut plan and input stay.
    wait_for(lambda: not core.list_namespaced_pod(
        namespace, label_selector="qbackbone.io/job=late").items, 30,
        what="the job's waiting pods deleted")
    assert _configmaps(core, namespace, "late", "decision") == ["late-decision"]
    assert _configmaps(core, namespace, "late", "plan") == ["late-cutplan"]
    assert len(_configmaps(core, namespace, "late", "input")) == 1  # the measurement pod's
    assert not _configmaps(core, namespace, "late", "result")
    warnings = [e for e in events_of(core, namespace, "late")
                if e.type == "Warning" and e.reason == "Failed"]
    assert len(warnings) == 1 and "DeadlineExceeded" in warnings[0].message, warnings


def test_a_job_that_finishes_in_time_is_unaffected(api: client.ApiClient, namespace: str,
                                                  fleet: tuple[str, ...],
                                                  core: client.CoreV1Api) -> None:
    create(api, namespace, quantum_job("prompt", ENTANGLED, OBSERVABLES, shots=2000,
                                       deadline="5m", execution={"mode": "SingleQPU"}))
    job = wait_job(api, namespace, "prompt", timeout=120)
    status: dict[str, Any] = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    assert status["verification"]["passed"] is True
    met = condition(job, "DeadlineMet")
    assert met is not None and met["status"] == "True" and met["reason"] == "FinishedInTime", met
    assert condition(job, "Failed") is None or condition(job, "Failed")["status"] == "False"
    for ev, want in zip(status["result"]["expectationValues"], exact(ENTANGLED, OBSERVABLES),
                        strict=True):
        assert abs(ev["value"] - want) <= 4 * ev["stdError"] + 1e-9, (ev, want)
    results = _configmaps(core, namespace, "prompt", "result")
    assert len(results) == len(status["result"]["qpus"]) >= 1
    assert not [e for e in events_of(core, namespace, "prompt") if e.type == "Warning"]
