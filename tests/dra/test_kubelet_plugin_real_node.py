"""The DRA driver end to end on a real node (kubelet, containerd with CDI, runc) joined to a
control plane of this module's own: ``qbackbone dra-driver`` publishes the Ready QPUNodes,
``qbackbone dra-driver kubelet-plugin`` registers with the real kubelet; a pod whose
ResourceClaimTemplate's CEL selector admits exactly one QPU is allocated that QPU by
kube-scheduler, the kubelet asks the plugin to prepare the claim, containerd injects the CDI
device, and the container's environment names the QPU; deleting the pod unprepares the claim
and removes the CDI spec. The plugin's fake resource manager (``--fake-qpus``) is exercised the
same way through its node-local slice.

Needs what tests/operator/test_real_node.py needs (root, hack/build-k8s.sh and
hack/build-node.sh binaries, gcc for the test image); skips with the reason otherwise, fails
under ``QB_REQUIRE_REAL_NODE=1``. One real node per machine: never run beside another
real-node session.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from qbackbone.dev import ClusterInfo
from qbackbone.dev.crds import install_crds
from qbackbone.dev.images import write_oci_archive
from qbackbone.dev.procs import free_port
from qbackbone.dev.realnode import RealNode, start_real_node
from qbackbone.dev.waiting import wait_for
from qbackbone.dra import cdi, health
from qbackbone.dra.attributes import DRIVER
from qbackbone.dra.kubeletplugin import Paths
from tests.dra.test_publisher_cluster import calibration, status
from tests.operator.realnode_kit import cannot, real_control_plane
from tests.operator.test_real_node import IMAGE, TOOL_C

pytestmark = pytest.mark.slow

NODE = "qb-dra-node"
REPO = Path(__file__).resolve().parents[2]
G, V = "qbackbone.io", "v1alpha1"
R, RV = "resource.k8s.io", "v1"
CDI_DIR = Path("/var/run/cdi")  # one of containerd 2.x's default CDI spec directories
QPUS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "rn-torino": ({"backend": {"provider": "fake", "name": "fake_torino"}, "qubits": 27,
                   "nodeName": NODE, "site": "fra"}, status(cal=calibration())),
    "rn-sim": ({"backend": {"provider": "aer", "name": "aer_simulator"}, "qubits": 30,
                "nodeName": NODE, "site": "fra"}, status(qubits=30)),
    "rn-manila": ({"backend": {"provider": "fake", "name": "fake_manila"}, "site": "fra"},
                  status(cal=calibration(t1=80.0, e2q=1.2e-2), qubits=5)),
    "rn-ibm": ({"backend": {"provider": "ibm-runtime", "name": "ibm_fez"}, "qubits": 156,
                "nodeName": NODE, "site": "osa",
                "credentialsSecretRef": {"name": "ibm-token", "key": "token"}},
               status(cal=calibration(), qubits=156)),
}
TOKEN = "not-a-real-token-42"
CREDS_IMAGE = "localhost/qbackbone/qbcreds:1"
# Prints its environment, then the file QBACKBONE_QPU_CREDENTIALS_FILE names (as seen inside
# the container: the plugin's CDI mount), then sleeps argv[1] seconds.
CREDS_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
extern char **environ;
int main(int argc, char **argv) {
    for (char **e = environ; *e; e++) puts(*e);
    const char *path = getenv("QBACKBONE_QPU_CREDENTIALS_FILE");
    char buf[256] = {0};
    FILE *f = path ? fopen(path, "r") : NULL;
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = 0;
        fclose(f);
        printf("CREDENTIALS=%s\n", buf);
    } else {
        printf("CREDENTIALS unreadable\n");
    }
    fflush(stdout);
    if (argc > 1) sleep((unsigned)atoi(argv[1]));
    return 0;
}
"""
# Only rn-torino: rn-sim is ideal, rn-manila has 5 qubits, rn-ibm is at osa, the fake QPUs
# are ideal.
SELECTOR = ('device.attributes["qpu.qbackbone.io"].qubits >= 20 && '
            '!device.attributes["qpu.qbackbone.io"].ideal && '
            'device.attributes["qpu.qbackbone.io"].site == "fra"')
FAKE_SELECTOR = 'device.attributes["qpu.qbackbone.io"].qpu == "fake-qpu-1"'
IBM_SELECTOR = 'device.attributes["qpu.qbackbone.io"].provider == "ibm-runtime"'


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    with real_control_plane(tmp_path_factory.mktemp("dra-real-node")) as info:
        yield info


@pytest.fixture(scope="module")
def node(cluster: ClusterInfo) -> Iterator[RealNode]:
    created = not CDI_DIR.exists()
    CDI_DIR.mkdir(parents=True, exist_ok=True)  # before containerd starts watching it
    real = start_real_node(cluster, name=NODE, tied=True, timeout=90)
    yield real
    real.stop()
    if created and not any(CDI_DIR.iterdir()):
        CDI_DIR.rmdir()


@pytest.fixture(scope="module")
def api(cluster: ClusterInfo) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=cluster.kubeconfig)
    yield api
    api.close()


def _import_tool(node: RealNode, work: Path, source: str, image: str) -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        cannot("gcc is needed to compile the test image's static binary")
    (work / "tool.c").write_text(source)
    subprocess.run([gcc, "-Os", "-static", "-o", str(work / "tool"), str(work / "tool.c")],
                   check=True)
    archive = work / "tool.oci.tar"
    write_oci_archive(archive, image, {"tool": work / "tool"}, entrypoint=["/tool"])
    node.import_image(archive)
    return image


@pytest.fixture(scope="module")
def image(node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> str:
    """tests/operator/test_real_node.py's static tool (prints its environment)."""
    return _import_tool(node, tmp_path_factory.mktemp("qbtool"), TOOL_C, IMAGE)


@pytest.fixture(scope="module")
def creds_image(node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> str:
    return _import_tool(node, tmp_path_factory.mktemp("qbcreds"), CREDS_C, CREDS_IMAGE)


def _start(cluster: ClusterInfo, name: str, args: list[str], log_dir: Path
           ) -> tuple[subprocess.Popen[bytes], Path]:
    log = log_dir / f"{name}.log"
    argv = [str(Path(sys.executable).parent / "qbackbone"), "dra-driver", *args,
            f"--kubeconfig={cluster.kubeconfig}"]
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT), log


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@pytest.fixture(scope="module")
def driver(cluster: ClusterInfo, node: RealNode, api: client.ApiClient,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """CRDs, Ready QPUNodes (statuses written here: no operator runs), the publisher and the
    kubelet plugin (with two fake QPUs) as subprocesses."""
    install_crds(cluster, api, REPO / "crds")
    custom = client.CustomObjectsApi(api)
    for name, (spec, st) in QPUS.items():
        custom.create_cluster_custom_object(G, V, "qpunodes", {
            "apiVersion": f"{G}/{V}", "kind": "QPUNode", "metadata": {"name": name},
            "spec": spec})
        custom.patch_cluster_custom_object_status(G, V, "qpunodes", name, {"status": st})
    logs = tmp_path_factory.mktemp("dra-logs")
    creds = logs / "credentials"
    (creds / "ibm-token").mkdir(parents=True)
    (creds / "ibm-token" / "token").write_text(TOKEN)
    publisher, publisher_log = _start(cluster, "publisher", ["--resync=5"], logs)
    port = free_port()
    paths = Paths(node.layout.kubelet_root)
    plugin, plugin_log = _start(cluster, "kubelet-plugin", [
        "kubelet-plugin", f"--kubelet-root={paths.kubelet_root}", f"--node-name={NODE}",
        f"--cdi-dir={CDI_DIR}", f"--healthcheck-port={port}", "--healthcheck-address=127.0.0.1",
        f"--credentials-host-dir={creds}", "--fake-qpus=2"], logs)
    state = {"custom": custom, "core": client.CoreV1Api(api), "paths": paths, "port": port,
             "plugin": plugin, "plugin_log": plugin_log, "publisher_log": publisher_log}
    yield state
    _stop(plugin)
    _stop(publisher)
    print(f"\n--- kubelet plugin log:\n{plugin_log.read_text()[-3000:]}")


@pytest.fixture()
def namespace(driver: dict[str, Any]) -> Iterator[str]:
    core: client.CoreV1Api = driver["core"]
    name = f"dra-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(lambda: core.read_namespaced_service_account("default", name), 30,
             what=f"default ServiceAccount in {name}")
    yield name
    core.delete_namespace(name)


def _devices(custom: client.CustomObjectsApi) -> dict[str, dict[str, Any]]:
    found = custom.list_cluster_custom_object(R, RV, "resourceslices",
                                              field_selector=f"spec.driver={DRIVER}")
    out = {}
    for obj in found["items"]:
        for device in obj["spec"].get("devices") or []:
            out[device["attributes"]["qpu"]["string"]] = obj
    return out


def _run_claimed_pod(driver: dict[str, Any], namespace: str, pod_name: str,
                     selector: str, image: str = IMAGE) -> tuple[Any, dict[str, Any], str]:
    """A ResourceClaimTemplate with ``selector`` and a pod using it whose container prints its
    environment and sleeps 4 s; returns the Succeeded pod, the CDI spec seen while it ran and
    its log."""
    custom: client.CustomObjectsApi = driver["custom"]
    core: client.CoreV1Api = driver["core"]
    custom.create_namespaced_custom_object(R, RV, namespace, "resourceclaimtemplates", {
        "apiVersion": f"{R}/{RV}", "kind": "ResourceClaimTemplate",
        "metadata": {"name": pod_name},
        "spec": {"spec": {"devices": {"requests": [{"name": "qpu", "exactly": {
            "deviceClassName": DRIVER, "selectors": [{"cel": {"expression": selector}}]}}]}}}})
    core.create_namespaced_pod(namespace, {  # type: ignore[arg-type]
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                 "resourceClaims": [{"name": "qpu", "resourceClaimTemplateName": pod_name}],
                 "containers": [{"name": "main", "image": image, "imagePullPolicy": "Never",
                                 "args": ["4"], "resources": {"claims": [{"name": "qpu"}]}}]}})

    def claim_uid() -> str | None:
        pod = core.read_namespaced_pod(pod_name, namespace)
        statuses = (pod.status.resource_claim_statuses or []) if pod.status else []
        names = [s.resource_claim_name for s in statuses if s.resource_claim_name]
        if not names:
            return None
        obj = custom.get_namespaced_custom_object(R, RV, namespace, "resourceclaims", names[0])
        return str(obj["metadata"]["uid"])

    uid = wait_for(claim_uid, 60, what="the generated ResourceClaim")

    def running_spec() -> dict[str, Any] | None:
        pod = core.read_namespaced_pod(pod_name, namespace)
        phase = pod.status.phase if pod.status else None
        assert phase not in ("Failed", "Succeeded") or cdi.read_spec(CDI_DIR, uid), phase
        return cdi.read_spec(CDI_DIR, uid) if phase == "Running" else None

    spec = wait_for(running_spec, 90, interval=0.1, what=f"pod {pod_name} Running, CDI spec")
    pod = wait_for(lambda: (lambda p: p if p.status.phase in ("Succeeded", "Failed") else None)(
        core.read_namespaced_pod(pod_name, namespace)), 60, what=f"pod {pod_name} finished")
    log = core.read_namespaced_pod_log(pod_name, namespace)
    assert pod.status.phase == "Succeeded", (pod.status, log)
    assert pod.spec.node_name == NODE
    core.delete_namespaced_pod(pod_name, namespace, grace_period_seconds=0)
    wait_for(lambda: not cdi.spec_file(CDI_DIR, uid).exists(), 60,
             what="the CDI spec removed after the pod is deleted")

    def pod_gone() -> bool:
        try:
            core.read_namespaced_pod(pod_name, namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(pod_gone, 60, what="the pod deleted")
    checkpointed = json.loads(driver["paths"].checkpoint.read_text())["claims"]
    assert uid not in checkpointed
    return pod, spec, log


def test_plugin_registers_with_the_real_kubelet(driver: dict[str, Any]) -> None:
    paths: Paths = driver["paths"]
    log: Path = driver["plugin_log"]
    wait_for(lambda: "registered with the kubelet" in log.read_text()
             or driver["plugin"].poll() is not None, 60, what="the kubelet's registration")
    assert driver["plugin"].poll() is None, log.read_text()
    assert paths.registration_socket.is_socket() and paths.dra_socket.is_socket()
    with grpc.insecure_channel(f"127.0.0.1:{driver['port']}") as channel:
        assert health.check(channel, "liveness") == health.SERVING
    # the central publisher's devices and the plugin's fake ones, side by side
    found = wait_for(lambda: (lambda d: d if {*QPUS, "fake-qpu-0", "fake-qpu-1"} <= set(d)
                              else None)(
        _devices(driver["custom"])), 60, what="every device published")
    assert found["rn-torino"]["spec"]["pool"]["name"] == NODE
    assert found["fake-qpu-0"]["spec"]["pool"]["name"] == f"{NODE}/fake"
    assert found["fake-qpu-0"]["metadata"]["labels"]["qbackbone.io/dra-publisher"] == \
        "kubelet-plugin"


def test_claimed_pod_gets_the_one_qpu_its_selector_admits(driver: dict[str, Any],
                                                          image: str, namespace: str) -> None:
    test_plugin_registers_with_the_real_kubelet(driver)
    pod, spec, log = _run_claimed_pod(driver, namespace, "frag", SELECTOR)
    env = dict(line.split("=", 1) for line in log.splitlines() if "=" in line)
    assert env["QBACKBONE_QPU"] == "rn-torino", log
    assert env["QBACKBONE_QPUS"] == "rn-torino"
    assert env["QBACKBONE_QPU_BACKEND"] == "fake/fake_torino"
    assert env["QBACKBONE_QPU_RESOURCE"] == "qpu.qbackbone.io/rn-torino"
    assert "QBACKBONE_QPU_CREDENTIALS_FILE" not in env
    assert spec["kind"] == "qpu.qbackbone.io/qpu"
    # the termination message is written from inside the container
    message = pod.status.container_statuses[0].state.terminated.message or ""
    assert "QBACKBONE_QPU=rn-torino" in message


def test_fake_resource_manager_on_the_real_node(driver: dict[str, Any], image: str,
                                                namespace: str) -> None:
    test_plugin_registers_with_the_real_kubelet(driver)
    _, spec, log = _run_claimed_pod(driver, namespace, "fake", FAKE_SELECTOR)
    assert "QBACKBONE_QPU=fake-qpu-1" in log.splitlines(), log
    assert "QBACKBONE_QPU_BACKEND=aer/aer_simulator" in log.splitlines()
    assert [d["name"].rsplit("-fake-", 1)[1] for d in spec["devices"]] == ["qpu-1"]


def test_credentials_are_mounted_never_written(driver: dict[str, Any], creds_image: str,
                                               namespace: str) -> None:
    test_plugin_registers_with_the_real_kubelet(driver)
    _, spec, log = _run_claimed_pod(driver, namespace, "ibm", IBM_SELECTOR, creds_image)
    lines = log.splitlines()
    token_file = "/var/run/secrets/qbackbone/ibm-token/token"
    assert "QBACKBONE_QPU=rn-ibm" in lines, log
    assert f"QBACKBONE_QPU_CREDENTIALS_FILE={token_file}" in lines
    assert f"QB_IBM_TOKEN_FILE={token_file}" in lines
    assert f"CREDENTIALS={TOKEN}" in lines  # read inside the container through the mount
    assert TOKEN not in json.dumps(spec)  # the spec only points at it


def test_sigterm_removes_the_sockets(driver: dict[str, Any]) -> None:
    paths: Paths = driver["paths"]
    assert _stop(driver["plugin"]) == 0, driver["plugin_log"].read_text()
    assert not paths.registration_socket.exists() and not paths.dra_socket.exists()
    assert "Traceback" not in driver["plugin_log"].read_text()
    # its node-local slice is withdrawn; the central publisher's devices stay
    found = wait_for(lambda: (lambda d: d if "fake-qpu-0" not in d else None)(
        _devices(driver["custom"])), 30, what="the fake slice deleted")
    assert "rn-torino" in found
