"""The stack the DRA/kueue figures run on, and what records the timings.

``Stack``: a control plane of its own (API server on the node's address too), the real node
(kubelet, containerd, runc) joined to it, a static timestamp tool imported as an image, the
QPUNodes with a Ready status written here (no operator runs), the publisher
``qbackbone dra-driver`` and the kubelet plugin ``qbackbone dra-driver kubelet-plugin`` as
subprocesses, the device plugin (``start_device_plugin``), and kueue when asked. Everything is
tied to this process (it dies with it) and stopped in reverse order.

``Recorder``: watches pods and ResourceClaims and polls the CDI directory in threads, noting
the wall-clock time each transition is first seen (``time.time()``, the same clock the
container's tool and the CDI spec's mtime use).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from qbackbone.dev import ClusterInfo, LocalCluster, find_bin_dir
from qbackbone.dev import procs as devprocs
from qbackbone.dev.crds import install_crds
from qbackbone.dev.images import write_oci_archive
from qbackbone.dev.kueue import KueueInfo, start_kueue, stop_kueue
from qbackbone.dev.realnode import (
    RealNode,
    real_node_unavailable,
    start_device_plugin,
    start_real_node,
)
from qbackbone.dev.realnode_host import host_ip
from qbackbone.dev.waiting import wait_for
from qbackbone.dra.attributes import DRIVER
from qbackbone.dra.classes import qpu_class_name
from qbackbone.dra.kubeletplugin import Paths

REPO = Path(__file__).resolve().parents[2]
NODE = "qb-bench-node"
CDI_DIR = Path("/var/run/cdi")  # one of containerd 2.x's default CDI spec directories
IMAGE = "localhost/qbackbone/qbstamp:1"
BENCH_LABEL = "qbackbone.io/bench"
KUEUE_GATE = "kueue.x-k8s.io/admission"
QG, QV = "qbackbone.io", "v1alpha1"
RG, RV = "resource.k8s.io", "v1"
# A static tool: notes CLOCK_REALTIME when the container's process starts, sleeps argv[1]
# seconds (fractions allowed), and writes start, end and the QPU the container was given
# (QBACKBONE_QPU, from the device plugin's Allocate or the claim's CDI device) to the
# termination log.
STAMP_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}
int main(int argc, char **argv) {
    double start = now();
    const char *qpu = getenv("QBACKBONE_QPU");
    printf("start=%.6f qpu=%s\n", start, qpu ? qpu : "");
    fflush(stdout);
    if (argc > 1) {
        double s = atof(argv[1]);
        struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        nanosleep(&ts, NULL);
    }
    double end = now();
    FILE *msg = fopen("/dev/termination-log", "w");
    if (msg) {
        fprintf(msg, "start=%.6f\nend=%.6f\nqpu=%s\n", start, end, qpu ? qpu : "");
        fclose(msg);
    }
    return 0;
}
"""


def qpunode_body(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """An ideal aer QPU hosted on the node, and the Ready status the operator would write
    (as tests/dra/test_publisher_cluster.py's ``status`` builds it)."""
    spec = {"backend": {"provider": "aer", "name": "aer_simulator"}, "qubits": 8,
            "nodeName": NODE}
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    status = {"conditions": [{"type": "Ready", "status": "True", "reason": "Calibrated",
                              "message": "benchmark", "lastTransitionTime": now}],
              "deviceQubits": 8, "derivedMaxDepth": 40}
    return spec, status


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@dataclass
class Stack:
    """The running stack (see the module docstring)."""

    info: ClusterInfo
    node: RealNode
    api: client.ApiClient
    qpus: tuple[str, ...]
    logs: Path
    kueue: KueueInfo | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def namespace(self, name: str) -> str:
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        wait_for(lambda: self.core.read_namespaced_service_account("default", name), 30,
                 what=f"default ServiceAccount in {name}")
        return name

    def create(self, namespace: str, plural: str, body: dict[str, Any],
               group: str = RG, version: str = RV) -> None:
        self.custom.create_namespaced_custom_object(group, version, namespace, plural, body)

    def create_cluster(self, plural: str, body: dict[str, Any], group: str,
                       version: str) -> None:
        self.custom.create_cluster_custom_object(group, version, plural, body)

    def start_kueue(self) -> KueueInfo:
        t0 = time.monotonic()
        self.kueue = start_kueue(self.info, tied=True, device_classes=(
            DRIVER, *(qpu_class_name(q) for q in self.qpus)))
        self.timings["kueue_start_seconds"] = round(time.monotonic() - t0, 2)
        return self.kueue

    def versions(self) -> dict[str, str]:
        node: Any = self.core.read_node(NODE)
        info = node.status.node_info
        return {"kubelet": str(info.kubelet_version),
                "container_runtime": str(info.container_runtime_version),
                "kernel": str(info.kernel_version), "os_image": str(info.os_image)}


def build_image(node: RealNode, work: Path) -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise SystemExit("gcc is needed to compile the benchmark image's static binary")
    (work / "qbstamp.c").write_text(STAMP_C)
    subprocess.run([gcc, "-O2", "-static", "-o", str(work / "qbstamp"),
                    str(work / "qbstamp.c")], check=True)
    archive = work / "qbstamp.oci.tar"
    write_oci_archive(archive, IMAGE, {"qbstamp": work / "qbstamp"}, entrypoint=["/qbstamp"])
    node.import_image(archive)
    return IMAGE


def _dra_driver(info: ClusterInfo, name: str, args: Sequence[str]
                ) -> tuple[subprocess.Popen[bytes], devprocs.ProcessRecord]:
    """``qbackbone dra-driver ARGS`` as tests/dra/test_kubelet_plugin_real_node.py runs it,
    but tied to this process and recorded in the cluster's state."""
    # The interpreter first: procs.stop recognises a process by its argv[0] in /proc (a
    # console script's cmdline starts with the interpreter, not the script).
    argv = [sys.executable, str(Path(sys.executable).parent / "qbackbone"), "dra-driver",
            *args, f"--kubeconfig={info.kubeconfig}"]
    proc, record = devprocs.start(name, argv, info.log_dir, die_signal=signal.SIGTERM)
    info.processes.append(record)
    info.save()
    return proc, record


def published(custom: client.CustomObjectsApi) -> set[str]:
    """The QPUs of the driver's devices in every ResourceSlice."""
    found = custom.list_cluster_custom_object(RG, RV, "resourceslices",
                                              field_selector=f"spec.driver={DRIVER}")
    return {d["attributes"]["qpu"]["string"] for s in _dict(found).get("items", [])
            for d in s["spec"].get("devices") or []}


@contextlib.contextmanager
def running_stack(state: Path, qpus: Sequence[str], device_plugin_qpus: Sequence[str],
                  say: Callable[[str], None] = print) -> Iterator[Stack]:
    """Bring the stack up in ``state`` (see the module docstring); stop it on exit."""
    reason = real_node_unavailable()
    if reason:
        raise SystemExit(f"no real node on this host: {reason}")
    timings: dict[str, float] = {}
    with contextlib.ExitStack() as undo:
        t0 = time.monotonic()
        local = LocalCluster(state / "cluster", find_bin_dir(), tied=True, node_ip=host_ip())
        info = local.start()
        undo.callback(local.stop)
        timings["control_plane_seconds"] = round(time.monotonic() - t0, 2)
        say(f"control plane up in {timings['control_plane_seconds']} s; logs {info.log_dir}")

        created_cdi = not CDI_DIR.exists()
        CDI_DIR.mkdir(parents=True, exist_ok=True)  # before containerd starts watching it
        if created_cdi:
            undo.callback(lambda: CDI_DIR.rmdir() if not any(CDI_DIR.iterdir()) else None)
        t0 = time.monotonic()
        node = start_real_node(info, name=NODE, tied=True, timeout=90)
        undo.callback(node.stop)
        timings["real_node_seconds"] = round(time.monotonic() - t0, 2)
        say(f"real node {NODE} Ready in {timings['real_node_seconds']} s")

        api = config.new_client_from_config(config_file=info.kubeconfig)
        undo.callback(api.close)
        work = state / "image"
        work.mkdir(parents=True, exist_ok=True)
        build_image(node, work)

        install_crds(info, api, REPO / "crds")
        custom = client.CustomObjectsApi(api)
        for name in qpus:
            spec, status = qpunode_body(name)
            custom.create_cluster_custom_object(QG, QV, "qpunodes", {
                "apiVersion": f"{QG}/{QV}", "kind": "QPUNode", "metadata": {"name": name},
                "spec": spec})
            custom.patch_cluster_custom_object_status(QG, QV, "qpunodes", name,
                                                      {"status": status})

        stack = Stack(info, node, api, tuple(qpus), info.log_dir, timings=timings)

        def stop_proc(proc: subprocess.Popen[bytes], record: devprocs.ProcessRecord) -> None:
            devprocs.stop(record, proc, 30)

        paths = Paths(node.layout.kubelet_root)
        plugin = _dra_driver(info, "dra-kubelet-plugin", [
            "kubelet-plugin", f"--kubelet-root={paths.kubelet_root}", f"--node-name={NODE}",
            f"--cdi-dir={CDI_DIR}"])
        undo.callback(stop_proc, *plugin)
        plugin_log = Path(plugin[1].log)
        wait_for(lambda: "registered with the kubelet" in plugin_log.read_text()
                 or plugin[0].poll() is not None, 60, what="the kubelet plugin registered")
        if plugin[0].poll() is not None:
            raise SystemExit(f"the kubelet plugin exited:\n{plugin_log.read_text()[-3000:]}")
        publisher = _dra_driver(info, "dra-publisher", ["--resync=5"])
        undo.callback(stop_proc, *publisher)
        wait_for(lambda: set(qpus) <= published(custom), 60, what="every QPU published")
        classes = {qpu_class_name(q) for q in qpus} | {DRIVER}
        wait_for(lambda: classes <= {c["metadata"]["name"] for c in _dict(
            custom.list_cluster_custom_object(RG, RV, "deviceclasses")).get("items", [])},
            60, what="the DeviceClasses")
        say(f"DRA driver: {', '.join(qpus)} published, classes {', '.join(sorted(classes))}")

        dp_proc, dp_record = start_device_plugin(info, node, qpus=list(device_plugin_qpus),
                                                 tied=True)
        undo.callback(stop_proc, dp_proc, dp_record)
        say(f"device plugin: {', '.join(device_plugin_qpus)} advertised")

        def kueue_down() -> None:
            if stack.kueue is not None:
                stop_kueue(info, stack.kueue)

        undo.callback(kueue_down)
        yield stack


@dataclass
class Recorder:
    """First-seen wall-clock times of pod, claim and CDI transitions (see module docstring).

    ``pods[(ns, name)]``: ``added``, ``gated``, ``ungated`` (first event without kueue's gate
    after one with it), ``bound`` (spec.nodeName), ``running`` (phase), ``succeeded``,
    ``failed``; ``claims[(ns, pod)]``: ``uid``, ``created``, ``allocated``, ``reserved``;
    ``cdi[claim uid]``: ``mtime`` (when the plugin wrote the spec: prepared) and ``seen``."""

    api: client.ApiClient
    pods: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    claims: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    cdi: dict[str, dict[str, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopping: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def start(self) -> Recorder:
        core, custom = client.CoreV1Api(self.api), client.CustomObjectsApi(self.api)
        self.threads = [
            threading.Thread(target=self._watch, daemon=True, args=(
                core.list_pod_for_all_namespaces, {"label_selector": BENCH_LABEL},
                self._pod_event)),
            threading.Thread(target=self._watch, daemon=True, args=(
                custom.list_cluster_custom_object, {"group": RG, "version": RV,
                                                    "plural": "resourceclaims"},
                self._claim_event)),
            threading.Thread(target=self._poll_cdi, daemon=True)]
        for thread in self.threads:
            thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()

    def _watch(self, lister: Callable[..., Any], kwargs: Mapping[str, Any],
               handle: Callable[[str, Any, float], None]) -> None:
        version: str | None = None
        while not self.stopping.is_set():
            w = watch.Watch()
            try:
                extra = {"resource_version": version} if version else {}
                for event in w.stream(lister, timeout_seconds=20, **kwargs, **extra):
                    seen = time.time()
                    obj = event["object"]
                    meta = obj["metadata"] if isinstance(obj, dict) else obj.metadata
                    version = (meta.get("resourceVersion") if isinstance(meta, dict)
                               else meta.resource_version) or version
                    handle(str(event["type"]), obj, seen)
                    if self.stopping.is_set():
                        break
            except ApiException as exc:
                if exc.status == 410:
                    version = None
                else:
                    time.sleep(0.2)
            except Exception:  # a dropped connection: watch again from where it was
                time.sleep(0.2)
            finally:
                w.stop()

    def _first(self, record: dict[str, Any], key: str, value: Any) -> None:
        if key not in record:
            record[key] = value

    def _pod_event(self, kind: str, pod: Any, seen: float) -> None:
        key = (pod.metadata.namespace, pod.metadata.name)
        gates = [g.name for g in (pod.spec.scheduling_gates or [])]
        phase = pod.status.phase if pod.status else None
        with self.changed:
            record = self.pods.setdefault(key, {"uid": pod.metadata.uid})
            self._first(record, "added", seen)
            if KUEUE_GATE in gates:
                self._first(record, "gated", seen)
            elif "gated" in record:
                self._first(record, "ungated", seen)
            if pod.spec.node_name:
                self._first(record, "bound", seen)
            if phase in ("Running", "Succeeded", "Failed"):
                self._first(record, phase.lower(), seen)
            if kind == "DELETED":
                record["deleted"] = seen
            record["last"] = pod
            self.changed.notify_all()

    def _claim_event(self, kind: str, claim: Any, seen: float) -> None:
        meta, status = claim["metadata"], claim.get("status") or {}
        owners = [o["name"] for o in meta.get("ownerReferences") or [] if o["kind"] == "Pod"]
        if not owners:
            return
        with self.changed:
            record = self.claims.setdefault((meta["namespace"], owners[0]),
                                            {"uid": meta["uid"], "name": meta["name"]})
            self._first(record, "created", seen)
            if status.get("allocation"):
                self._first(record, "allocated", seen)
                results = status["allocation"].get("devices", {}).get("results") or []
                self._first(record, "devices", [r["device"] for r in results])
            if status.get("reservedFor"):
                self._first(record, "reserved", seen)
            if kind == "DELETED":
                record["deleted"] = seen
            self.changed.notify_all()

    def _poll_cdi(self) -> None:
        prefix, suffix = f"{DRIVER}-", ".json"
        while not self.stopping.is_set():
            try:
                entries = list(os.scandir(CDI_DIR))
            except OSError:
                entries = []
            now = time.time()
            for entry in entries:
                if not (entry.name.startswith(prefix) and entry.name.endswith(suffix)):
                    continue
                uid = entry.name[len(prefix):-len(suffix)]
                if uid in self.cdi:
                    continue
                try:
                    mtime = entry.stat().st_mtime
                except OSError:
                    continue
                with self.changed:
                    self.cdi[uid] = {"mtime": mtime, "seen": now}
            time.sleep(0.01)

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Wait (on the recorder's events) until ``predicate()`` (called under the lock) is
        truthy; return it."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                value = predicate()
                if value:
                    return value
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
                self.changed.wait(min(left, 0.5))

    def pod(self, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.pods.get((namespace, name), {}))

    def claim(self, namespace: str, pod: str) -> dict[str, Any]:
        with self.lock:
            return dict(self.claims.get((namespace, pod), {}))


def termination(pod: Any) -> dict[str, str]:
    """The tool's termination message (start, end, qpu) of a finished pod."""
    statuses = (pod.status.container_statuses or []) if pod.status else []
    for status in statuses:
        terminated = status.state.terminated if status.state else None
        if terminated and terminated.message:
            return dict(line.split("=", 1) for line in terminated.message.splitlines()
                        if "=" in line)
    return {}


def delete_pods(stack: Stack, namespace: str, names: Sequence[str], rec: Recorder,
                timeout: float = 120) -> None:
    """Delete the pods and wait until they and their generated claims are gone (the QPU is
    free again for the next pod)."""
    for name in names:
        with contextlib.suppress(ApiException):
            stack.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)

    def gone() -> bool:
        pods: list[Any] = stack.core.list_namespaced_pod(namespace,
                                                         label_selector=BENCH_LABEL).items
        claims = _dict(stack.custom.list_namespaced_custom_object(
            RG, RV, namespace, "resourceclaims")).get("items", [])
        return not [p for p in pods if p.metadata.name in names] and not claims

    wait_for(gone, timeout, interval=0.1, what=f"pods of {namespace} and their claims gone")
