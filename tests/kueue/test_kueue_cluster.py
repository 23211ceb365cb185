"""kueue (built from source, a host process) against the dev control plane, with the QPU node
agent's nodes standing in for kubelets (docs/kueue.md):

(a) a pod group of 2 pods queued in a LocalQueue is gated by kueue's webhook, waits without a
    Workload while one pod is missing, then becomes one Workload (named after the group, owned
    by both pods) that is admitted as one; both pods are ungated and run.
(b) DRA charging, with the chart's kueue objects (kueue.enabled): pods whose
    ResourceClaimTemplate asks for a device of DeviceClass qpu.qbackbone.io are charged one
    qpu.qbackbone.io/qpus each; with a ClusterQueue quota of 1 QPU, team A's pod is admitted
    and team B's (other namespace, other LocalQueue, same ClusterQueue) waits with
    QuotaReserved=False and kueue's message although a second device is free, until A's pod
    finishes; then B is admitted, its claim allocated, and it runs.
(c) a burst of pod groups from two teams (2 QPUs each, quota 2) is admitted one group at a
    time in the order the groups were created, across the teams (StrictFIFO).
(d) a claim template with a CEL selector is Inadmissible in kueue 0.17 (its DRA support counts
    devices per class only): a limit the operator must plan around (docs/kueue.md).

Admission latency (pod created -> kueue's gate removed) is measured and printed.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from qbackbone.dev.kueue_manifests import QPU_DEVICE_CLASS, QPU_QUOTA_RESOURCE
from qbackbone.dev.waiting import wait_for
from qbackbone.k8s.kueue import (
    GROUP_LABEL,
    SCHEDULING_GATE,
    WORKLOAD_PLURAL,
    admission_state,
    is_gated,
    is_workload_of,
    owner_pod_uids,
    pod_group_metadata,
    single_pod_workload_name,
    workload_name,
)
from tests.chart.helm import render
from tests.kueue.conftest import PINNED_CLASS, KueueCluster, delete_quietly

pytestmark = pytest.mark.cluster

KG, KV = "kueue.x-k8s.io", "v1beta2"
R, RV = "resource.k8s.io", "v1"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def as_dict(value: object) -> dict[str, Any]:
    assert isinstance(value, dict), value
    return value


def kueue_objects(kc: KueueCluster, flavor: str, cq: str, covered: dict[str, Any],
                  teams: dict[str, str]) -> None:
    """A ResourceFlavor, a StrictFIFO ClusterQueue with ``covered`` nominal quotas for the
    ``teams`` namespaces, and a LocalQueue per team (namespace -> queue name), as the chart
    renders them."""
    custom = kc.custom
    custom.create_cluster_custom_object(KG, KV, "resourceflavors", {
        "apiVersion": f"{KG}/{KV}", "kind": "ResourceFlavor", "metadata": {"name": flavor}})
    custom.create_cluster_custom_object(KG, KV, "clusterqueues", {
        "apiVersion": f"{KG}/{KV}", "kind": "ClusterQueue", "metadata": {"name": cq},
        "spec": {"queueingStrategy": "StrictFIFO",
                 "namespaceSelector": {"matchExpressions": [{
                     "key": "kubernetes.io/metadata.name", "operator": "In",
                     "values": sorted(teams)}]},
                 "resourceGroups": [{"coveredResources": sorted(covered), "flavors": [{
                     "name": flavor, "resources": [
                         {"name": k, "nominalQuota": v} for k, v in sorted(covered.items())]}]}]}})
    for namespace, queue in teams.items():
        custom.create_namespaced_custom_object(KG, KV, namespace, "localqueues", {
            "apiVersion": f"{KG}/{KV}", "kind": "LocalQueue",
            "metadata": {"name": queue, "namespace": namespace},
            "spec": {"clusterQueue": cq}})
    wait_for(lambda: cluster_queue_active(kc, cq), 30, what=f"ClusterQueue {cq} Active")


def chart_kueue_objects(kc: KueueCluster, k8s_bin_dir: Path, cq: str, qpus: int,
                        teams: dict[str, str]) -> None:
    """The chart's kueue objects (``kueue.enabled``, charts/qbackbone/templates/kueue.yaml)
    rendered with helm and applied: its ResourceFlavor, ClusterQueue ``cq`` with ``qpus`` QPUs
    and a LocalQueue per team (namespace -> queue)."""
    settings = ["kueue.enabled=true", f"kueue.clusterQueue.name={cq}",
                f"kueue.resourceFlavor={cq}", f"kueue.clusterQueue.qpus={qpus}"]
    for i, (namespace, queue) in enumerate(sorted(teams.items())):
        settings += [f"kueue.teams[{i}].namespace={namespace}",
                     f"kueue.teams[{i}].localQueue={queue}"]
    rendered = render(k8s_bin_dir, "--show-only", "templates/kueue.yaml",
                      *(a for s in settings for a in ("--set", s)))
    applied = subprocess.run([str(Path(kc.info.bin_dir) / "kubectl"),
                              f"--kubeconfig={kc.info.kubeconfig}", "apply", "-f", "-"],
                             input=rendered, capture_output=True, text=True, timeout=60,
                             check=False)
    assert applied.returncode == 0, applied.stderr
    wait_for(lambda: cluster_queue_active(kc, cq), 30, what=f"ClusterQueue {cq} Active")


def cluster_queue_active(kc: KueueCluster, cq: str) -> bool:
    got = as_dict(kc.custom.get_cluster_custom_object(KG, KV, "clusterqueues", cq))
    conds = (got.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Active" and c["status"] == "True" for c in conds)


def pod_body(name: str, script: str, labels: dict[str, str],
             annotations: dict[str, str] | None = None, claim_template: str | None = None,
             cpu: str = "100m") -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "none",
                                 "command": ["/bin/sh", "-c", script],
                                 "resources": {"requests": {"cpu": cpu}}}
    spec: dict[str, Any] = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                            "containers": [container]}
    if claim_template:
        spec["resourceClaims"] = [{"name": "qpu", "resourceClaimTemplateName": claim_template}]
        container["resources"]["claims"] = [{"name": "qpu"}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels, "annotations": annotations or {}},
            "spec": spec}


def read_pod(kc: KueueCluster, namespace: str, name: str) -> dict[str, Any]:
    pod = kc.core.read_namespaced_pod(name, namespace)
    return as_dict(kc.api.sanitize_for_serialization(pod))


def read_workload(kc: KueueCluster, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        return as_dict(kc.custom.get_namespaced_custom_object(KG, KV, namespace,
                                                              WORKLOAD_PLURAL, name))
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def workloads(kc: KueueCluster, namespace: str) -> list[dict[str, Any]]:
    return list(as_dict(kc.custom.list_namespaced_custom_object(
        KG, KV, namespace, WORKLOAD_PLURAL))["items"])


def wait_ungated(kc: KueueCluster, namespace: str, name: str, timeout: float = 60) -> float:
    """Wait until kueue removed its gate from the pod; return the monotonic time seen."""
    def ungated() -> float | None:
        return None if is_gated(read_pod(kc, namespace, name)) else time.monotonic()

    return wait_for(ungated, timeout, interval=0.05, what=f"pod {namespace}/{name} ungated")


def wait_phase(kc: KueueCluster, namespace: str, name: str, phases: set[str],
               timeout: float = 60) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        pod = read_pod(kc, namespace, name)
        return pod if (pod.get("status") or {}).get("phase") in phases else None

    return wait_for(reached, timeout, interval=0.1,
                    what=f"pod {namespace}/{name} in {sorted(phases)}")


def bound(kc: KueueCluster, namespace: str, name: str) -> str | None:
    """The node the pod is bound to, or None."""
    return read_pod(kc, namespace, name)["spec"].get("nodeName")


def stays(predicate: Callable[[], bool], seconds: float) -> bool:
    """Whether ``predicate`` holds at every look for ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            return False
        time.sleep(0.2)
    return True


def test_pod_group_is_one_workload_admitted_as_one(kueue_cluster: KueueCluster) -> None:
    kc = kueue_cluster
    ns = kc.namespace("team-g")
    kueue_objects(kc, "group-flavor", "group-cq", {"cpu": "2"}, {ns: "lq"})
    labels, annotations = pod_group_metadata("lq", "frag-group", 2)

    t_first = time.monotonic()
    kc.core.create_namespaced_pod(ns, pod_body(  # type: ignore[arg-type]
        "frag-0", "sleep 1", labels, annotations))
    first = read_pod(kc, ns, "frag-0")
    assert is_gated(first), first["spec"]  # the webhook gated it at creation
    assert workload_name(first) == "frag-group"
    # One pod of two: no Workload yet, the pod stays gated.
    assert stays(lambda: is_gated(read_pod(kc, ns, "frag-0")) and not workloads(kc, ns), 3)
    state = admission_state(read_pod(kc, ns, "frag-0"), None)
    assert (state.admitted, state.reason) == (False, "WorkloadPending"), state

    t_last = time.monotonic()
    kc.core.create_namespaced_pod(ns, pod_body(  # type: ignore[arg-type]
        "frag-1", "sleep 1", labels, annotations))
    t_ungated = [wait_ungated(kc, ns, p) for p in ("frag-0", "frag-1")]

    found = workloads(kc, ns)
    assert [w["metadata"]["name"] for w in found] == ["frag-group"]  # one Workload, the group's
    wl = found[0]
    assert wl["metadata"]["annotations"]["kueue.x-k8s.io/is-group-workload"] == "true"
    assert sum(ps["count"] for ps in wl["spec"]["podSets"]) == 2
    assert wl["spec"]["queueName"] == "lq"
    admission = wl["status"]["admission"]
    assert admission["clusterQueue"] == "group-cq"
    usage = [a["resourceUsage"] for a in admission["podSetAssignments"]]
    assert sum(int(u["cpu"].rstrip("m")) for u in usage) == 200  # charged as one: 2 x 100m
    pods = [read_pod(kc, ns, name) for name in ("frag-0", "frag-1")]
    assert owner_pod_uids(wl) == {p["metadata"]["uid"] for p in pods}  # both pods own it
    for pod in pods:
        assert is_workload_of(wl, pod)
        state = admission_state(pod, wl)
        assert (state.admitted, state.reason) == (True, "Admitted"), state
        assert SCHEDULING_GATE not in [g["name"] for g in pod["spec"].get("schedulingGates")
                                       or []]
        assert pod["metadata"]["labels"][GROUP_LABEL] == "frag-group"
    for name in ("frag-0", "frag-1"):
        done = wait_phase(kc, ns, name, {"Succeeded", "Failed"})
        assert done["status"]["phase"] == "Succeeded", done["status"]
        assert done["spec"]["nodeName"] in kc.nodes
    print(f"\nkueue admission latency, pod group of 2: last pod created -> both ungated "
          f"{max(t_ungated) - t_last:.3f}s (first pod created -> ungated "
          f"{t_ungated[0] - t_first:.3f}s, including the wait for its sibling)")


def dra_objects(kc: KueueCluster, node: str, devices: int) -> None:
    """The DeviceClass qpu.qbackbone.io (as the DRA driver creates it) and one ResourceSlice of
    ``devices`` QPUs on ``node`` (as the driver publishes a hosted pool)."""
    delete_quietly(kc.custom.delete_cluster_custom_object, R, RV, "deviceclasses",
                   QPU_DEVICE_CLASS)
    kc.custom.create_cluster_custom_object(R, RV, "deviceclasses", {
        "apiVersion": f"{R}/{RV}", "kind": "DeviceClass",
        "metadata": {"name": QPU_DEVICE_CLASS},
        "spec": {"selectors": [{"cel": {
            "expression": f'device.driver == "{QPU_DEVICE_CLASS}"'}}]}})
    delete_quietly(kc.custom.delete_cluster_custom_object, R, RV, "resourceslices",
                   f"kueue-test-{node}")
    kc.custom.create_cluster_custom_object(R, RV, "resourceslices", {
        "apiVersion": f"{R}/{RV}", "kind": "ResourceSlice",
        "metadata": {"name": f"kueue-test-{node}"},
        "spec": {"driver": QPU_DEVICE_CLASS, "nodeName": node,
                 "pool": {"name": node, "generation": 1, "resourceSliceCount": 1},
                 "devices": [{"name": f"qpu-{i}", "attributes": {
                     "qpu": {"string": f"qpu-{i}"}, "qubits": {"int": 27}}}
                     for i in range(devices)]}})


def claim_template(kc: KueueCluster, namespace: str, name: str,
                   selector: str | None = None) -> None:
    exactly: dict[str, Any] = {"deviceClassName": QPU_DEVICE_CLASS}
    if selector:
        exactly["selectors"] = [{"cel": {"expression": selector}}]
    kc.custom.create_namespaced_custom_object(R, RV, namespace, "resourceclaimtemplates", {
        "apiVersion": f"{R}/{RV}", "kind": "ResourceClaimTemplate",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"spec": {"devices": {"requests": [{"name": "qpu", "exactly": exactly}]}}}})


def single_workload(kc: KueueCluster, namespace: str, pod: str) -> dict[str, Any] | None:
    """The Workload kueue made for a single pod, found by the name the helper computes."""
    body = read_pod(kc, namespace, pod)
    return read_workload(kc, namespace,
                         single_pod_workload_name(pod, body["metadata"]["uid"]))


def test_qpu_quota_second_team_waits_for_the_first(kueue_cluster: KueueCluster,
                                                   k8s_bin_dir: Path) -> None:
    kc = kueue_cluster
    node = kc.nodes[0]
    dra_objects(kc, node, devices=2)  # two QPUs exist: only the quota of 1 holds B back
    team_a, team_b = kc.namespace("team-a"), kc.namespace("team-b")
    # The chart's objects: ClusterQueue qpu-cq, 1 QPU, StrictFIFO, a LocalQueue per team.
    chart_kueue_objects(kc, k8s_bin_dir, "qpu-cq", 1, {team_a: "team-a", team_b: "team-b"})
    for ns in (team_a, team_b):
        claim_template(kc, ns, "qpu")
    release = Path(tempfile.mkdtemp(prefix="kueue-test-")) / "release-a"

    # Team A: admitted, charged one QPU, its claim allocated one device, running.
    t_a = time.monotonic()
    kc.core.create_namespaced_pod(team_a, pod_body(  # type: ignore[arg-type]
        "frag-a", f"while [ ! -e {release} ]; do sleep 0.1; done",
        {QUEUE_LABEL: "team-a"}, claim_template="qpu"))
    assert is_gated(read_pod(kc, team_a, "frag-a"))
    a_ungated = wait_ungated(kc, team_a, "frag-a")
    wl_a = wait_for(lambda: single_workload(kc, team_a, "frag-a"), 10,
                    what="team A's Workload at the helper's name")
    assert is_workload_of(wl_a, read_pod(kc, team_a, "frag-a"))
    usage = wl_a["status"]["admission"]["podSetAssignments"][0]["resourceUsage"]
    assert usage[QPU_QUOTA_RESOURCE] == "1", usage
    assert admission_state(read_pod(kc, team_a, "frag-a"), wl_a).reason == "Admitted"
    running = wait_phase(kc, team_a, "frag-a", {"Running"})
    claim_a = running["status"]["resourceClaimStatuses"][0]["resourceClaimName"]

    def allocated(ns: str, claim: str) -> Any:
        got = as_dict(kc.custom.get_namespaced_custom_object(R, RV, ns, "resourceclaims",
                                                             claim))
        return (got.get("status") or {}).get("allocation")

    alloc_a = wait_for(lambda: allocated(team_a, claim_a), 30, what="A's claim allocated")
    assert alloc_a["devices"]["results"][0]["driver"] == QPU_DEVICE_CLASS

    # Team B: same ClusterQueue, quota used up: waits in kueue with kueue's message, gated.
    t_b = time.monotonic()
    kc.core.create_namespaced_pod(team_b, pod_body(  # type: ignore[arg-type]
        "frag-b", "sleep 0.5", {QUEUE_LABEL: "team-b"}, claim_template="qpu"))

    def pending() -> dict[str, Any] | None:
        wl = single_workload(kc, team_b, "frag-b")
        conds = {c["type"]: c for c in ((wl or {}).get("status") or {}).get("conditions", [])}
        reserved = conds.get("QuotaReserved")
        return wl if reserved and reserved["status"] == "False" else None

    wl_b = wait_for(pending, 30, what="team B's Workload QuotaReserved=False")
    reserved = next(c for c in wl_b["status"]["conditions"] if c["type"] == "QuotaReserved")
    assert reserved["reason"] == "Pending", reserved
    assert QPU_QUOTA_RESOURCE in reserved["message"], reserved
    state = admission_state(read_pod(kc, team_b, "frag-b"), wl_b)
    assert (state.admitted, state.reason) == (False, "QueuedForQuota"), state
    assert QPU_QUOTA_RESOURCE in state.message
    print(f"\nteam B waits: QuotaReserved=False reason={reserved['reason']} "
          f"message={reserved['message']!r}")
    assert stays(lambda: is_gated(read_pod(kc, team_b, "frag-b")), 3)
    assert read_pod(kc, team_b, "frag-b")["spec"].get("nodeName") is None

    # A finishes: its quota is released and B is admitted, ungated, scheduled, allocated.
    release.touch()
    done = wait_phase(kc, team_a, "frag-a", {"Succeeded", "Failed"})
    assert done["status"]["phase"] == "Succeeded", done["status"]
    t_a_done = time.monotonic()
    b_ungated = wait_ungated(kc, team_b, "frag-b", timeout=60)
    wl_b_now = single_workload(kc, team_b, "frag-b")
    assert wl_b_now is not None
    assert admission_state(read_pod(kc, team_b, "frag-b"), wl_b_now).admitted
    assert wl_b_now["status"]["admission"]["podSetAssignments"][0]["resourceUsage"][
        QPU_QUOTA_RESOURCE] == "1"
    finished = wait_phase(kc, team_b, "frag-b", {"Succeeded", "Failed"})
    assert finished["status"]["phase"] == "Succeeded", finished["status"]
    # Bound to the slice's node: kube-scheduler allocated B's claim a device there.
    assert finished["spec"]["nodeName"] == node
    assert finished["status"]["resourceClaimStatuses"][0]["resourceClaimName"]
    print(f"kueue admission latency with DRA quota: team A created -> ungated "
          f"{a_ungated - t_a:.3f}s; team B created -> ungated {b_ungated - t_b:.3f}s, of "
          f"which A Succeeded (seen) -> B ungated {b_ungated - t_a_done:.3f}s")


def test_cel_selector_claims_are_inadmissible(kueue_cluster: KueueCluster) -> None:
    kc = kueue_cluster
    ns = kc.namespace("team-c")
    kueue_objects(kc, "cel-flavor", "cel-cq", {QPU_QUOTA_RESOURCE: 4, "cpu": "4"},
                  {ns: "team-c"})
    claim_template(kc, ns, "pinned",
                   selector='device.attributes["qpu.qbackbone.io"].qpu == "qpu-0"')
    kc.core.create_namespaced_pod(ns, pod_body(  # type: ignore[arg-type]
        "frag-pinned", "sleep 0.5", {QUEUE_LABEL: "team-c"}, claim_template="pinned"))

    def inadmissible() -> dict[str, Any] | None:
        wl = single_workload(kc, ns, "frag-pinned")
        state = admission_state(read_pod(kc, ns, "frag-pinned"), wl)
        return wl if state.reason == "Inadmissible" else None

    wl = wait_for(inadmissible, 30, what="the CEL-selector pod's Workload Inadmissible")
    state = admission_state(read_pod(kc, ns, "frag-pinned"), wl)
    assert not state.admitted
    assert "CEL selectors are not supported" in state.message, state
    assert is_gated(read_pod(kc, ns, "frag-pinned"))


def test_a_burst_from_two_teams_is_admitted_in_creation_order(kueue_cluster: KueueCluster,
                                                              k8s_bin_dir: Path) -> None:
    kc = kueue_cluster
    node = kc.nodes[0]
    dra_objects(kc, node, devices=2)
    team_a, team_b = kc.namespace("burst-a"), kc.namespace("burst-b")
    chart_kueue_objects(kc, k8s_bin_dir, "burst-cq", 2, {team_a: "team-a", team_b: "team-b"})
    for ns in (team_a, team_b):
        claim_template(kc, ns, "qpu")
    # A blocker (team B, a group holding both QPUs) runs until released, so the burst queues
    # up behind it and kueue has to choose among all four groups at each release.
    release = Path(tempfile.mkdtemp(prefix="kueue-burst-")) / "release"
    labels, annotations = pod_group_metadata("team-b", "blocker", 2)
    for k in range(2):
        kc.core.create_namespaced_pod(team_b, pod_body(  # type: ignore[arg-type]
            f"blocker-{k}", f"while [ ! -e {release} ]; do sleep 0.1; done", labels,
            annotations, claim_template="qpu"))
    for k in range(2):
        wait_ungated(kc, team_b, f"blocker-{k}")
    # Groups of 2 pods, one QPU each: a group takes the whole quota. Created 1.1 s apart:
    # kueue orders a queue by priority, then the Workload's creationTimestamp (1 s resolution),
    # then its uid, so groups created within one second have no defined order.
    order = [(team_a if i % 2 == 0 else team_b, f"g{i}") for i in range(4)]
    created: dict[str, float] = {}
    for ns, group in order:
        labels, annotations = pod_group_metadata(
            "team-a" if ns == team_a else "team-b", group, 2)
        created[group] = time.monotonic()
        for k in range(2):
            kc.core.create_namespaced_pod(ns, pod_body(  # type: ignore[arg-type]
                f"{group}-{k}", "sleep 2", labels, annotations, claim_template="qpu"))
        time.sleep(1.1)
    for ns, group in order:  # all four wait for quota behind the blocker
        wl = wait_for(partial(read_workload, kc, ns, group), 10, what=f"Workload {group}")
        state = admission_state(read_pod(kc, ns, f"{group}-0"), wl)
        assert not state.admitted and is_gated(read_pod(kc, ns, f"{group}-1")), state
    release.touch()
    released = time.monotonic()

    ungated: dict[str, float] = {}

    def all_ungated() -> bool:
        for ns, group in order:
            if group not in ungated and not any(
                    is_gated(read_pod(kc, ns, f"{group}-{k}")) for k in range(2)):
                ungated[group] = time.monotonic()
        return len(ungated) == len(order)

    wait_for(all_ungated, 120, interval=0.05, what="every group admitted")
    admitted = sorted(ungated, key=lambda g: ungated[g])
    assert admitted == [g for _, g in order], ungated
    for ns, group in order:
        for k in range(2):
            done = wait_phase(kc, ns, f"{group}-{k}", {"Succeeded", "Failed"})
            assert done["status"]["phase"] == "Succeeded", done["status"]
    steps = ", ".join(f"{g} ({'A' if ns == team_a else 'B'}) +{ungated[g] - released:.2f}s"
                      for ns, g in order)
    print(f"\nburst of 4 groups from 2 teams behind a blocker, quota 2 QPUs, 2 s each: "
          f"admitted in creation order; blocker released -> ungated: {steps}")


def test_admission_latency_of_single_qpu_pods(kueue_cluster: KueueCluster,
                                              k8s_bin_dir: Path) -> None:
    """10 pods, one after another, each asking one QPU through its claim template with quota
    free: pod created -> kueue's gate removed, and -> bound by kube-scheduler."""
    kc = kueue_cluster
    dra_objects(kc, kc.nodes[0], devices=2)
    ns = kc.namespace("latency")
    chart_kueue_objects(kc, k8s_bin_dir, "latency-cq", 2, {ns: "team"})
    claim_template(kc, ns, "qpu")
    admit, bind = [], []
    for i in range(10):
        t0 = time.monotonic()
        kc.core.create_namespaced_pod(ns, pod_body(  # type: ignore[arg-type]
            f"p{i}", "exit 0", {QUEUE_LABEL: "team"}, claim_template="qpu"))
        admit.append(wait_ungated(kc, ns, f"p{i}", timeout=30) - t0)
        wait_for(partial(bound, kc, ns, f"p{i}"), 30, interval=0.05, what=f"p{i} bound")
        bind.append(time.monotonic() - t0)
        wait_phase(kc, ns, f"p{i}", {"Succeeded"})
    admit.sort()
    bind.sort()
    print(f"\nadmission latency over 10 single-QPU pods (created -> ungated): median "
          f"{admit[4]:.3f}s, min {admit[0]:.3f}s, max {admit[-1]:.3f}s; created -> bound "
          f"(claim allocated): median {bind[4]:.3f}s, max {bind[-1]:.3f}s")


def test_a_per_qpu_device_class_pins_the_qpu_and_is_charged(kueue_cluster: KueueCluster,
                                                            k8s_bin_dir: Path) -> None:
    """The way to pin a QPU under kueue 0.17 (CEL selectors in a claim are Inadmissible): a
    DeviceClass per QPU whose own selector names the device, listed in kueue's
    deviceClassMappings beside qpu.qbackbone.io. The claim is charged one QPU and
    kube-scheduler allocates exactly that device."""
    kc = kueue_cluster
    node = kc.nodes[0]
    dra_objects(kc, node, devices=2)
    delete_quietly(kc.custom.delete_cluster_custom_object, R, RV, "deviceclasses",
                   PINNED_CLASS)
    kc.custom.create_cluster_custom_object(R, RV, "deviceclasses", {
        "apiVersion": f"{R}/{RV}", "kind": "DeviceClass", "metadata": {"name": PINNED_CLASS},
        "spec": {"selectors": [{"cel": {"expression":
            f'device.driver == "{QPU_DEVICE_CLASS}" && '
            f'device.attributes["{QPU_DEVICE_CLASS}"].qpu == "qpu-1"'}}]}})
    ns = kc.namespace("pinned")
    chart_kueue_objects(kc, k8s_bin_dir, "pinned-cq", 1, {ns: "team"})
    kc.custom.create_namespaced_custom_object(R, RV, ns, "resourceclaimtemplates", {
        "apiVersion": f"{R}/{RV}", "kind": "ResourceClaimTemplate",
        "metadata": {"name": "qpu-1", "namespace": ns},
        "spec": {"spec": {"devices": {"requests": [{"name": "qpu", "exactly": {
            "deviceClassName": PINNED_CLASS}}]}}}})
    kc.core.create_namespaced_pod(ns, pod_body(  # type: ignore[arg-type]
        "pinned", "sleep 30", {QUEUE_LABEL: "team"}, claim_template="qpu-1"))
    wait_ungated(kc, ns, "pinned")
    wl = single_workload(kc, ns, "pinned")
    assert wl is not None
    usage = wl["status"]["admission"]["podSetAssignments"][0]["resourceUsage"]
    assert usage[QPU_QUOTA_RESOURCE] == "1", usage
    running = wait_phase(kc, ns, "pinned", {"Running"})
    claim = running["status"]["resourceClaimStatuses"][0]["resourceClaimName"]
    got = as_dict(kc.custom.get_namespaced_custom_object(R, RV, ns, "resourceclaims", claim))
    results = got["status"]["allocation"]["devices"]["results"]
    assert [(r["driver"], r["pool"], r["device"]) for r in results] == [
        (QPU_DEVICE_CLASS, node, "qpu-1")]
    kc.core.delete_namespaced_pod("pinned", ns, grace_period_seconds=0)
