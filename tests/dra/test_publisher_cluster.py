"""``qbackbone dra-driver`` against the real local control plane: QPUNodes with calibration in
their status become devices in ResourceSlices; a calibration change rewrites only that pool at
the next generation; a QPU that is deleted or not Ready leaves; hostile content is skipped; a
claim with a CEL selector is accepted and kube-scheduler allocates it the one matching device
(on a node of the QPU node agent, which stands in for the kubelet: nothing prepares the claim
on the node, docs/dra.md).

The QPUNodes' statuses are written by the test (no operator runs: tests/operator's starts later
in the session's order), so the calibration is the test's to change."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from qbackbone.dev import ClusterInfo
from qbackbone.dev.waiting import wait_for
from qbackbone.dra.attributes import DRIVER, device_of
from qbackbone.dra.classes import qpu_class_name
from qbackbone.dra.slices import CLOUD_POOL, MANAGED_SELECTOR

pytestmark = pytest.mark.cluster

G, V = "qbackbone.io", "v1alpha1"
R, RV = "resource.k8s.io", "v1"
HOST = "qpu-host-a"  # a node of the session's node agent (tests/cluster/fixtures.py)
NOW = "2026-01-02T03:04:05Z"


def calibration(t1: float = 112.4, e2q: float = 8.5e-3) -> dict[str, Any]:
    return {"medianT1Us": t1, "medianT2Us": 98.6, "median1QError": 2.5e-4,
            "median2QError": e2q, "medianReadoutError": 1.5e-2, "takenAt": "2025-08-19T10:40:00Z"}


def status(ready: bool = True, cal: dict[str, Any] | None = None,
           qubits: int = 27) -> dict[str, Any]:
    body: dict[str, Any] = {"conditions": [{
        "type": "Ready", "status": "True" if ready else "False",
        "reason": "Calibrated" if ready else "BackendUnavailable", "message": "test",
        "lastTransitionTime": NOW}], "deviceQubits": qubits, "derivedMaxDepth": 40}
    if cal is not None:
        body["calibration"] = cal
    return body


# name -> (spec, status)
QPUS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "dra-hosted": ({"backend": {"provider": "fake", "name": "fake_torino"}, "qubits": 27,
                    "nodeName": HOST, "site": "fra"}, status(cal=calibration())),
    "dra-cloud": ({"backend": {"provider": "fake", "name": "fake_manila"}},
                  status(cal=calibration(t1=80.0, e2q=1.2e-2), qubits=5)),
    "dra-sim": ({"backend": {"provider": "aer", "name": "aer_simulator"}, "qubits": 8},
                status(qubits=8)),
    "dra-down": ({"backend": {"provider": "fake", "name": "fake_torino"}},
                 status(ready=False, cal=calibration(), qubits=133)),
    "dra-hostile": ({"backend": {"provider": "fake", "name": "fake_torino"}},
                    status(cal=calibration(t1=1e308), qubits=133)),
}
PUBLISHED = {"dra-hosted", "dra-cloud", "dra-sim"}
SELECTOR = ('device.attributes["qpu.qbackbone.io"].qubits >= 7 && '
            '!device.attributes["qpu.qbackbone.io"].ideal')


@pytest.fixture()
def qpunodes(api: client.ApiClient, crds: None) -> Iterator[client.CustomObjectsApi]:
    custom = client.CustomObjectsApi(api)
    for name, (spec, st) in QPUS.items():
        custom.create_cluster_custom_object(G, V, "qpunodes", {
            "apiVersion": f"{G}/{V}", "kind": "QPUNode", "metadata": {"name": name},
            "spec": spec})
        custom.patch_cluster_custom_object_status(G, V, "qpunodes", name, {"status": st})
    yield custom
    for name in QPUS:
        try:
            custom.delete_cluster_custom_object(G, V, "qpunodes", name)
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture()
def publisher(cluster: ClusterInfo, api: client.ApiClient, qpunodes: client.CustomObjectsApi,
              tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log = tmp_path / "dra-driver.log"
    argv = [str(Path(sys.executable).parent / "qbackbone"), "dra-driver",
            f"--kubeconfig={cluster.kubeconfig}", "--resync=5"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    yield proc, log
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    custom = client.CustomObjectsApi(api)
    for obj in as_dict(custom.list_cluster_custom_object(
            R, RV, "resourceslices", label_selector=MANAGED_SELECTOR))["items"]:
        custom.delete_cluster_custom_object(R, RV, "resourceslices", obj["metadata"]["name"])
    for name in qpu_classes(custom):
        custom.delete_cluster_custom_object(R, RV, "deviceclasses", name)
    try:
        custom.delete_cluster_custom_object(R, RV, "deviceclasses", DRIVER)
    except ApiException as exc:
        if exc.status != 404:
            raise


def qpu_classes(custom: client.CustomObjectsApi) -> set[str]:
    found = as_dict(custom.list_cluster_custom_object(R, RV, "deviceclasses",
                                                      label_selector=MANAGED_SELECTOR))
    return {o["metadata"]["name"] for o in found["items"]}


def as_dict(value: object) -> dict[str, Any]:
    assert isinstance(value, dict), value
    return value


def slices(custom: client.CustomObjectsApi) -> list[dict[str, Any]]:
    found = as_dict(custom.list_cluster_custom_object(R, RV, "resourceslices",
                                                      field_selector=f"spec.driver={DRIVER}"))
    return list(found["items"])


def devices(custom: client.CustomObjectsApi) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """QPU name -> (its device, its slice), over the driver's slices."""
    out = {}
    for obj in slices(custom):
        for device in obj["spec"].get("devices") or []:
            out[device["attributes"]["qpu"]["string"]] = (device, obj)
    return out


def published(custom: client.CustomObjectsApi, want: set[str]) -> Any:
    found = devices(custom)
    return found if {q for q in found if q.startswith("dra-")} == want else None


def test_publisher_keeps_slices_current_and_claims_select_devices(
        cluster: ClusterInfo, api: client.ApiClient, core: client.CoreV1Api,
        node_agent: tuple[str, ...],
        namespace: str, qpunodes: client.CustomObjectsApi,
        publisher: tuple[subprocess.Popen[bytes], Path]) -> None:
    custom = qpunodes
    proc, log = publisher
    found = wait_for(lambda: published(custom, PUBLISHED), 60, what="devices published")

    # Every Ready QPUNode, with the attributes of its status; per node / all nodes.
    for name in PUBLISHED:
        device = found[name][0]
        expected = device_of(as_dict(custom.get_cluster_custom_object(G, V, "qpunodes", name)))
        assert device["name"] == expected.name
        assert device["attributes"] == expected.entry["attributes"], name
    hosted, hosted_slice = found["dra-hosted"]
    assert hosted["attributes"]["error2qPpm"] == {"int": 8500}
    assert hosted["attributes"]["t1Us"] == {"int": 112}
    assert hosted["attributes"]["site"] == {"string": "fra"}
    assert hosted_slice["spec"]["nodeName"] == HOST
    assert hosted_slice["spec"]["pool"]["name"] == HOST
    cloud_slice = found["dra-cloud"][1]
    assert cloud_slice["spec"]["allNodes"] is True
    assert cloud_slice["spec"]["pool"]["name"] == CLOUD_POOL
    assert found["dra-sim"][0]["attributes"]["ideal"] == {"bool": True}
    cls = as_dict(custom.get_cluster_custom_object(R, RV, "deviceclasses", DRIVER))
    assert cls["spec"]["selectors"] == [{"cel": {"expression": f'device.driver == "{DRIVER}"'}}]
    # One class per published QPU (what the operator's claims name: kueue counts classes).
    wait_for(lambda: qpu_classes(custom) == {qpu_class_name(q) for q in PUBLISHED}, 30,
             what="a DeviceClass per published QPU")
    printed = subprocess.run(
        [sys.executable, "-m", "qbackbone.cli.main", "dra-driver", "kueue-mappings",
         "--kubeconfig", cluster.kubeconfig], capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0, printed.stderr
    (mapping,) = yaml.safe_load(printed.stdout)["resources"]["deviceClassMappings"]
    assert mapping["name"] == "qpu.qbackbone.io/qpus"
    assert mapping["deviceClassNames"] == [DRIVER, *sorted(qpu_class_name(q) for q in PUBLISHED)]
    wait_for(lambda: "dra-hostile not published: InvalidCalibration" in log.read_text(), 10,
             what="the hostile QPUNode's reason in the log")

    # A calibration change: that pool at the next generation; the other pool untouched.
    generation = hosted_slice["spec"]["pool"]["generation"]
    cloud_version = cloud_slice["metadata"]["resourceVersion"]
    custom.patch_cluster_custom_object_status(G, V, "qpunodes", "dra-hosted", {
        "status": {"calibration": calibration(e2q=2e-2)}})

    def recalibrated() -> Any:
        device, obj = devices(custom)["dra-hosted"]
        return obj if device["attributes"]["error2qPpm"] == {"int": 20000} else None

    updated = wait_for(recalibrated, 30, what="the slice carries the new calibration")
    assert updated["spec"]["pool"]["generation"] == generation + 1
    assert updated["metadata"]["name"] == hosted_slice["metadata"]["name"]  # replaced in place
    assert devices(custom)["dra-cloud"][1]["metadata"]["resourceVersion"] == cloud_version

    # A claim with a CEL selector is accepted (and a broken one refused) by the API server.
    claim = {"apiVersion": f"{R}/{RV}", "kind": "ResourceClaim", "metadata": {"name": "qpu"},
             "spec": {"devices": {"requests": [{"name": "qpu", "exactly": {
                 "deviceClassName": DRIVER, "selectors": [{"cel": {"expression": SELECTOR}}]}}]}}}
    custom.create_namespaced_custom_object(R, RV, namespace, "resourceclaims", claim)
    broken = {**claim, "metadata": {"name": "broken"},
              "spec": {"devices": {"requests": [{"name": "qpu", "exactly": {
                  "deviceClassName": DRIVER,
                  "selectors": [{"cel": {"expression": "device.attributes[ >= 7"}}]}}]}}}
    with pytest.raises(ApiException) as refused:
        custom.create_namespaced_custom_object(R, RV, namespace, "resourceclaims", broken)
    assert refused.value.status == 422

    # kube-scheduler allocates the one device the selector admits (dra-hosted: 27 qubits, not
    # ideal; dra-cloud has 5, dra-sim is ideal, dra-down and dra-hostile are not published)
    # and binds the pod to that device's node.
    pod: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "frag"},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                 "resourceClaims": [{"name": "qpu", "resourceClaimName": "qpu"}],
                 "containers": [{"name": "main", "image": "none",
                                 # running while the test looks: a finished pod's
                                 # claim is deallocated by the resourceclaim controller
                                 "command": ["/bin/sh", "-c", "sleep 120"],
                                 "resources": {"claims": [{"name": "qpu"}]}}]}}
    core.create_namespaced_pod(namespace, pod)  # type: ignore[arg-type]

    def allocation() -> Any:
        got = as_dict(custom.get_namespaced_custom_object(R, RV, namespace, "resourceclaims",
                                                          "qpu"))
        return (got.get("status") or {}).get("allocation")

    allocated = wait_for(allocation, 60, what="the claim allocated")
    results = allocated["devices"]["results"]
    assert [(r["driver"], r["pool"], r["device"]) for r in results] == [
        (DRIVER, HOST, "dra-hosted")]
    # A claim naming a QPU's own class (no selector) gets exactly that QPU.
    pinned = {"apiVersion": f"{R}/{RV}", "kind": "ResourceClaim", "metadata": {"name": "pin"},
              "spec": {"devices": {"requests": [{"name": "qpu", "exactly": {
                  "deviceClassName": qpu_class_name("dra-sim")}}]}}}
    custom.create_namespaced_custom_object(R, RV, namespace, "resourceclaims", pinned)
    core.create_namespaced_pod(namespace, {  # type: ignore[arg-type]
        **pod, "metadata": {"name": "pinned"},
        "spec": {**pod["spec"], "resourceClaims": [{"name": "qpu", "resourceClaimName": "pin"}]}})

    def pinned_allocation() -> Any:
        got = as_dict(custom.get_namespaced_custom_object(R, RV, namespace, "resourceclaims",
                                                          "pin"))
        return (got.get("status") or {}).get("allocation")

    results = wait_for(pinned_allocation, 60, what="the pinned claim allocated")["devices"]
    assert [(r["pool"], r["device"]) for r in results["results"]] == [(CLOUD_POOL, "dra-sim")]
    core.delete_namespaced_pod("pinned", namespace, grace_period_seconds=0)
    def node() -> str | None:
        spec = core.read_namespaced_pod("frag", namespace).spec
        return spec.node_name if spec is not None else None

    assert wait_for(node, 30, what="the pod bound") == HOST

    # Deleted, or no longer Ready: the device leaves its slice (an emptied pool: its slice).
    custom.delete_cluster_custom_object(G, V, "qpunodes", "dra-cloud")
    wait_for(lambda: published(custom, {"dra-hosted", "dra-sim"}), 30, what="dra-cloud gone")
    custom.patch_cluster_custom_object_status(G, V, "qpunodes", "dra-sim", {
        "status": status(ready=False, qubits=8)})
    wait_for(lambda: published(custom, {"dra-hosted"}), 30, what="dra-sim gone")
    wait_for(lambda: qpu_classes(custom) == {qpu_class_name("dra-hosted")}, 30,
             what="the classes of the QPUs that left deleted")
    wait_for(lambda: not any(o["spec"]["pool"]["name"] == CLOUD_POOL for o in slices(custom)),
             30, what="the empty cloud pool's slice deleted")

    # A slice deleted behind its back comes back.
    name = devices(custom)["dra-hosted"][1]["metadata"]["name"]
    custom.delete_cluster_custom_object(R, RV, "resourceslices", name)

    def restored() -> bool:
        found = published(custom, {"dra-hosted"})
        return bool(found) and found["dra-hosted"][1]["metadata"]["name"] != name

    wait_for(restored, 30, what="the slice restored")

    # SIGTERM: a clean stop; the slices stay.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0, log.read_text()[-2000:]
    assert published(custom, {"dra-hosted"})
    assert "Traceback" not in log.read_text(), log.read_text()[-4000:]
