"""The host side of a real node (``realnode.py``): where its files live, the configuration of
containerd, the kubelet and CNI, its certificates, and the clean-up of what runc, containerd
and the kubelet leave on the host (shims, mounts, cgroups, the bridge).

This host's quirks (DESIGN.md section 7): cgroup v1 (``failCgroupV1: false``, ``cgroupfs``),
no CAP_SYS_RESOURCE (containerd's ``restrict_oom_score_adj``), no registry (the sandbox image
is imported, never pulled), and the node IP must not be loopback.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from qbackbone.dev.kubeconfig import write_kubeconfig
from qbackbone.dev.pki import CertificateAuthority, KeyPair
from qbackbone.dev.realnode_proxy import write_proxy_files

CNI_BIN_DIR = Path("/usr/lib/cni")  # Debian's containernetworking-plugins
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
POD_SUBNET = "10.88.0.0/16"  # beside the service range 10.0.0.0/24 and the host's network
BRIDGE = "qbb0"
CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBEPODS = "kubepods"  # the kubelet's cgroup for pods (cgroupsPerQOS, cgroupfs driver)
# The shims' sockets: containerd's socket_dir must be short (42 characters), so not under
# the state dir. Paths the kubelet and containerd use whatever their root dirs: the
# device-plugin dir (k8s.io/kubelet deviceplugin/v1beta1 DevicePluginPath), the kubelet's
# container log links, libcni's result cache.
RUN_DIR = Path("/run/qbackbone")
KUBELET_ROOTS = Path("/var/lib/qbackbone")
SHIM_SOCKETS = RUN_DIR / "shims"
DEVICE_PLUGIN_DIR = Path("/var/lib/kubelet/device-plugins")
CONTAINER_LOG_LINKS = Path("/var/log/containers")
CNI_CACHE = Path("/var/lib/cni/results")


class NodeLayout:
    """Every path of one real node, under ``<cluster state dir>/real-node``. containerd's
    root (images, snapshots) is kept between starts; its state (tasks, network namespaces),
    runc's root and the kubelet's root are per start."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings, self.status = root / "node.json", root / "status.json"
        self.pki = root / "pki"
        self.containerd_root = root / "containerd" / "root"
        self.containerd_state = root / "containerd" / "state"
        # Unix socket paths are limited to 108 bytes: under /run, keyed by the node dir.
        key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
        self.sockets = RUN_DIR / f"node-{key}"
        self.containerd_socket = self.sockets / "containerd.sock"
        self.containerd_config = root / "containerd" / "config.toml"
        self.crictl_config = root / "crictl.yaml"
        self.runc_root = root / "runc"
        # The kubelet keeps sockets under its root dir (pod-resources): short as well.
        self.kubelet_root = KUBELET_ROOTS / f"kubelet-{key}"
        self.device_plugins = DEVICE_PLUGIN_DIR
        self.kubelet_config = root / "kubelet-config.yaml"
        self.kubelet_kubeconfig = root / "kubelet.kubeconfig"
        self.pod_logs = root / "pod-logs"
        self.cni_conf, self.cni_ipam = root / "cni" / "net.d", root / "cni" / "ipam"


@dataclass
class NodeSettings:
    """What the node supervisor needs to start containerd and the kubelet (``node.json``)."""

    name: str
    ip: str
    bin_dir: str
    server: str
    admin_kubeconfig: str
    log_dir: str
    kubelet_port: int
    healthz_port: int
    pause_image: str  # the sandbox image, imported from build-node.sh's archive
    snapshotter: str = "overlayfs"
    taints: list[str] = field(default_factory=list)  # key=value:Effect
    labels: dict[str, str] = field(default_factory=dict)
    proxy_healthz_port: int = 0  # kube-proxy's (0: no kube-proxy)
    proxy_metrics_port: int = 0

    def save(self, layout: NodeLayout) -> None:
        layout.settings.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, layout: NodeLayout) -> NodeSettings:
        return cls(**json.loads(layout.settings.read_text()))


def host_ip() -> str:
    """The IPv4 address of the interface of the default route (a node IP must not be
    loopback); raises ``OSError`` when there is none."""
    iface = None
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 2 and fields[1] == "00000000":
            iface = fields[0]
            break
    if iface is None:
        raise OSError("no default route: cannot choose a node IP that is not loopback")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("256s", iface.encode()[:15])
        answer = fcntl.ioctl(sock.fileno(), 0x8915, request)  # SIOCGIFADDR
    return socket.inet_ntoa(answer[20:24])


class _LoadedAuthority(CertificateAuthority):
    """The cluster's CA read back from its pki dir; certificates are written to ``out``."""

    def __init__(self, ca_dir: Path, out: Path) -> None:  # no super(): it makes a new CA
        self.directory = out
        self.pair = KeyPair(ca_dir / "ca.crt", ca_dir / "ca.key")
        self._cert = x509.load_pem_x509_certificate(self.pair.cert_pem())
        key = serialization.load_pem_private_key(self.pair.key_pem(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TypeError(f"{self.pair.key}: expected an EC key")
        self._key = key


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(str(value))  # a TOML basic string is a JSON string


def containerd_toml(settings: NodeSettings, layout: NodeLayout) -> str:
    """containerd 2.4 configuration (version 4; no imports): own root, state and socket; CRI
    with runc (cgroupfs), the imported pause image, CNI from Debian's plugins; NRI off (its
    socket is global)."""
    runc = str(Path(settings.bin_dir) / "runc")
    tables: dict[str, dict[str, object]] = {
        "plugins.'io.containerd.server.v1.grpc'": {"address": str(layout.containerd_socket)},
        "plugins.'io.containerd.server.v1.ttrpc'": {
            "address": f"{layout.containerd_socket}.ttrpc"},
        "plugins.'io.containerd.internal.v1.opt'": {"path": str(layout.root / "opt")},
        "plugins.'io.containerd.shim.v1.manager'": {"socket_dir": str(SHIM_SOCKETS)},
        "plugins.'io.containerd.nri.v1.nri'": {"disable": True},
        "plugins.'io.containerd.cri.v1.images'": {"snapshotter": settings.snapshotter},
        "plugins.'io.containerd.cri.v1.images'.pinned_images": {"sandbox": settings.pause_image},
        "plugins.'io.containerd.cri.v1.runtime'": {
            "restrict_oom_score_adj": True,  # no CAP_SYS_RESOURCE: never lower a score
            "netns_mounts_under_state_dir": True,
            "enable_selinux": False,
        },
        "plugins.'io.containerd.cri.v1.runtime'.containerd": {"default_runtime_name": "runc"},
        "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc": {
            "runtime_type": "io.containerd.runc.v2",
            "disable_pause_image_pull": True,
        },
        "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options": {
            "BinaryName": runc, "Root": str(layout.runc_root), "SystemdCgroup": False,
        },
        "plugins.'io.containerd.cri.v1.runtime'.cni": {
            "bin_dirs": [str(CNI_BIN_DIR)], "conf_dir": str(layout.cni_conf), "max_conf_num": 1,
        },
    }
    lines = ["version = 4", "imports = []", f"root = {_toml(layout.containerd_root)}",
             f"state = {_toml(layout.containerd_state)}", "oom_score = 0", ""]
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"  {k} = {_toml(v)}" for k, v in values.items()]
        lines.append("")
    return "\n".join(lines)


def kubelet_config(settings: NodeSettings, layout: NodeLayout, ca_cert: Path,
                   serving: KeyPair) -> dict[str, object]:
    """The KubeletConfiguration: cgroup v1 with cgroupfs, x509 + webhook authentication and
    webhook authorisation (the API server needs a kubelet client certificate for logs/exec),
    its own ports, no cluster DNS."""
    taints = []
    for spec in settings.taints:
        key_value, _, effect = spec.partition(":")
        key, _, value = key_value.partition("=")
        taints.append({"key": key, "value": value, "effect": effect or "NoSchedule"})
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "address": settings.ip,
        "port": settings.kubelet_port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": settings.healthz_port,
        "tlsCertFile": str(serving.cert),
        "tlsPrivateKeyFile": str(serving.key),
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(ca_cert)}},
        "authorization": {"mode": "Webhook"},
        "podLogsDir": str(layout.pod_logs),
        "clusterDomain": "cluster.local",
        "resolvConf": "/etc/resolv.conf",
        "oomScoreAdj": 0,  # no CAP_SYS_RESOURCE: the kubelet cannot lower its own score
        "serializeImagePulls": False,
        "nodeStatusReportFrequency": "10s",
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "registerWithTaints": taints,
    }


def cni_conflist(layout: NodeLayout) -> dict[str, object]:
    """A bridge network with host-local addresses (its leases under the node dir), portmap
    for hostPorts; no masquerading (pods need no way out: there is no registry)."""
    return {
        "cniVersion": "1.0.0",
        "name": "qbackbone-dev",
        "plugins": [
            {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
             "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": POD_SUBNET}]],
                      "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(layout.cni_ipam)}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def write_node_files(settings: NodeSettings, layout: NodeLayout, cluster_pki: Path) -> None:
    """Certificates (client ``system:node:<name>`` in ``system:nodes``, serving for the node's
    name and IP) signed by the cluster's CA, the kubelet's kubeconfig and configuration, the
    containerd configuration and the CNI network; then ``node.json``."""
    for d in (layout.pki, layout.containerd_root, layout.containerd_state.parent, layout.sockets,
              layout.kubelet_root, layout.pod_logs, layout.cni_conf, layout.cni_ipam):
        d.mkdir(parents=True, exist_ok=True)
    layout.pki.chmod(0o700)
    ca = _LoadedAuthority(cluster_pki, layout.pki)
    client = ca.issue("kubelet-client", f"system:node:{settings.name}",
                      organizations=("system:nodes",))
    serving = ca.issue("kubelet-serving", settings.name,
                       hosts=(settings.name, settings.ip, "localhost", "127.0.0.1"),
                       client=False, server=True)
    write_kubeconfig(layout.kubelet_kubeconfig, settings.server, ca.pair.cert_pem(), client,
                     f"system:node:{settings.name}", "qbackbone-dev")
    config = kubelet_config(settings, layout, ca.pair.cert, serving)
    layout.kubelet_config.write_text(yaml.safe_dump(config, sort_keys=False))
    layout.containerd_config.write_text(containerd_toml(settings, layout))
    endpoint = f"unix://{layout.containerd_socket}"
    layout.crictl_config.write_text(yaml.safe_dump(
        {"runtime-endpoint": endpoint, "image-endpoint": endpoint, "timeout": 10}))
    (layout.cni_conf / "10-qbackbone.conflist").write_text(
        json.dumps(cni_conflist(layout), indent=2) + "\n")
    if settings.proxy_healthz_port:
        write_proxy_files(layout.root, ca, settings.server, settings.name, POD_SUBNET,
                          settings.proxy_healthz_port, settings.proxy_metrics_port)
    settings.save(layout)


# --- clean-up ----------------------------------------------------------------------------------

_MNT_DETACH = 2
_LIBC = ctypes.CDLL(None, use_errno=True)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root``, deepest first (from /proc/self/mountinfo)."""
    prefix = str(root.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].encode().decode("unicode_escape")  # \040 for spaces
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(set(found), key=lambda p: p.count("/"), reverse=True)


def unmount_all(root: Path) -> list[str]:
    """Lazily unmount everything below ``root`` (pod volumes, rootfs, network namespaces);
    return what could not be unmounted."""
    failed = []
    for point in mounts_under(root):
        if _LIBC.umount2(point.encode(), _MNT_DETACH) != 0:
            failed.append(f"{point}: {os.strerror(ctypes.get_errno())}")
    return failed


def _kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _pids_with(predicate: Callable[[list[bytes]], bool]) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if predicate(argv):
            pids.append(int(entry.name))
    return pids


def kill_shims(containerd_socket: Path) -> list[int]:
    """SIGKILL the runc shims of the containerd listening on ``containerd_socket``."""
    address = str(containerd_socket).encode()
    pids = _pids_with(lambda argv: argv[0].endswith(b"containerd-shim-runc-v2")
                      and address in argv)
    _kill(pids)
    return pids


def _cgroup_dirs() -> list[Path]:
    """The kubelet's pod cgroup in every hierarchy (v1 controllers, or the v2 root)."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        candidates = [CGROUP_ROOT / KUBEPODS]
    else:
        candidates = [h / KUBEPODS for h in CGROUP_ROOT.iterdir() if h.is_dir()]
    return [c for c in candidates if c.is_dir()]


def remove_pod_cgroups(timeout: float = 5.0) -> list[str]:
    """Kill what still runs in the kubelet's pod cgroups and remove them, leaves first;
    return the cgroups that could not be removed."""
    left: list[str] = []
    for top in _cgroup_dirs():
        below = sorted((d for d in top.rglob("*") if d.is_dir()),
                       key=lambda d: len(d.parts), reverse=True)
        dirs = [*below, top]
        for d in dirs:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    pids = [int(p) for p in (d / "cgroup.procs").read_text().split()]
                except OSError:
                    pids = []
                _kill(pids)
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        left.append(f"{d}: {exc.strerror}")
                        break
                    time.sleep(0.05)
    return left


def cgroups_writable() -> str | None:
    """None when this process can create cgroups (what the kubelet and runc do), else why."""
    probe_name = f"qbackbone-probe-{os.getpid()}"
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        hierarchies = [CGROUP_ROOT]
    else:
        hierarchies = [CGROUP_ROOT / c for c in ("cpu", "memory", "pids")]
    for hierarchy in hierarchies:
        probe = hierarchy / probe_name
        try:
            probe.mkdir()
            probe.rmdir()
        except OSError as exc:
            return f"cannot create cgroups in {hierarchy}: {exc.strerror}"
    return None


def running_kubelets() -> list[int]:
    """Pids of the kubelets running on this machine (one real node per machine)."""
    return _pids_with(lambda argv: Path(argv[0].decode(errors="replace")).name == "kubelet")


def clean_up(layout: NodeLayout) -> list[str]:
    """Remove what a node leaves behind once containerd and the kubelet are gone: shims, pod
    cgroups, mounts under the node dir, the bridge, per-start state. Idempotent; returns the
    problems left (nothing is deleted below a mount that could not be unmounted)."""
    problems = [f"killed shim {pid}" for pid in kill_shims(layout.containerd_socket)]
    problems += remove_pod_cgroups()
    problems += unmount_all(layout.root) + unmount_all(layout.kubelet_root)
    if Path(f"/sys/class/net/{BRIDGE}").exists():
        subprocess.run(["ip", "link", "delete", BRIDGE], check=False, capture_output=True)
    if not mounts_under(layout.root) and not mounts_under(layout.kubelet_root):
        for d in (layout.containerd_state, layout.runc_root, layout.kubelet_root,
                  layout.cni_ipam):
            shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(layout.sockets, ignore_errors=True)  # containerd is gone: its sockets too
    if SHIM_SOCKETS.is_dir():  # sockets of shims that were killed
        for sock in SHIM_SOCKETS.iterdir():
            sock.unlink(missing_ok=True)
    if CNI_CACHE.is_dir():  # results of sandboxes never torn down (netns under the node dir)
        for result in CNI_CACHE.iterdir():
            with contextlib.suppress(OSError):
                if str(layout.root) in result.read_text(errors="replace"):
                    result.unlink()
    for name in ("kubelet.sock", "kubelet_internal_checkpoint"):
        (DEVICE_PLUGIN_DIR / name).unlink(missing_ok=True)
    if CONTAINER_LOG_LINKS.is_dir():
        for link in CONTAINER_LOG_LINKS.iterdir():
            if link.is_symlink() and os.readlink(link).startswith(f"{layout.pod_logs}/"):
                link.unlink()
    for d in (SHIM_SOCKETS, SHIM_SOCKETS.parent, KUBELET_ROOTS, DEVICE_PLUGIN_DIR,
              DEVICE_PLUGIN_DIR.parent,
              CONTAINER_LOG_LINKS, CNI_CACHE, CNI_CACHE.parent):
        with contextlib.suppress(OSError):
            d.rmdir()  # only when empty: nothing of anyone else's
    return problems
