"""QPUs as DRA devices with kueue quotas, installed for real (issue 18): `helm install` with
values-dev.yaml plus `draDriver.enabled`, `operator.qpuRequest=resourceClaim` and
`kueue.enabled` on a control plane whose node is real (kubelet, containerd, runc), kueue built
from source running beside it. The publisher and the kubelet plugin run as the chart's pods;
fragment pods claim their QPU through the QPU's DeviceClass; kube-scheduler allocates it and
the kubelet plugin prepares it (CDI).

- ResourceSlices list every QPUNode with its calibration attributes.
- A job whose CEL selector admits one QPU runs there (its claim's device) and verifies.
- Two teams share one ClusterQueue with a quota of one QPU (values-dev-dra-kueue.yaml, then
  `qbackbone dev cluster kueue-sync` so kueue counts the QPUs' classes): the second team's job
  waits in kueue, visibly in its QueueAdmitted condition, until the first team's job ends.
- A QPU removed while its fragment waits (its device leaves the slice): the work moves to
  another eligible QPU and verifies, or the job fails with the reason.

Skips (a failure under QB_REQUIRE_REAL_NODE=1) only when this host cannot run a real node or
kueue is not built (hack/build-kueue.sh).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from qbackbone.dev import ClusterInfo
from qbackbone.dev.cli import _kueue_sync
from qbackbone.dev.kueue import KueueMissing, find_kueue, start_kueue, stop_kueue
from qbackbone.dev.realnode import QPU_HOST_LABEL, RealNode, start_real_node
from qbackbone.dev.waiting import wait_for
from qbackbone.dra.attributes import DRIVER
from qbackbone.dra.classes import qpu_class_name
from qbackbone.k8s.names import claim_template_name
from tests.chart.helm import CHART
from tests.operator.kit import condition, qpunode, quantum_job
from tests.operator.realnode_kit import cannot, k8s_binaries, real_control_plane
from tests.operator.test_real_install import (
    BELL4,
    BELL4_OBSERVABLES,
    check_verified,
    helm,
    kubectl,
)

pytestmark = pytest.mark.slow

RELEASE, NS = "qbackbone", "qbackbone-system"
NODE = "qb-dra-node"
TEAMS = ("team-a", "team-b")
G, V, R = "qbackbone.io", "v1alpha1", "resource.k8s.io"
QPUS = ("dev-ideal-a", "dev-ideal-b", "dev-noisy")  # values-dev.yaml
A = f'device.attributes["{DRIVER}"]'


@pytest.fixture(scope="module")
def image_archive() -> Path:
    from qbackbone.dev.image import build, plan
    from qbackbone.dev.realnode import real_node_unavailable

    reason = real_node_unavailable()
    if reason is not None:
        cannot(f"no real node on this host: {reason}")
    try:
        find_kueue()
    except KueueMissing as exc:
        cannot(f"kueue is not built: {exc} (hack/build-kueue.sh)")
    record = build(plan())
    return Path(record["archive"])


@pytest.fixture(scope="module")
def stack(image_archive: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[ClusterInfo]:
    """Control plane + real node + image + kueue + the chart with DRA and kueue on."""
    stale = set(Path("/var/run/cdi").glob(f"{DRIVER}-*.json"))  # not this test's to judge
    with real_control_plane(tmp_path_factory.mktemp("dra-kueue")) as info:
        node: RealNode | None = None
        kueue = None
        try:
            node = start_real_node(info, name=NODE, tied=True, timeout=90,
                                   labels={QPU_HOST_LABEL: "true"})
            node.import_image(image_archive)
            for team in TEAMS:
                kubectl(info, "create", "namespace", team)
            kueue = start_kueue(info, exclude_namespaces=(NS,), tied=True)
            # As docs/kueue.md tells a user: values-dev.yaml + values-dev-dra-kueue.yaml.
            helm(info, k8s_binaries(), "install", RELEASE, str(CHART), "--namespace", NS,
                 "--create-namespace", "-f", str(CHART / "values-dev.yaml"),
                 "-f", str(CHART / "values-dev-dra-kueue.yaml"),
                 "--set", f"draDriver.kubeletPlugin.kubeletRoot={node.layout.kubelet_root}",
                 "--wait", "--timeout", "5m")
            # Then kueue counts the QPUs' own classes, once published (docs/kueue.md).
            api = config.new_client_from_config(config_file=info.kubeconfig)
            try:
                wait_for(lambda: {qpu_class_name(q) for q in QPUS} <= class_names(api), 180,
                         what="a DeviceClass per QPU")
            finally:
                api.close()
            assert _kueue_sync(info) == 0
            yield info
            # Jobs (and so their pods) deleted while the node runs: the kubelet plugin
            # unprepares every claim, leaving no CDI spec behind on the host.
            for namespace in ("default", *TEAMS):
                kubectl(info, "delete", "quantumjobs", "--all", "-n", namespace, "--wait")
            core = client.CoreV1Api(config.new_client_from_config(config_file=info.kubeconfig))
            wait_for(lambda: not any(core.list_namespaced_pod(n).items
                                     for n in ("default", *TEAMS)), 120,
                     what="the jobs' pods gone")
            wait_for(lambda: not set(Path("/var/run/cdi").glob(f"{DRIVER}-*.json")) - stale,
                     60, what="every CDI spec of this test's claims removed")
        finally:
            if kueue is not None:
                stop_kueue(info)  # the one kueue-sync started
            if node is not None:
                node.stop()


@pytest.fixture(scope="module")
def api(stack: ClusterInfo) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=stack.kubeconfig)
    yield api_client
    api_client.close()


def apply(info: ClusterInfo, namespace: str, *objects: dict[str, Any]) -> None:
    kubectl(info, "apply", "-n", namespace, "-f", "-",
            stdin=yaml.safe_dump_all(objects, sort_keys=False))


def job(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        G, V, namespace, "quantumjobs", name)
    return found


def finished(api: client.ApiClient, namespace: str, name: str,
             timeout: float = 300) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found = job(api, namespace, name)
        return found if (found.get("status") or {}).get("phase") in (
            "Succeeded", "Failed") else None

    result: dict[str, Any] = wait_for(done, timeout, interval=0.5,
                                      what=f"QuantumJob {namespace}/{name} finished")
    return result


def pods_of(api: client.ApiClient, namespace: str, name: str) -> list[Any]:
    return list(client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"qbackbone.io/job={name}").items)


def class_names(api: client.ApiClient) -> set[str]:
    found = client.CustomObjectsApi(api).list_cluster_custom_object(R, "v1", "deviceclasses")
    return {c["metadata"]["name"] for c in found["items"]}


def containers_on_the_real_node(pods: list[Any]) -> None:
    assert pods
    for pod in pods:
        assert pod.spec.node_name == NODE, pod.metadata.name
        for status in pod.status.container_statuses or []:
            assert status.container_id.startswith("containerd://"), status


def devices(api: client.ApiClient) -> dict[str, dict[str, Any]]:
    """QPU name -> its published device (every slice of the driver)."""
    found = client.CustomObjectsApi(api).list_cluster_custom_object(
        R, "v1", "resourceslices", field_selector=f"spec.driver={DRIVER}")
    return {d["attributes"]["qpu"]["string"]: d for s in found["items"]
            for d in s["spec"].get("devices") or []}


def queued(name: str, namespace: str, team: str) -> dict[str, Any]:
    body = quantum_job(name, BELL4, BELL4_OBSERVABLES, shots=2000,
                       execution={"mode": "SingleQPU",
                                  "qpuSelector": {"cel": f"{A}.ideal"}})
    body["metadata"]["labels"] = {"kueue.x-k8s.io/queue-name": team}
    body["metadata"]["namespace"] = namespace
    return body


def when(cond: dict[str, Any] | None) -> float:
    assert cond is not None
    return datetime.fromisoformat(cond["lastTransitionTime"].replace("Z", "+00:00")).timestamp()


def test_slices_list_every_qpunode_with_its_calibration(stack: ClusterInfo,
                                                        api: client.ApiClient) -> None:
    found = wait_for(lambda: (d := devices(api)) and set(QPUS) <= set(d) and d, 120,
                     what="every QPUNode published")
    noisy = found["dev-noisy"]["attributes"]
    assert noisy["ideal"] == {"bool": False} and noisy["backend"] == {"string": "fake_manila"}
    assert noisy["qubits"] == {"int": 5} and noisy["technology"]["string"] == "superconducting"
    assert 0 < noisy["error2qPpm"]["int"] < 1_000_000 and noisy["t1Us"]["int"] > 1
    assert noisy["calibratedAt"]["int"] > 0
    assert found["dev-ideal-a"]["attributes"]["ideal"] == {"bool": True}
    assert {DRIVER, *(qpu_class_name(q) for q in QPUS)} <= class_names(api)


def test_a_selector_that_admits_one_qpu_runs_there_through_its_claim(
        stack: ClusterInfo, api: client.ApiClient) -> None:
    body = quantum_job("noisy-only", BELL4, BELL4_OBSERVABLES, shots=4000,
                       execution={"qpuSelector": {"cel": f"!{A}.ideal && {A}.qubits >= 4"}})
    t0 = time.monotonic()
    apply(stack, "default", body)
    found = finished(api, "default", "noisy-only")
    check_verified(found, BELL4, BELL4_OBSERVABLES)
    assert found["status"]["decision"]["eligibleQpus"] == ["dev-noisy"]
    assert found["status"]["result"]["qpus"] == ["dev-noisy"]
    pods = pods_of(api, "default", "noisy-only")
    containers_on_the_real_node(pods)
    for pod in pods:
        (claim,) = pod.spec.resource_claims
        assert claim.resource_claim_template_name == claim_template_name("noisy-only",
                                                                         "dev-noisy")
        limits = pod.spec.containers[0].resources.limits or {}
        assert not any(k.startswith("qpu.qbackbone.io/") for k in limits), limits
    print(f"\nCEL-selected job applied -> verified in {time.monotonic() - t0:.1f}s")


def test_the_second_team_waits_for_quota_until_the_first_ends(
        stack: ClusterInfo, api: client.ApiClient) -> None:
    apply(stack, "team-a", queued("first", "team-a", "team-a"))
    wait_for(lambda: (c := condition(job(api, "team-a", "first"), "QueueAdmitted"))
             and c["status"] == "True" and c, 180, what="team-a's job admitted by kueue")
    apply(stack, "team-b", queued("second", "team-b", "team-b"))
    waiting = wait_for(lambda: (c := condition(job(api, "team-b", "second"), "QueueAdmitted"))
                       and c["status"] == "False" and c["reason"] == "QueuedForQuota" and c,
                       120, interval=0.2, what="team-b's job waiting for quota")
    assert "qpu.qbackbone.io/qpus" in waiting["message"], waiting
    first = finished(api, "team-a", "first")
    check_verified(first, BELL4, BELL4_OBSERVABLES)
    second = finished(api, "team-b", "second")
    check_verified(second, BELL4, BELL4_OBSERVABLES)
    (pod,) = pods_of(api, "team-a", "first")
    ended = pod.status.container_statuses[0].state.terminated.finished_at.timestamp()
    admitted = condition(second, "QueueAdmitted")
    assert admitted is not None and admitted["status"] == "True", second["status"]
    assert when(admitted) >= ended - 1.0, (admitted, ended)  # 1 s timestamp resolution
    for team, name in (("team-a", "first"), ("team-b", "second")):
        containers_on_the_real_node(pods_of(api, team, name))


def test_a_qpu_removed_while_its_fragment_waits_moves_or_fails_the_job(
        stack: ClusterInfo, api: client.ApiClient) -> None:
    """`away` is hosted on a node that is not there: its device is published in that node's
    pool, so a claim for it is never satisfiable and the pod waits. Deleting the QPUNode
    removes the device and its class; the operator moves the fragment to the other QPU the
    selector admits (or fails the job when none)."""
    kubectl(stack, "apply", "-f", "-", stdin=yaml.safe_dump(
        qpunode("away", "aer", "aer_simulator", qubits=6, nodeName="elsewhere", site="far",
                shotTime="1us", setupTime="10ms")))
    wait_for(lambda: "away" in devices(api), 120, what="away published")
    wait_for(lambda: qpu_class_name("away") in class_names(api), 60, what="away's class")
    assert _kueue_sync(stack) == 0  # not needed without kueue; a restart must not hurt
    stranded = quantum_job("stranded", BELL4, BELL4_OBSERVABLES, shots=2000,
                           execution={"mode": "SingleQPU",
                                      "qpuSelector": {"cel": f'{A}.site == "far"'}})
    moved = quantum_job("moved", BELL4, BELL4_OBSERVABLES, shots=2000,
                        execution={"mode": "SingleQPU", "qpuSelector": {
                            "cel": f'{A}.site == "far" || {A}.qpu == "dev-ideal-b"'}})
    apply(stack, "default", stranded, moved)
    wait_for(lambda: any(p.metadata.annotations.get("qbackbone.io/qpu") == "away"
                         for p in pods_of(api, "default", "moved")), 120, interval=0.2,
             what="job moved's fragment placed on away")
    kubectl(stack, "delete", "qpunode", "away")
    failed_job = finished(api, "default", "stranded", timeout=120)
    failed = condition(failed_job, "Failed")
    assert failed is not None and failed["reason"] == "QPUUnavailable", failed_job["status"]
    assert "away" in failed["message"]
    done = finished(api, "default", "moved", timeout=300)
    check_verified(done, BELL4, BELL4_OBSERVABLES)
    assert done["status"]["result"]["qpus"] == ["dev-ideal-b"], done["status"]["result"]
    wait_for(lambda: "away" not in devices(api), 60, what="away's device gone")
