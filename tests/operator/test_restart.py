"""The operator is killed after dispatching a job, or in the middle of a distributed job; a
new one re-derives the decision from the job's decision ConfigMap (and cut plan), neither
losing nor repeating a fragment."""

from __future__ import annotations

import signal
from typing import Any

import pytest
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from tests.operator.conftest import OperatorProcess
from tests.operator.kit import PodWatch, condition, create, get_job, quantum_job, wait_job
from tests.operator.test_distributed import check_ghz_values, fragment_pods, split_ghz_job
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


def test_sigkill_mid_distributed_job_resumes_with_the_same_answer(
        api: client.ApiClient, namespace: str, slow_pair: tuple[str, ...],
        operator: OperatorProcess, core: client.CoreV1Api, pod_watch: PodWatch) -> None:
    """Killed while the LOCC preparation pods wait behind their gate; the measurement pods
    finish meanwhile. The new operator releases the gate from the stored results and reaches
    exactly the values of an uninterrupted run with the same seed, creating no pod twice."""
    fleet = slow_pair  # each subcircuit split over both (the deadline needs it)
    create(api, namespace, split_ghz_job("calm", fleet))
    calm = wait_job(api, namespace, "calm", timeout=180)
    check_ghz_values(calm)
    create(api, namespace, split_ghz_job("killed", fleet))

    def gated() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="qbackbone.io/job=killed").items
        waiting = [p for p in pods if p.spec.scheduling_gates]
        return pods if len(pods) == 2 * len(fleet) and len(waiting) == len(fleet) else []

    before = wait_for(gated, 60, interval=0.1, what="measurement pods created, preparation gated")
    operator.stop(signal.SIGKILL)

    def measured() -> bool:
        results = core.list_namespaced_config_map(
            namespace, label_selector="qbackbone.io/job=killed,qbackbone.io/role=result").items
        return len(results) == len(fleet)

    wait_for(measured, 60, what="the measurement fragments' results, operator down")
    still = core.list_namespaced_pod(namespace, label_selector="qbackbone.io/job=killed").items
    assert sum(1 for p in still if p.spec.scheduling_gates) == len(fleet)  # nobody released
    operator.start()
    job = wait_job(api, namespace, "killed", timeout=180)
    check_ghz_values(job)
    assert job["status"]["result"]["expectationValues"] == \
        calm["status"]["result"]["expectationValues"]
    after = fragment_pods(core, namespace, "killed")
    assert {p.metadata.name: p.metadata.uid for p in before} == \
        {p.metadata.name: p.metadata.uid for p in after}
    assert all(pod_watch.added[p.metadata.name] == 1 for p in after), pod_watch.added
    results = core.list_namespaced_config_map(
        namespace, label_selector="qbackbone.io/job=killed,qbackbone.io/role=result").items
    assert len(results) == len(after)
    reasons = [e.reason for e in core.list_namespaced_event(namespace).items
               if e.involved_object.name == "killed"]
    assert "Resumed" in reasons and reasons.count("Released") == len(fleet), reasons
