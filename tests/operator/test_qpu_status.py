"""QPUNode status kept current by the operator: queueDepth (fragment pods Pending or Running on
the QPU), utilisation (busy share of the last window), and cordoning (Ready=False/Cordoned,
so new jobs leave the QPU out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
from kubernetes import client

from qbackbone.api.qpunode import qpu_resource
from qbackbone.dev.waiting import wait_for
from qbackbone.k8s.usage import FragmentRun, busy_share, fragment_run, qpunode_usage
from tests.operator.kit import G, V, condition, create, qpunode, quantum_job, wait_job

pytestmark = pytest.mark.cluster

BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0], q[1];\n'
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _status(custom: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    return dict(custom.get_cluster_custom_object(G, V, "qpunodes", name).get("status") or {})


def _ready(custom: client.CustomObjectsApi, name: str) -> dict[str, Any] | None:
    obj = custom.get_cluster_custom_object(G, V, "qpunodes", name)
    cond = condition(obj, "Ready")
    gen = obj["metadata"]["generation"]
    return cond if cond is not None and cond["observedGeneration"] == gen else None


def _set_cordoned(custom: client.CustomObjectsApi, name: str, cordoned: bool) -> None:
    custom.patch_cluster_custom_object(G, V, "qpunodes", name, {"spec": {"cordoned": cordoned}})


# -- the arithmetic, without a cluster ---------------------------------------------------------

def test_busy_share_counts_overlaps_once_and_clips_to_the_window() -> None:
    now = T0 + timedelta(seconds=100)
    runs = [FragmentRun("q", False, T0 + timedelta(seconds=10), T0 + timedelta(seconds=30)),
            FragmentRun("q", False, T0 + timedelta(seconds=20), T0 + timedelta(seconds=40)),
            FragmentRun("q", True, T0 + timedelta(seconds=90), None),  # running: until now
            FragmentRun("q", True, None, None)]  # pending: not busy
    assert busy_share(runs, now, window=100) == pytest.approx(0.4)
    assert busy_share(runs, now, window=50) == pytest.approx(0.2)  # only the running one
    assert busy_share([], now) == 0.0


def test_fragment_run_reads_the_pod_labels_phase_and_container_times() -> None:
    pod = {"metadata": {"labels": {"qbackbone.io/role": "fragment", "qbackbone.io/qpu": "a"}},
           "status": {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {
               "startedAt": "2026-01-01T00:00:01Z", "finishedAt": "2026-01-01T00:00:03Z"}}}]}}
    run = fragment_run(pod)
    assert run == FragmentRun("a", False, T0 + timedelta(seconds=1), T0 + timedelta(seconds=3))
    pending = {"metadata": pod["metadata"], "status": {"phase": "Pending"}}
    assert fragment_run(pending) == FragmentRun("a", True, None, None)
    deleting = {"metadata": {**pod["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"},
                "status": {"phase": "Running"}}
    assert fragment_run(deleting) is not None and not fragment_run(deleting).active  # type: ignore[union-attr]
    assert fragment_run({"metadata": {"labels": {"qbackbone.io/role": "classical"}}}) is None


def test_usage_waits_for_the_qpunode_controller_and_keeps_its_conditions() -> None:
    assert qpunode_usage(None, []) is None
    assert qpunode_usage({"queueDepth": 2}, []) is None  # no observedGeneration yet
    stored = {"observedGeneration": 3, "queueDepth": 2, "resourceName": "qpu.qbackbone.io/a",
              "conditions": [{"type": "Ready", "status": "True", "reason": "Calibrated",
                              "message": "ok", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    new = qpunode_usage(stored, [FragmentRun("a", True, None, None)], T0)
    assert new is not None and new.queue_depth == 1 and new.utilisation == 0.0
    assert new.observed_generation == 3 and new.conditions[0].reason == "Calibrated"


# -- on the real control plane -----------------------------------------------------------------

def test_cordoned_qpunode_is_not_ready_and_has_a_pending_fragments_queue(
        api: client.ApiClient, core: client.CoreV1Api, namespace: str,
        fleet: tuple[str, ...]) -> None:
    """A QPUNode no node hosts, cordoned from the start: Ready=False/Cordoned with the
    calibration kept; a fragment pod for it stays Pending and is its queue (depth 1), until
    the pod is deleted (depth 0)."""
    custom = client.CustomObjectsApi(api)
    name = "op-qpu-nowhere"
    custom.create_cluster_custom_object(G, V, "qpunodes", qpunode(
        name, "fake", "fake_nairobi", cordoned=True))
    try:
        ready = wait_for(partial(_ready, custom, name), 60, what=f"{name} observed")
        assert (ready["status"], ready["reason"]) == ("False", "Cordoned"), ready
        assert "cordoned" in ready["message"]
        assert _status(custom, name)["calibration"]["medianT1Us"] > 0
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name="frag-nowhere", labels={
                "qbackbone.io/role": "fragment", "qbackbone.io/qpu": name}),
            spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(
                name="worker", image="qbackbone", command=["true"],
                resources=client.V1ResourceRequirements(
                    requests={qpu_resource(name): "1"}, limits={qpu_resource(name): "1"}))]))
        core.create_namespaced_pod(namespace, pod)
        wait_for(lambda: _status(custom, name).get("queueDepth") == 1, 30,
                 what=f"{name} queueDepth 1")
        assert core.read_namespaced_pod("frag-nowhere", namespace).status.phase == "Pending"
        core.delete_namespaced_pod("frag-nowhere", namespace, grace_period_seconds=0)
        wait_for(lambda: _status(custom, name).get("queueDepth") == 0, 30,
                 what=f"{name} queueDepth back to 0")
        assert _status(custom, name).get("utilisation", 0.0) == 0.0  # it never ran
    finally:
        custom.delete_cluster_custom_object(G, V, "qpunodes", name)


def test_jobs_queue_on_the_qpus_and_leave_utilisation(api: client.ApiClient, namespace: str,
                                                      fleet: tuple[str, ...]) -> None:
    """Four jobs at once (the aer model makes each look instant, so the joint plan admits all
    four at once, a fragment pod each over the two QPUs): one fragment runs per QPU at a
    time, so the others are counted in queueDepth; when all are done the queue is empty again
    and utilisation shows the time the fragments ran."""
    custom = client.CustomObjectsApi(api)
    for i in range(4):
        create(api, namespace, quantum_job(f"load-{i}", BELL, ["ZZ", "XX"], shots=2000,
                                           execution={"mode": "SingleQPU"}))
    deepest = dict.fromkeys(fleet, 0)

    def all_done() -> bool:
        for qpu in fleet:
            deepest[qpu] = max(deepest[qpu], _status(custom, qpu).get("queueDepth", 0))
        jobs = custom.list_namespaced_custom_object(G, V, namespace, "quantumjobs")["items"]
        return all((j.get("status") or {}).get("phase") in ("Succeeded", "Failed")
                   for j in jobs)

    wait_for(all_done, 180, interval=0.2, what="four jobs finished")
    for i in range(4):
        job = wait_job(api, namespace, f"load-{i}")
        assert job["status"]["phase"] == "Succeeded", condition(job, "Failed")
    assert max(deepest.values()) >= 2, deepest
    for qpu in fleet:
        wait_for(lambda q=qpu: _status(custom, q).get("queueDepth") == 0, 30,
                 what=f"{qpu} queue empty")
        share = _status(custom, qpu)["utilisation"]
        assert 0.0 < share <= 1.0, (qpu, share)


def test_a_cordoned_qpu_gets_no_new_fragments(api: client.ApiClient, namespace: str,
                                              fleet: tuple[str, ...]) -> None:
    custom = client.CustomObjectsApi(api)
    kept, cordoned = fleet
    _set_cordoned(custom, cordoned, True)
    try:
        ready = wait_for(partial(_ready, custom, cordoned), 30, what=f"{cordoned} observed")
        assert (ready["status"], ready["reason"]) == ("False", "Cordoned"), ready
        create(api, namespace, quantum_job("skip", BELL, ["ZZ"], shots=2000,
                                           execution={"mode": "SingleQPU"}))
        job = wait_job(api, namespace, "skip")
        assert job["status"]["phase"] == "Succeeded", condition(job, "Failed")
        used = set(job["status"]["result"]["qpus"])
        assert kept in used and cordoned not in used, used  # other sessions' QPUs may join
    finally:
        _set_cordoned(custom, cordoned, False)
    ready = wait_for(partial(_ready, custom, cordoned), 30, what=f"{cordoned} uncordoned")
    assert (ready["status"], ready["reason"]) == ("True", "Calibrated"), ready
