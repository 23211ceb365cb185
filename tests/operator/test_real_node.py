"""A real node (kubelet, containerd, runc, CNI) joined to the dev control plane, with the
project's device plugin registered with the real kubelet (DESIGN.md section 7, issue 16).

Binaries: hack/build-k8s.sh and hack/build-node.sh. The tests skip, with the reason, only
when this host cannot run a real node (not root, binaries missing, cgroups not writable, a
kubelet already running); with ``QB_REQUIRE_REAL_NODE=1`` that is a failure instead.

The control plane is this module's own (not the session's): its API server listens on the
node's address too (``LocalCluster(node_ip=...)``), so pods reach it through the kubernetes
Service and kube-proxy, and no other test's pod can land on the real node.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from qbackbone.dev import ClusterInfo
from qbackbone.dev.images import write_oci_archive
from qbackbone.dev.procs import stop
from qbackbone.dev.realnode import (
    RealNode,
    start_device_plugin,
    start_real_node,
)
from qbackbone.dev.realnode_host import KUBEPODS, NodeLayout, mounts_under
from qbackbone.dev.waiting import wait_for
from tests.operator.realnode_kit import cannot, real_control_plane

NODE = "qb-real-node"
QPU = "rn-qpu"
RESOURCE = f"qpu.qbackbone.io/{QPU}"
IMAGE = "localhost/qbackbone/qbtool:1"
# A static tool for the image: prints its environment, copies the QBACKBONE_* variables to
# the termination log, sleeps argv[1] seconds and exits with argv[2]; `connect` instead opens
# a TCP connection to the API server's Service (KUBERNETES_SERVICE_HOST/PORT): exit 0 if it
# connects.
TOOL_C = r"""
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
extern char **environ;
static int service_connects(void) {
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    struct sockaddr_in addr = {.sin_family = AF_INET};
    if (!host || !port || inet_pton(AF_INET, host, &addr.sin_addr) != 1) return 2;
    addr.sin_port = htons((unsigned short)atoi(port));
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int ok = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
    printf("connect %s:%s %s\n", host, port, ok ? "ok" : "failed");
    return ok ? 0 : 1;
}
int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "connect") == 0) return service_connects();
    FILE *msg = fopen("/dev/termination-log", "w");
    for (char **e = environ; *e; e++) {
        puts(*e);
        if (msg && strncmp(*e, "QBACKBONE_", 10) == 0) fprintf(msg, "%s\n", *e);
    }
    if (msg) fclose(msg);
    fflush(stdout);
    if (argc > 1) sleep((unsigned)atoi(argv[1]));
    return argc > 2 ? atoi(argv[2]) : 0;
}
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """A control plane of its own whose API server can reach kubelets (logs, exec)."""
    with real_control_plane(tmp_path_factory.mktemp("real-node-cluster")) as info:
        yield info


@pytest.fixture(scope="module")
def real_node(real_cluster: ClusterInfo) -> Iterator[RealNode]:
    """The real node; on teardown it must leave no mount, shim, pod cgroup or Node."""
    node = start_real_node(real_cluster, name=NODE, tied=True, timeout=90)
    print(f"\nreal node {NODE} Ready {node.ready_seconds}s after the kubelet started")
    yield node
    node.stop()
    leftovers = mounts_under(node.layout.root) + mounts_under(node.layout.kubelet_root)
    leftovers += [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/{KUBEPODS}")]
    leftovers += [str(p) for p in Path("/sys/fs/cgroup").glob(KUBEPODS)]
    shims = subprocess.run(["pgrep", "-f", str(node.layout.containerd_socket)],
                           capture_output=True, text=True, check=False).stdout.split()
    leftovers += [f"process {pid}" for pid in shims]
    assert not leftovers, f"the real node left {leftovers}"


@pytest.fixture(scope="module")
def core(real_cluster: ClusterInfo) -> Iterator[client.CoreV1Api]:
    api = config.new_client_from_config(config_file=real_cluster.kubeconfig)
    yield client.CoreV1Api(api)
    api.close()


@pytest.fixture(scope="module")
def tool_image(real_node: RealNode, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The static tool, compiled here, packed as an OCI archive and imported (no registry)."""
    gcc = shutil.which("gcc")
    if gcc is None:
        cannot("gcc is needed to compile the test image's static binary")
    work = tmp_path_factory.mktemp("qbtool")
    (work / "qbtool.c").write_text(TOOL_C)
    subprocess.run([str(gcc), "-Os", "-static", "-o", str(work / "qbtool"),
                    str(work / "qbtool.c")], check=True)
    archive = work / "qbtool.oci.tar"
    write_oci_archive(archive, IMAGE, {"qbtool": work / "qbtool"}, entrypoint=["/qbtool"])
    real_node.import_image(archive)
    return IMAGE


@pytest.fixture()
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    name = f"rn-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(lambda: core.read_namespaced_service_account("default", name), 30,
             what=f"default ServiceAccount in {name}")
    yield name
    core.delete_namespace(name)


def _pod(name: str, args: list[str], qpu: bool = False) -> client.V1Pod:
    limits = {RESOURCE: "1"} if qpu else None
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            restart_policy="Never", termination_grace_period_seconds=1,
            node_selector={"kubernetes.io/hostname": NODE},
            containers=[client.V1Container(
                name="main", image=IMAGE, image_pull_policy="Never", args=args,
                resources=client.V1ResourceRequirements(limits=limits))]))


def _wait_phase(core: client.CoreV1Api, ns: str, name: str, phases: set[str],
                timeout: float = 60) -> Any:
    def reached() -> Any:
        pod = core.read_namespaced_pod(name, ns)
        return pod if pod.status and pod.status.phase in phases else None

    return wait_for(reached, timeout, interval=0.05, what=f"pod {ns}/{name} in {phases}")


def test_node_is_ready_with_the_built_kubelet(real_node: RealNode,
                                              core: client.CoreV1Api) -> None:
    node = core.read_node(NODE)
    conditions = {c.type: c.status for c in node.status.conditions}
    assert conditions["Ready"] == "True"
    info = node.status.node_info
    assert info.kubelet_version == "v1.36.3"
    assert info.container_runtime_version.startswith("containerd://2.")
    addresses = {a.type: a.address for a in node.status.addresses}
    assert addresses["InternalIP"] == real_node.ip and not real_node.ip.startswith("127.")
    assert real_node.ready_seconds < 30


def test_pod_runs_in_containerd_and_runc(real_node: RealNode, core: client.CoreV1Api,
                                         tool_image: str, namespace: str) -> None:
    t0 = time.monotonic()
    core.create_namespaced_pod(namespace, _pod("ok", ["0"]))
    pod = _wait_phase(core, namespace, "ok", {"Succeeded", "Failed"})
    seconds = time.monotonic() - t0
    print(f"\npod create -> {pod.status.phase} in {seconds:.2f}s")
    assert pod.status.phase == "Succeeded", pod.status
    assert pod.spec.node_name == NODE
    container_id = pod.status.container_statuses[0].container_id
    assert container_id.startswith("containerd://")
    assert container_id.removeprefix("containerd://") in real_node.ctr("containers", "ls", "-q")
    # Logs travel API server -> kubelet (InternalIP) -> containerd.
    assert "HOSTNAME=ok" in core.read_namespaced_pod_log("ok", namespace)

    core.create_namespaced_pod(namespace, _pod("fails", ["0", "3"]))
    failed = _wait_phase(core, namespace, "fails", {"Succeeded", "Failed"})
    assert failed.status.phase == "Failed"
    assert failed.status.container_statuses[0].state.terminated.exit_code == 3


def test_pods_reach_the_api_server_through_its_service(real_node: RealNode,
                                                       core: client.CoreV1Api, tool_image: str,
                                                       namespace: str) -> None:
    # kube-proxy's iptables rules send the kubernetes Service's IP to the API server on the
    # node's address: how the operator and worker pods use their in-cluster configuration.
    core.create_namespaced_pod(namespace, _pod("reach", ["connect"]))
    pod = _wait_phase(core, namespace, "reach", {"Succeeded", "Failed"})
    log = core.read_namespaced_pod_log("reach", namespace)
    assert pod.status.phase == "Succeeded", log
    assert "connect 10.0.0.1:443 ok" in log


def _unschedulable(core: client.CoreV1Api, ns: str, name: str) -> str | None:
    pod = core.read_namespaced_pod(name, ns)
    for cond in pod.status.conditions or []:
        if cond.type == "PodScheduled" and cond.reason == "Unschedulable":
            return str(cond.message)
    return None


def test_device_plugin_on_the_real_kubelet(real_cluster: ClusterInfo, real_node: RealNode,
                                           core: client.CoreV1Api, tool_image: str,
                                           namespace: str) -> None:
    proc, record = start_device_plugin(real_cluster, real_node, qpus=[QPU], tied=True)
    try:
        allocatable = core.read_node(NODE).status.allocatable
        assert allocatable[RESOURCE] == "1"

        core.create_namespaced_pod(namespace, _pod("holder", ["300"], qpu=True))
        _wait_phase(core, namespace, "holder", {"Running"})
        env = core.read_namespaced_pod_log("holder", namespace).splitlines()
        assert f"QBACKBONE_QPU={QPU}" in env
        assert f"QBACKBONE_QPUS={QPU}" in env
        assert "QBACKBONE_QPU_BACKEND=aer/aer_simulator" in env
        assert f"QBACKBONE_QPU_RESOURCE={RESOURCE}" in env

        core.create_namespaced_pod(namespace, _pod("waiter", ["0"], qpu=True))
        message = wait_for(lambda: _unschedulable(core, namespace, "waiter"), 30,
                           what="the second pod for the same QPU Unschedulable")
        assert f"Insufficient {RESOURCE}" in message
        assert core.read_namespaced_pod("waiter", namespace).status.phase == "Pending"

        # The QPU is released with the first pod: the second one runs with the same env.
        core.delete_namespaced_pod("holder", namespace, grace_period_seconds=0)
        waiter = _wait_phase(core, namespace, "waiter", {"Succeeded", "Failed"}, timeout=90)
        assert waiter.status.phase == "Succeeded"
        message = waiter.status.container_statuses[0].state.terminated.message
        assert f"QBACKBONE_QPU={QPU}" in message.splitlines()
    finally:
        stop(record, proc)
        try:
            core.delete_namespaced_pod("holder", namespace, grace_period_seconds=0)
        except ApiException as exc:
            if exc.status != 404:
                raise


def test_layout_is_under_the_cluster_state_dir(real_cluster: ClusterInfo,
                                               real_node: RealNode) -> None:
    assert real_node.layout.root == NodeLayout(Path(real_cluster.state_dir) / "real-node").root
    assert real_node.layout.containerd_socket.is_socket()
    assert (real_node.layout.device_plugins / "kubelet.sock").is_socket()
