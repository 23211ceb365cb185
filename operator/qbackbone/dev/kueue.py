"""kueue as a host process beside the dev control plane (docs/kueue.md).

The API server of ``LocalCluster`` is a host process, so kueue's webhooks cannot be a Service:
kueue runs on the host too, serves its webhooks on ``https://127.0.0.1:<port>`` with a
certificate of its own (``internalCertManagement`` off), and its CRDs and webhook
configurations are installed with ``clientConfig.url`` pointing there (``kueue_manifests.py``).
The binary and the module source (for those manifests) come from ``hack/build-kueue.sh``.

Start order: CRDs (Established), kueue (``/readyz``), then the webhook configurations, then a
server-side dry run of a queued pod proves the pod webhook answers (it adds kueue's scheduling
gate). Stop order is the reverse: the webhook configurations go first, so that pod creation
never fails closed on a kueue that is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from qbackbone.dev import procs
from qbackbone.dev.binaries import cache_root
from qbackbone.dev.cluster import ClusterInfo
from qbackbone.dev.kueue_manifests import (
    KUEUE_NAMESPACE,
    QPU_DEVICE_CLASS,
    WEBHOOK_CONFIG_NAMES,
    configuration,
    crds,
    excluded_namespaces,
    webhook_configurations,
)
from qbackbone.dev.pki import CertificateAuthority
from qbackbone.dev.waiting import WaitTimeout, wait_for

# Keep in step with hack/build-kueue.sh.
KUEUE_VERSION = "v0.17.1"
SCHEDULING_GATE = "kueue.x-k8s.io/admission"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
# kueue 0.17 reads its metrics serving certificate from this fixed path when
# internalCertManagement is off (cmd/kueue/main.go), even with metrics disabled.
METRICS_CERT_DIR = Path("/etc/kueue/metrics/certs")
_PROCESS = "kueue"
# Popen objects of the kueue processes this process started (to reap them on stop).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class KueueMissing(RuntimeError):
    """The kueue binary or its module source is not there (run ``hack/build-kueue.sh``)."""


class KueueError(RuntimeError):
    """kueue did not start, or its webhooks do not answer."""


@dataclass(frozen=True)
class KueueBinary:
    """The kueue manager binary and the kueue module source its manifests come from."""

    executable: Path
    source: Path


def default_root() -> Path:
    """``hack/build-kueue.sh``'s cache directory for the pinned version."""
    return cache_root() / "kueue" / KUEUE_VERSION


def find_kueue(bin_dir: str | os.PathLike[str] | None = None) -> KueueBinary:
    """The kueue binary in ``bin_dir``, ``$QB_KUEUE_BIN_DIR`` or the cache, and its module
    source (``$QB_KUEUE_SOURCE``, else the ``source`` file the build script writes beside
    ``bin/``); KueueMissing naming what is absent."""
    chosen = Path(bin_dir or os.environ.get("QB_KUEUE_BIN_DIR") or default_root() / "bin")
    executable = chosen / "kueue"
    if not os.access(executable, os.X_OK):
        raise KueueMissing(f"kueue binary missing: {executable}; build it with "
                           "hack/build-kueue.sh (needs Go) and/or set QB_KUEUE_BIN_DIR")
    source_env = os.environ.get("QB_KUEUE_SOURCE")
    record = chosen.parent / "source"
    if source_env:
        source = Path(source_env)
    elif record.is_file():
        source = Path(record.read_text().strip())
    else:
        raise KueueMissing(f"no {record}: run hack/build-kueue.sh or set QB_KUEUE_SOURCE")
    if not (source / "config/components/crd/bases").is_dir():
        raise KueueMissing(f"kueue module source missing at {source} (the Go module cache "
                           "was pruned?): run hack/build-kueue.sh again")
    return KueueBinary(executable, source)


@dataclass
class KueueInfo:
    """A running kueue, as recorded in ``<state_dir>/kueue/kueue.json``."""

    directory: str
    webhook_url: str
    health_url: str
    config: str
    log: str
    excluded_namespaces: list[str]
    started_seconds: float = 0.0
    process: procs.ProcessRecord | None = None

    def save(self) -> None:
        (Path(self.directory) / "kueue.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, state_dir: Path) -> KueueInfo | None:
        """The kueue recorded for the cluster in ``state_dir``, or None."""
        path = state_dir / "kueue" / "kueue.json"
        if not path.is_file():
            return None
        raw = json.loads(path.read_text())
        if raw.get("process"):
            raw["process"] = procs.ProcessRecord(**raw["process"])
        return cls(**raw)


def _kubectl_apply(cluster: ClusterInfo, path: Path) -> None:
    done = subprocess.run([str(Path(cluster.bin_dir) / "kubectl"),
                           f"--kubeconfig={cluster.kubeconfig}", "apply", "--server-side",
                           "--force-conflicts", "--field-manager=qbackbone-dev-kueue",
                           "-f", str(path)],
                          capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise KueueError(f"kubectl apply -f {path} failed: {done.stderr.strip()}")


def _write_yaml(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def _metrics_cert(pem: bytes, key: bytes) -> None:
    """kueue 0.17 needs a certificate pair at METRICS_CERT_DIR (never served: metrics are
    off); one already there is left as it is."""
    if (METRICS_CERT_DIR / "tls.crt").is_file() and (METRICS_CERT_DIR / "tls.key").is_file():
        return
    try:
        METRICS_CERT_DIR.mkdir(parents=True, exist_ok=True)
        (METRICS_CERT_DIR / "tls.crt").write_bytes(pem)
        (METRICS_CERT_DIR / "tls.key").write_bytes(key)
        (METRICS_CERT_DIR / "tls.key").chmod(0o600)
    except OSError as exc:
        raise KueueError(f"kueue {KUEUE_VERSION} reads a certificate from {METRICS_CERT_DIR} "
                         f"and it cannot be written here ({exc}): create tls.crt and tls.key "
                         "there (any pair) and try again") from exc


def _established(ext: client.ApiextensionsV1Api, name: str) -> bool:
    crd: Any = ext.read_custom_resource_definition(name)
    return any(c.type == "Established" and c.status == "True"
               for c in (crd.status.conditions if crd.status else None) or [])


def _ready(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return bool(resp.status == 200)


def probe_pod_webhook(api: client.ApiClient, namespace: str = "default") -> bool:
    """A server-side dry run of a pod naming a queue: True when kueue's pod webhook answered
    and gated it (the webhook calls run on a dry run; nothing is stored)."""
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(generate_name="kueue-probe-",
                                     labels={QUEUE_LABEL: "probe"}),
        spec=client.V1PodSpec(containers=[client.V1Container(name="main", image="none")]))
    created: Any = client.CoreV1Api(api).create_namespaced_pod(namespace, pod, dry_run="All")
    gates = [g.name for g in (created.spec.scheduling_gates or [])]
    return SCHEDULING_GATE in gates


def start_kueue(cluster: ClusterInfo, *, exclude_namespaces: tuple[str, ...] = (),
                device_classes: tuple[str, ...] = (QPU_DEVICE_CLASS,),
                bin_dir: str | os.PathLike[str] | None = None, tied: bool = False,
                timeout: float = 90.0) -> KueueInfo:
    """Install kueue's CRDs and webhooks on ``cluster`` and run kueue against it.

    ``exclude_namespaces``: never managed, beside kube-system and kueue-system (the
    operator's namespace). ``device_classes``: the DeviceClasses whose devices are charged
    as ``qpu.qbackbone.io/qpus``. ``tied``: kueue gets SIGKILL when this process dies (tests).
    The process is recorded in the cluster's state, so ``qbackbone dev cluster down`` stops
    it. KueueMissing / KueueError when it cannot start."""
    binary = find_kueue(bin_dir)
    t0 = time.monotonic()
    directory = Path(cluster.state_dir) / "kueue"
    shutil.rmtree(directory, ignore_errors=True)
    cert_dir = directory / "certs"
    cert_dir.mkdir(parents=True)
    ca = CertificateAuthority(directory, name="qbackbone-dev-kueue-ca")
    serving = ca.issue("webhook", "kueue-webhook", hosts=("127.0.0.1", "localhost"),
                       client=False, server=True)
    shutil.copy(serving.cert, cert_dir / "tls.crt")
    shutil.copy(serving.key, cert_dir / "tls.key")
    _metrics_cert(serving.cert_pem(), serving.key_pem())

    webhook_port, health_port = procs.free_port(), procs.free_port()
    base_url = f"https://127.0.0.1:{webhook_port}"
    excluded = excluded_namespaces(exclude_namespaces)
    config_path = directory / "config.yaml"
    _write_yaml(config_path, [configuration(webhook_port=webhook_port, health_port=health_port,
                                            cert_dir=cert_dir, excluded=excluded,
                                            device_classes=device_classes)])
    ca_pem = ca.pair.cert_pem()
    crd_docs = crds(binary.source, base_url, ca_pem)
    hooks = webhook_configurations(binary.source, base_url, ca_pem, excluded)

    api = config.new_client_from_config(config_file=cluster.kubeconfig)
    info = KueueInfo(str(directory), base_url, f"http://127.0.0.1:{health_port}/readyz",
                     str(config_path), str(Path(cluster.log_dir) / "kueue.log"), excluded)
    try:
        core = client.CoreV1Api(api)
        try:
            core.create_namespace(client.V1Namespace(
                metadata=client.V1ObjectMeta(name=KUEUE_NAMESPACE)))
        except ApiException as exc:
            if exc.status != 409:
                raise
        _kubectl_apply(cluster, _write_yaml(directory / "crds.yaml", crd_docs))
        ext = client.ApiextensionsV1Api(api)
        for crd in crd_docs:
            name = str(crd["metadata"]["name"])
            wait_for(partial(_established, ext, name), 30, what=f"CRD {name} Established")

        env = {**os.environ, "KUBECONFIG": cluster.kubeconfig}
        proc, record = procs.start(_PROCESS, [str(binary.executable),
                                              f"--config={config_path}"],
                                   cluster.log_dir, env=env,
                                   die_signal=signal.SIGKILL if tied else None)
        _CHILDREN[record.pid] = proc
        info.process = record
        info.save()
        cluster.processes.append(record)
        cluster.save()

        def ready() -> str | None:
            # wait_for takes exceptions for "not yet": an exit is a value that ends the wait
            if proc.poll() is not None:
                return f"exited with {proc.returncode}"
            return "ready" if _ready(info.health_url) else None

        try:
            outcome = wait_for(ready, timeout, interval=0.2, what=f"kueue at {info.health_url}")
            if outcome != "ready":
                raise KueueError(f"kueue {outcome}")
            _kubectl_apply(cluster, _write_yaml(directory / "webhooks.yaml", hooks))
            wait_for(lambda: probe_pod_webhook(api), 30, interval=0.2,
                     what="kueue's pod webhook gating a dry-run pod")
        except (WaitTimeout, KueueError) as exc:
            raise KueueError(f"kueue did not become ready: {exc}\n--- last lines of "
                             f"{record.log}:\n{procs.tail(record.log)}") from exc
    except BaseException:
        stop_kueue(cluster, info)
        raise
    finally:
        api.close()
    info.started_seconds = round(time.monotonic() - t0, 2)
    info.save()
    return info


def _delete_webhook_configurations(api: client.ApiClient) -> None:
    admission = client.AdmissionregistrationV1Api(api)
    deletes = {"MutatingWebhookConfiguration":
               admission.delete_mutating_webhook_configuration,
               "ValidatingWebhookConfiguration":
               admission.delete_validating_webhook_configuration}
    for kind, name in WEBHOOK_CONFIG_NAMES.items():
        try:
            deletes[kind](name)
        except ApiException as exc:
            if exc.status != 404:
                raise


def stop_kueue(cluster: ClusterInfo, info: KueueInfo | None = None,
               grace: float = 10.0) -> None:
    """Remove kueue's webhook configurations (pods are admitted without kueue again), then
    stop its process; its CRDs and objects stay. A cluster whose API server is gone: the
    process is stopped all the same."""
    info = info or KueueInfo.load(Path(cluster.state_dir))
    if info is None:
        return
    try:
        api = config.new_client_from_config(config_file=cluster.kubeconfig)
        try:
            _delete_webhook_configurations(api)
        finally:
            api.close()
    except Exception:
        pass
    if info.process is not None:
        procs.stop(info.process, _CHILDREN.pop(info.process.pid, None), grace)
        cluster.processes = [p for p in cluster.processes if p != info.process]
        cluster.save()
        info.process = None
        info.save()
