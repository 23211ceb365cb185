"""A fragment's QPU goes away, or its pod fails: a fragment that has not started is
rescheduled on another eligible QPU (a new attempt, the stale pod deleted), one that runs
finishes where it runs and its result is used, or the job fails with the reason. The status
names the QPUs that produced the result.

The QPUs lost here are QPUNodes no node advertises (``op-ghost-*``): Ready (the operator builds
them) and the fastest QPU in the scheduler's model, so the joint plan puts a lone job's
fragments on them, but their pods stay Pending: a fragment waiting on its QPU. A started, failed
or finished pod is what a kubelet reports for its container; the test writes that status
itself, as the node agent (the kubelet's stand-in here) would, and runs such a pod's work with
the worker's own code.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from qbackbone.k8s.jobflow import QPU_VIEW_SECONDS
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.names import input_name
from qbackbone.worker.run import run_input
from tests.operator.kit import (
    PodWatch,
    condition,
    create,
    create_ready_qpunode,
    delete_qpunode,
    quantum_job,
    wait_job,
)
from tests.operator.test_distributed import check_ghz_values, fragment_pods, ghz_job
from tests.operator.test_jobs import ENTANGLED, OBSERVABLES, exact

pytestmark = pytest.mark.cluster


@pytest.fixture
def ghost(api: client.ApiClient, fleet: tuple[str, ...],
          request: pytest.FixtureRequest) -> Iterator[str]:
    """A Ready aer QPUNode that no node advertises, modelled 20x faster than the fleet's (so
    plans prefer it); deleted after the test if still there."""
    name = f"op-ghost-{request.node.name[5:20].replace('_', '-').strip('-')}"
    create_ready_qpunode(api, name, qubits=8, shotTime="1us")
    yield name
    delete_qpunode(api, name)


def pods_on(core: client.CoreV1Api, namespace: str, job: str, qpu: str) -> list[Any]:
    return core.list_namespaced_pod(
        namespace, label_selector=f"qbackbone.io/job={job},qbackbone.io/qpu={qpu}").items


def events_of(core: client.CoreV1Api, namespace: str, job: str) -> list[Any]:
    return [e for e in core.list_namespaced_event(namespace).items
            if e.involved_object.name == job]


def report(core: client.CoreV1Api, namespace: str, pod: str, phase: str,
           state: dict[str, Any]) -> None:
    """Write the pod's phase and its container's state, as a kubelet does."""
    status: dict[str, Any] = {"phase": phase, "containerStatuses": [
        {"name": "worker", "image": "qbackbone", "imageID": "", "ready": phase == "Running",
         "restartCount": 0, "state": state}]}
    if phase == "Running":
        status["startTime"] = datetime.now(UTC).isoformat(timespec="seconds")
    core.patch_namespaced_pod_status(pod, namespace, {"status": status})


def fail_pod(core: client.CoreV1Api, namespace: str, pod: str, message: str) -> None:
    """Report the pod's container as exited 1 with ``message``."""
    report(core, namespace, pod, "Failed", {"terminated": {
        "exitCode": 1, "reason": "Error", "message": message,
        "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z"}})


def start_pod(core: client.CoreV1Api, namespace: str, pod: str) -> None:
    """Report the pod's container as started."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    report(core, namespace, pod, "Running", {"running": {"startedAt": now}})


def finish_pod(api: client.ApiClient, core: client.CoreV1Api, namespace: str, pod: str) -> None:
    """The pod's worker runs its input (the worker's own code, here) and exits 0."""
    run_input(Kube(api), namespace, input_name(pod))
    report(core, namespace, pod, "Succeeded", {"terminated": {
        "exitCode": 0, "reason": "Completed",
        "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z"}})


def named_qpus(status: dict[str, Any]) -> str:
    """The parts of a status that name QPUs: the result and the plan."""
    return json.dumps({k: status.get(k) for k in ("result", "plan")})


def test_fragments_on_a_deleted_qpu_are_rescheduled(api: client.ApiClient, namespace: str,
                                                    fleet: tuple[str, ...], ghost: str,
                                                    core: client.CoreV1Api,
                                                    pod_watch: PodWatch) -> None:
    create(api, namespace, ghz_job("moved"))
    def both() -> list[Any]:  # the measurement pod and the gated preparation pod
        pods = pods_on(core, namespace, "moved", ghost)
        return pods if len(pods) == 2 else []

    stranded = wait_for(both, 60, what=f"both subcircuits' pods waiting on {ghost}")
    assert all(p.status.phase == "Pending" for p in stranded)
    delete_qpunode(api, ghost)
    job = wait_job(api, namespace, "moved", timeout=180)
    check_ghz_values(job)
    assert set(job["status"]["result"]["qpus"]) <= set(fleet)  # nothing ran on the ghost
    pods = fragment_pods(core, namespace, "moved")
    assert not [p for p in pods if p.metadata.name in {s.metadata.name for s in stranded}]
    retries = [p for p in pods if p.metadata.labels["qbackbone.io/attempt"] == "1"]
    assert len(retries) == 2 and all(p.metadata.name.endswith("-r1") for p in retries)
    assert {p.metadata.labels["qbackbone.io/qpu"] for p in retries} <= set(fleet)
    assert {p.metadata.labels["qbackbone.io/fragment"] for p in retries} == \
        {p.metadata.labels["qbackbone.io/fragment"] for p in stranded}
    results = core.list_namespaced_config_map(
        namespace, label_selector="qbackbone.io/job=moved,qbackbone.io/role=result").items
    assert len(results) == 2  # one per fragment: each ran once, where it was moved to
    assert all(n == 1 for n in pod_watch.added.values()), pod_watch.added
    moved = [e for e in events_of(core, namespace, "moved") if e.reason == "Rescheduled"]
    assert len(moved) == 2 and all(ghost in e.message for e in moved), moved


def test_a_deleted_qpu_with_no_other_eligible_fails_the_job(api: client.ApiClient,
                                                            namespace: str,
                                                            fleet: tuple[str, ...], ghost: str,
                                                            core: client.CoreV1Api) -> None:
    create(api, namespace, ghz_job("stuck", execution={"qpuSelector": {"names": [ghost]}}))
    wait_for(lambda: len(pods_on(core, namespace, "stuck", ghost)) == 2, 60,
             what=f"fragment pods waiting on {ghost}")
    delete_qpunode(api, ghost)
    job = wait_job(api, namespace, "stuck", timeout=60)
    failed = condition(job, "Failed")
    assert job["status"]["phase"] == "Failed"
    assert failed is not None and failed["reason"] == "QPUUnavailable", failed
    assert ghost in failed["message"] and "no other eligible QPU" in failed["message"], failed
    # The pods that could never start are deleted; nothing ran anywhere else.
    wait_for(lambda: not core.list_namespaced_pod(
        namespace, label_selector="qbackbone.io/job=stuck").items, 30,
        what="the job's waiting pods deleted")
    assert not core.list_namespaced_config_map(
        namespace, label_selector="qbackbone.io/job=stuck,qbackbone.io/role=result").items
    assert any(e.reason == "Failed" and "QPUUnavailable" in e.message
               for e in events_of(core, namespace, "stuck"))


def test_a_failed_fragment_pod_is_retried_once_on_another_qpu(api: client.ApiClient,
                                                              namespace: str,
                                                              fleet: tuple[str, ...],
                                                              ghost: str,
                                                              core: client.CoreV1Api) -> None:
    names = [ghost, fleet[0]]
    create(api, namespace, ghz_job("retried", execution={"qpuSelector": {"names": names}}))
    for sub in ("sub0", "sub1"):  # the measurement pod first; the preparation pod once released
        def released(sub: str = sub) -> list[Any]:
            return [p for p in pods_on(core, namespace, "retried", ghost)
                    if p.metadata.labels["qbackbone.io/subcircuit"] == sub
                    and p.metadata.labels["qbackbone.io/attempt"] == "0"
                    and not p.spec.scheduling_gates]

        (pod,) = wait_for(released, 60, what=f"{sub}'s pod on {ghost}, not gated")
        fail_pod(core, namespace, pod.metadata.name, f"simulated fault of {ghost}")
    job = wait_job(api, namespace, "retried", timeout=180)
    check_ghz_values(job)
    assert job["status"]["result"]["qpus"] == [fleet[0]]
    retried = [e for e in events_of(core, namespace, "retried") if e.reason == "Rescheduled"]
    assert len(retried) == 2, retried
    assert all(f"simulated fault of {ghost}" in e.message and fleet[0] in e.message
               for e in retried), retried


def test_a_failed_fragment_pod_with_no_other_qpu_fails_the_job(api: client.ApiClient,
                                                               namespace: str,
                                                               fleet: tuple[str, ...],
                                                               ghost: str,
                                                               core: client.CoreV1Api) -> None:
    create(api, namespace, ghz_job("broken", execution={"qpuSelector": {"names": [ghost]}}))
    pods = wait_for(lambda: [p for p in pods_on(core, namespace, "broken", ghost)
                             if not p.spec.scheduling_gates], 60,
                    what=f"the measurement pod on {ghost}")
    fail_pod(core, namespace, pods[0].metadata.name, "simulated readout failure")
    job = wait_job(api, namespace, "broken", timeout=60)
    failed = condition(job, "Failed")
    assert failed is not None and failed["reason"] == "ExecutionFailed", failed
    assert "simulated readout failure" in failed["message"], failed
    assert "no other eligible QPU" in failed["message"], failed


def test_a_single_qpu_share_on_a_deleted_qpu_moves_too(api: client.ApiClient, namespace: str,
                                                      fleet: tuple[str, ...], ghost: str,
                                                      core: client.CoreV1Api) -> None:
    names = [ghost, fleet[0]]
    create(api, namespace, quantum_job("share", ENTANGLED, OBSERVABLES, shots=2000,
                                       execution={"mode": "SingleQPU",
                                                  "qpuSelector": {"names": names}}))
    (stranded,) = wait_for(lambda: pods_on(core, namespace, "share", ghost), 60,
                           what=f"the share waiting on {ghost}")
    assert stranded.metadata.name == f"share-frag-{ghost}"
    delete_qpunode(api, ghost)
    deleted = time.monotonic()
    wait_for(lambda: pods_on(core, namespace, "share", fleet[0]), 30, interval=0.05,
             what=f"the share moved to {fleet[0]}")
    moved_after = time.monotonic() - deleted
    print(f"\nshare moved {moved_after:.2f}s after its QPUNode was deleted")
    assert moved_after < 3.0  # the QPUNode watch marks the view stale: no 5 s old view
    job = wait_job(api, namespace, "share", timeout=120)
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    assert status["decision"]["path"] == "SingleQPU" and status["verification"]["passed"]
    # The status names the QPU that produced the result, not the one planned first.
    assert status["result"]["qpus"] == [fleet[0]]
    assert [f["qpu"] for f in status["plan"]["fragments"]] == [fleet[0]]
    assert ghost not in named_qpus(status), named_qpus(status)
    for ev, want in zip(status["result"]["expectationValues"], exact(ENTANGLED, OBSERVABLES),
                        strict=True):
        assert abs(ev["value"] - want) <= 4 * ev["stdError"] + 1e-9, (ev, want)
    pods = {p.metadata.name: p for p in fragment_pods(core, namespace, "share")}
    assert set(pods) == {f"share-frag-{ghost}-r1"}  # the plan put every shot on the ghost
    assert pods[f"share-frag-{ghost}-r1"].metadata.labels["qbackbone.io/qpu"] == fleet[0]


def test_a_running_fragment_on_a_deleted_qpu_finishes_and_its_result_is_used(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...], ghost: str,
        core: client.CoreV1Api) -> None:
    names = [ghost, fleet[0]]
    create(api, namespace, quantum_job("ran", ENTANGLED, OBSERVABLES, shots=2000,
                                       execution={"mode": "SingleQPU",
                                                  "qpuSelector": {"names": names}}))
    (pod,) = wait_for(lambda: pods_on(core, namespace, "ran", ghost), 60,
                      what=f"the share waiting on {ghost}")
    name = pod.metadata.name
    start_pod(core, namespace, name)
    delete_qpunode(api, ghost)
    time.sleep(QPU_VIEW_SECONDS + 2)  # the longest the operator took to act before
    (still,) = pods_on(core, namespace, "ran", ghost)
    assert still.metadata.name == name and not still.metadata.deletion_timestamp
    assert len(fragment_pods_now(core, namespace, "ran")) == 1  # no second attempt
    assert not [e for e in events_of(core, namespace, "ran") if e.reason == "Rescheduled"]
    finish_pod(api, core, namespace, name)
    job = wait_job(api, namespace, "ran", timeout=60)
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    assert status["result"]["qpus"] == [ghost]  # the lost QPU's result, used
    assert [f["qpu"] for f in status["plan"]["fragments"]] == [ghost]


def test_a_gated_fragment_is_never_released_onto_a_deleted_qpu(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...], ghost: str,
        core: client.CoreV1Api) -> None:
    """The measurement runs on the ghost and finishes moments after the ghost is deleted:
    its result is used, and its preparation (gated on the ghost) runs elsewhere."""
    create(api, namespace, ghz_job("held", execution={"qpuSelector": {"names": [ghost,
                                                                                fleet[0]]}}))
    pods = wait_for(lambda: [p for p in pods_on(core, namespace, "held", ghost)
                             if not p.spec.scheduling_gates], 60,
                    what=f"the measurement pod on {ghost}")
    measurement = pods[0].metadata.name
    start_pod(core, namespace, measurement)
    delete_qpunode(api, ghost)
    finish_pod(api, core, namespace, measurement)  # about a second after the deletion
    job = wait_job(api, namespace, "held", timeout=120)
    check_ghz_values(job)
    events = events_of(core, namespace, "held")
    released = [e.message for e in events if e.reason == "Released"]
    assert not [m for m in released if f"-{ghost}:" in m], released  # none on the ghost
    assert not [p for p in pods_on(core, namespace, "held", ghost)
                if p.metadata.labels["qbackbone.io/subcircuit"] == "sub1"]  # deleted gated
    status = job["status"]
    by_sub = {f["subcircuit"]: f["qpu"] for f in status["plan"]["fragments"]}
    assert by_sub == {"sub0": ghost, "sub1": fleet[0]}, status["plan"]
    assert status["result"]["qpus"] == sorted([ghost, fleet[0]])


def fragment_pods_now(core: client.CoreV1Api, namespace: str, job: str) -> list[Any]:
    return core.list_namespaced_pod(
        namespace, label_selector=f"qbackbone.io/job={job},qbackbone.io/role=fragment").items
