"""The operator is killed after dispatching a job; a new one re-derives the decision from the
job's decision ConfigMap, neither losing nor repeating a fragment."""

from __future__ import annotations

import signal
from typing import Any

import pytest
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from tests.operator.conftest import OperatorProcess
from tests.operator.kit import condition, create, get_job, quantum_job, wait_job
from tests.operator.test_jobs import ENTANGLED, OBSERVABLES, exact

pytestmark = pytest.mark.cluster


def test_sigkilled_operator_resumes_a_running_job(api: client.ApiClient, namespace: str,
                                                  fleet: tuple[str, ...],
                                                  operator: OperatorProcess,
                                                  core: client.CoreV1Api) -> None:
    create(api, namespace, quantum_job("resume", ENTANGLED, OBSERVABLES, shots=2000,
                                       execution={"mode": "SingleQPU"}))

    def running() -> Any:
        job = get_job(api, namespace, "resume")
        return job if (job.get("status") or {}).get("phase") == "Running" else None

    wait_for(running, 60, interval=0.1, what="job Running (fragments dispatched)")
    pods = core.list_namespaced_pod(namespace, label_selector="qbackbone.io/job=resume").items
    uids = {p.metadata.name: p.metadata.uid for p in pods}
    operator.stop(signal.SIGKILL)
    operator.start()
    job = wait_job(api, namespace, "resume")
    assert job["status"]["phase"] == "Succeeded", condition(job, "Failed")
    for ev, want in zip(job["status"]["result"]["expectationValues"],
                        exact(ENTANGLED, OBSERVABLES), strict=True):
        assert abs(ev["value"] - want) <= 4 * ev["stdError"] + 1e-9, (ev, want)
    events = core.list_namespaced_event(namespace).items
    assert any(e.reason == "Resumed" and e.involved_object.name == "resume" for e in events)
    after = core.list_namespaced_pod(namespace, label_selector="qbackbone.io/job=resume").items
    assert {p.metadata.name: p.metadata.uid for p in after} == uids  # no pod was re-created
