"""A real node for the local cluster: containerd, runc, CNI and the kubelet on this machine.

``start_real_node(info)`` writes the node's files under ``<state dir>/real-node`` (certificates
from the cluster's CA, configurations: ``realnode_host.py``) and starts a supervisor process,
``python -m qbackbone.dev.realnode_supervisor``, recorded in the cluster's ``state.json`` as
``real-node``: it runs containerd and the kubelet, and on SIGTERM (``cluster down``, or a test
session that dies when ``tied``) stops the kubelet, removes every pod sandbox through CRI
(with CNI teardown), stops containerd, kills leftover shims, removes the pod cgroups,
unmounts what is left under the node dir, and deletes the Node. One real node per machine
(ports, cgroups, the device-plugin socket). Binaries: ``hack/build-node.sh``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from qbackbone.dev import procs
from qbackbone.dev.binaries import K8S_VERSION, cache_root
from qbackbone.dev.cluster import ClusterInfo
from qbackbone.dev.images import image_names
from qbackbone.dev.realnode_host import (
    CNI_BIN_DIR,
    CNI_PLUGINS,
    NodeLayout,
    NodeSettings,
    cgroups_writable,
    clean_up,
    host_ip,
    running_kubelets,
    write_node_files,
)

# Keep in step with the defaults of hack/build-node.sh (the cache key is built the same way).
CONTAINERD_VERSION = "v2.4.2"
RUNC_VERSION = "v1.5.3"
CRICTL_VERSION = "v1.36.0"
NODE_CACHE_KEY = (f"{K8S_VERSION}_containerd-{CONTAINERD_VERSION}_runc-{RUNC_VERSION}"
                  f"_crictl-{CRICTL_VERSION}")
REQUIRED = ("kubelet", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr", "runc",
            "crictl", "pause")
PROCESS_NAME = "real-node"
NODE_ROLE_BINDING = "qbackbone-dev:system:nodes"
QPU_HOST_LABEL = "qbackbone.io/qpu-host"  # the chart's device-plugin DaemonSet selects it


class RealNodeError(RuntimeError):
    """The real node cannot run here, or did not come up."""


def default_node_bin_dir() -> Path:
    """The bin directory ``hack/build-node.sh`` fills for the pinned versions."""
    return cache_root() / "node" / NODE_CACHE_KEY / "bin"


def find_node_bin_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit``, ``$QB_NODE_BIN_DIR`` or the default cache path, if it holds every binary
    and the pause image archive; raises ``RealNodeError`` naming what is absent."""
    bin_dir = Path(explicit or os.environ.get("QB_NODE_BIN_DIR") or default_node_bin_dir())
    missing = [n for n in REQUIRED if not os.access(bin_dir / n, os.X_OK)]
    if not pause_archive(bin_dir).is_file():
        missing.append(str(pause_archive(bin_dir)))
    if missing:
        raise RealNodeError(f"node binaries missing in {bin_dir}: {', '.join(missing)}; "
                            "build them with hack/build-node.sh and/or set QB_NODE_BIN_DIR")
    return bin_dir


def pause_archive(bin_dir: Path) -> Path:
    """The pause image archive built beside ``bin_dir``."""
    return bin_dir.parent / "images" / "pause.oci.tar"


def real_node_unavailable(bin_dir: str | os.PathLike[str] | None = None) -> str | None:
    """None when this host can run a real node now, else the reason (for a fallback to the
    stand-in node agent): root, writable cgroups, binaries, CNI plugins, a non-loopback IP,
    overlayfs, and no other kubelet running."""
    if os.geteuid() != 0:
        return "a real node needs root (the kubelet, containerd and runc manage cgroups, " \
               "mounts and network namespaces)"
    try:
        find_node_bin_dir(bin_dir)
    except RealNodeError as exc:
        return str(exc)
    missing = [p for p in CNI_PLUGINS if not os.access(CNI_BIN_DIR / p, os.X_OK)]
    if missing:
        return (f"CNI plugins missing in {CNI_BIN_DIR}: {', '.join(missing)} "
                "(apt-get install containernetworking-plugins, or run hack/build-node.sh)")
    reason = cgroups_writable()
    if reason:
        return reason
    try:
        host_ip()
    except OSError as exc:
        return str(exc)
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlay file system (containerd's overlayfs snapshotter)"
    others = running_kubelets()
    if others:
        return f"a kubelet already runs on this machine (pid {others[0]}): one real node only"
    return None


@dataclass
class RealNode:
    """A running real node, as started by ``start_real_node``."""

    name: str
    ip: str
    layout: NodeLayout
    bin_dir: Path
    record: procs.ProcessRecord
    proc: subprocess.Popen[bytes] | None
    ready_seconds: float  # Node Ready, counted from the kubelet's start

    def import_image(self, archive: Path) -> str:
        """Import an OCI/Docker image archive into the node (``k8s.io`` namespace)."""
        return import_image(self.layout.root, archive, self.bin_dir)

    def ctr(self, *args: str) -> str:
        """Run ``ctr -n k8s.io ARGS`` against the node's containerd; return its stdout."""
        return run_ctr(self.layout, self.bin_dir, *args)

    def stop(self, grace: float = 30.0) -> None:
        """Stop the node (orderly clean-up in the supervisor); the Node is deleted."""
        procs.stop(self.record, self.proc, grace)


def run_ctr(layout: NodeLayout, bin_dir: Path, *args: str, timeout: float = 60) -> str:
    argv = [str(bin_dir / "ctr"), f"--address={layout.containerd_socket}", "-n", "k8s.io",
            *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RealNodeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return done.stdout


def import_image(node_dir: Path, archive: Path, bin_dir: Path | None = None,
                 timeout: float = 900) -> str:
    """Import an image archive into the containerd of the node in ``node_dir`` (``k8s.io``
    namespace, unpacked for the CRI snapshotter); return ctr's output. The project's image
    (about 280 MiB) takes 10-25 s here."""
    layout = NodeLayout(Path(node_dir))
    bin_dir = bin_dir or Path(NodeSettings.load(layout).bin_dir)
    return run_ctr(layout, bin_dir, "images", "import", "--local", str(archive), timeout=timeout)


def _ensure_node_rbac(api: client.ApiClient) -> None:
    """The API server authorises with RBAC only (no Node authoriser): bind the bootstrap
    ``system:node`` role to the ``system:nodes`` group, as clusters without it do."""
    binding = client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name=NODE_ROLE_BINDING),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                  name="system:node"),
        subjects=[client.RbacV1Subject(kind="Group", name="system:nodes",
                                       api_group="rbac.authorization.k8s.io")])
    try:
        client.RbacAuthorizationV1Api(api).create_cluster_role_binding(binding)
    except ApiException as exc:
        if exc.status != 409:
            raise


def _node_ready(node: client.V1Node) -> bool:
    conditions = {c.type: c.status for c in (node.status and node.status.conditions) or []}
    return conditions.get("Ready") == "True"


def _watch_node(api: client.ApiClient, name: str, done: Callable[[client.V1Node], bool],
                proc: subprocess.Popen[bytes], record: procs.ProcessRecord, timeout: float,
                logs: Callable[[], str]) -> None:
    """Poll the Node until ``done``; stop ``proc`` and raise if it exits or time runs out."""
    core, deadline = client.CoreV1Api(api), time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RealNodeError(f"{record.name} exited with {proc.returncode}\n{logs()}")
        try:
            if done(core.read_node(name)):
                return
        except ApiException as exc:
            if exc.status != 404:
                raise
        if time.monotonic() > deadline:
            procs.stop(record, proc, 30)
            raise RealNodeError(f"Node {name}: {record.name} not done after {timeout:.0f}s\n"
                                f"{logs()}")
        time.sleep(0.05)


def _logs(info: ClusterInfo) -> str:
    parts = []
    for name in (PROCESS_NAME, "kubelet", "containerd"):
        log = info.log_dir / f"{name}.log"
        parts.append(f"--- last lines of {log}:\n{procs.tail(log, 15)}")
    return "\n".join(parts)


def start_real_node(
    info: ClusterInfo,
    name: str | None = None,
    bin_dir: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
    tied: bool = False,
    taints: Sequence[str] = (),
    labels: Mapping[str, str] | None = None,
) -> RealNode:
    """Start containerd and the kubelet for the cluster ``info`` and wait for the Node Ready.

    ``name``: the Node's name (default: the host name). ``tied``: the node stops (with its
    clean-up) when this process dies. ``taints``: ``key=value:Effect`` registered with the
    Node. Raises ``RealNodeError`` with the reason or the logs' last lines."""
    reason = real_node_unavailable(bin_dir)
    if reason:
        raise RealNodeError(reason)
    bins = find_node_bin_dir(bin_dir)
    layout = NodeLayout(Path(info.state_dir) / "real-node")
    clean_up(layout)  # what a previous node in this state dir may have left
    name = name or socket.gethostname().lower()
    kubelet_port, healthz_port = procs.free_port(), procs.free_port()
    settings = NodeSettings(name=name, ip=host_ip(), bin_dir=str(bins), server=info.server,
                            admin_kubeconfig=info.kubeconfig, log_dir=str(info.log_dir),
                            kubelet_port=kubelet_port, healthz_port=healthz_port,
                            pause_image=image_names(pause_archive(bins))[0],
                            taints=list(taints), labels=dict(labels or {}),
                            proxy_healthz_port=procs.free_port(),
                            proxy_metrics_port=procs.free_port())
    write_node_files(settings, layout, Path(info.state_dir) / "pki")
    layout.status.unlink(missing_ok=True)
    api = config.new_client_from_config(config_file=info.kubeconfig)
    try:
        _ensure_node_rbac(api)
        argv = [sys.executable, "-m", "qbackbone.dev.realnode_supervisor",
                f"--node-dir={layout.root}"]
        proc, record = procs.start(PROCESS_NAME, argv, info.log_dir,
                                   die_signal=signal.SIGTERM if tied else None)
        info.processes.append(record)
        info.save()
        _watch_node(api, name, _node_ready, proc, record, timeout, lambda: _logs(info))
        ready_at = time.time()
    finally:
        api.close()
    status = json.loads(layout.status.read_text())
    return RealNode(name, settings.ip, layout, bins, record, proc,
                    round(ready_at - status["kubelet_started"], 2))


def start_device_plugin(
    info: ClusterInfo, node: RealNode, qpus: Sequence[str] = (), config_file: Path | None = None,
    timeout: float = 30.0, tied: bool = False,
) -> tuple[subprocess.Popen[bytes], procs.ProcessRecord]:
    """Run ``python -m qbackbone.deviceplugin`` against the node's kubelet, recorded in the
    cluster state as ``device-plugin``; wait until the Node advertises every QPU. ``qpus``:
    aer QPUs to serve (written to ``<node dir>/qpus.yaml``), or give ``config_file``."""
    if config_file is None:
        config_file = node.layout.root / "qpus.yaml"
        config_file.write_text(yaml.safe_dump({"qpus": [
            {"name": q, "provider": "aer", "backend": "aer_simulator"} for q in qpus]}))
    served = [q["name"] for q in (yaml.safe_load(config_file.read_text()) or {}).get("qpus", [])]
    argv = [sys.executable, "-m", "qbackbone.deviceplugin", f"--config={config_file}",
            f"--plugin-dir={node.layout.device_plugins}", f"--node-name={node.name}"]
    proc, record = procs.start("device-plugin", argv, info.log_dir,
                               die_signal=signal.SIGTERM if tied else None)
    info.processes.append(record)
    info.save()
    def advertised(node: client.V1Node) -> bool:
        allocatable = (node.status.allocatable if node.status else None) or {}
        return all(allocatable.get(f"qpu.qbackbone.io/{q}") == "1" for q in served)

    api = config.new_client_from_config(config_file=info.kubeconfig)
    try:
        _watch_node(api, node.name, advertised, proc, record, timeout,
                    lambda: procs.tail(record.log))
    finally:
        api.close()
    return proc, record


def stop_real_node(info: ClusterInfo, grace: float = 30.0) -> list[str]:
    """Stop the real node recorded in ``info`` (its supervisor cleans up), then remove what
    a node that was killed may have left; return the problems found. Idempotent."""
    for record in info.processes:
        if record.name in (PROCESS_NAME, "device-plugin"):
            procs.stop(record, None, grace)
    return clean_up(NodeLayout(Path(info.state_dir) / "real-node"))
