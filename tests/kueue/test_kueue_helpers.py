"""The operator's kueue helper (qbackbone.k8s.kueue) on plain dicts: pod-group metadata, the
Workload of a pod (kueue's naming), and the admission state read from gates and conditions."""

from __future__ import annotations

from typing import Any

import pytest

from qbackbone.k8s.kueue import (
    GROUP_LABEL,
    GROUP_TOTAL_ANNOTATION,
    QUEUE_LABEL,
    SCHEDULING_GATE,
    admission_state,
    is_gated,
    is_workload_of,
    owner_pod_uids,
    pod_group_metadata,
    single_pod_workload_name,
    workload_name,
)


def pod(labels: dict[str, str] | None = None, gated: bool = True, name: str = "frag-0",
        uid: str = "7d3c1a52-0000-4000-8000-000000000001", namespace: str = "team-a",
        annotations: dict[str, str] | None = None,
        owners: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": uid,
                         "labels": labels or {}, "annotations": annotations or {},
                         "ownerReferences": owners or []},
            "spec": {"schedulingGates": [{"name": SCHEDULING_GATE}] if gated else []}}


def workload(*conditions: tuple[str, str, str, str], name: str = "g", active: bool = True,
             namespace: str = "team-a", group: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace,
                         "annotations": {"kueue.x-k8s.io/is-group-workload": "true"}
                         if group else {}},
            "spec": {"active": active},
            "status": {"conditions": [{"type": t, "status": s, "reason": r, "message": m}
                                      for t, s, r, m in conditions]}}


GROUP = {QUEUE_LABEL: "lq", GROUP_LABEL: "g"}


def test_pod_group_metadata_is_kueues_labels_and_annotation() -> None:
    labels, annotations = pod_group_metadata("team-a", "job-7-plan-2", 3)
    assert labels == {QUEUE_LABEL: "team-a", GROUP_LABEL: "job-7-plan-2"}
    assert annotations == {GROUP_TOTAL_ANNOTATION: "3"}


@pytest.mark.parametrize(("queue", "group", "total"), [
    ("", "g", 1), ("q", "", 1), ("Team", "g", 1), ("q", "g_1", 1), ("q", "-g", 1),
    ("q", "g" * 64, 1), ("q", "g", 0), ("q", "g", True), ("q", "g", 2.0)])
def test_pod_group_metadata_refuses_what_kueue_would(queue: str, group: str,
                                                     total: Any) -> None:
    with pytest.raises(ValueError):
        pod_group_metadata(queue, group, total)


def test_workload_name_of_a_group_is_the_group_name() -> None:
    assert workload_name(pod(GROUP)) == "g"
    assert workload_name(pod({})) is None  # not queued: no Workload


def test_single_pod_workload_name_is_kueues_hash() -> None:
    # sha1("Pod\n\nfrag-0\n<uid>")[:5], as kueue's GetWorkloadNameForOwnerWithGVK computes it
    # (checked against a real kueue in test_kueue_cluster.py, which finds Workloads by it).
    import hashlib
    uid = "7d3c1a52-0000-4000-8000-000000000001"
    digest = hashlib.sha1(f"Pod\n\nfrag-0\n{uid}".encode()).hexdigest()[:5]
    assert single_pod_workload_name("frag-0", uid) == f"pod-frag-0-{digest}"
    assert workload_name(pod({QUEUE_LABEL: "lq"}, uid=uid)) == f"pod-frag-0-{digest}"
    long = single_pod_workload_name("p" * 300, uid)
    assert len(long) == 253 and long.startswith("pod-ppp")


def test_the_workload_of_a_pod() -> None:
    member = pod(GROUP)
    uid = member["metadata"]["uid"]
    owned = workload()
    owned["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "Pod", "name": "frag-0", "uid": uid},
        {"apiVersion": "v1", "kind": "Pod", "name": "frag-1", "uid": "other"}]
    assert owner_pod_uids(owned) == {uid, "other"}
    assert is_workload_of(owned, member)
    assert not is_workload_of(workload(), member)  # not among its owners
    elsewhere = workload(namespace="team-b")
    elsewhere["metadata"]["ownerReferences"] = owned["metadata"]["ownerReferences"]
    assert not is_workload_of(elsewhere, member)
    not_group = workload(group=False)
    not_group["metadata"]["ownerReferences"] = owned["metadata"]["ownerReferences"]
    assert not is_workload_of(not_group, member)
    single = pod({QUEUE_LABEL: "lq"})
    assert is_workload_of(not_group, single)
    assert not is_workload_of(workload(group=False), single)


def test_gates() -> None:
    assert is_gated(pod(GROUP))
    assert not is_gated(pod(GROUP, gated=False))
    assert not is_gated({"metadata": {}})


@pytest.mark.parametrize(("p", "wl", "admitted", "reason", "message"), [
    (pod({}, gated=False), None, True, "NotManaged", "names no kueue LocalQueue"),
    (pod(GROUP, annotations={GROUP_TOTAL_ANNOTATION: "2"}), None, False, "WorkloadPending",
     "pod group g (2 pods) has no Workload yet"),
    (pod({QUEUE_LABEL: "lq"}), None, False, "WorkloadPending", "not created"),
    (pod(GROUP), workload(), False, "Queued", "scheduler"),
    (pod(GROUP), workload(("QuotaReserved", "False", "Pending",
                           "couldn't assign flavors to pod set main: insufficient unused quota "
                           "for qpu.qbackbone.io/qpus in flavor qpu, 1 more needed")),
     False, "QueuedForQuota", "insufficient unused quota for qpu.qbackbone.io/qpus"),
    (pod(GROUP), workload(("QuotaReserved", "False", "Inadmissible",
                           "LocalQueue lq doesn't exist")),
     False, "Inadmissible", "LocalQueue lq doesn't exist"),
    (pod(GROUP), workload(("QuotaReserved", "True", "QuotaReserved", "Quota reserved in "
                           "ClusterQueue qpu"), ("Admitted", "False", "", "")),
     False, "QuotaReserved", "Quota reserved"),
    (pod(GROUP), workload(("QuotaReserved", "True", "QuotaReserved", ""),
                          ("Admitted", "True", "Admitted", "The workload is admitted")),
     True, "Admitted", "kueue is removing the admission gate"),
    (pod(GROUP, gated=False), workload(("Admitted", "True", "Admitted", "admitted")),
     True, "Admitted", "admitted"),
    (pod(GROUP, gated=False), None, True, "Admitted", "gate is removed"),
    (pod(GROUP), workload(("Admitted", "True", "Admitted", ""),
                          ("Evicted", "True", "Preempted", "preempted by team-b")),
     False, "Evicted", "preempted by team-b"),
    (pod(GROUP, gated=False), workload(("Admitted", "True", "Admitted", ""),
                                       ("Finished", "True", "Succeeded", "done")),
     False, "Finished", "done"),
    (pod(GROUP), workload(("QuotaReserved", "False", "Pending", "x"), active=False),
     False, "Deactivated", "deactivated"),
])
def test_admission_state(p: dict[str, Any], wl: dict[str, Any] | None, admitted: bool,
                         reason: str, message: str) -> None:
    state = admission_state(p, wl)
    assert (state.admitted, state.reason) == (admitted, reason), state
    assert message in state.message, state
