"""A local control plane: etcd, kube-apiserver, kube-controller-manager and kube-scheduler.

Started the way controller-runtime's envtest starts its API server (own CA, serving cert,
service-account key pair, an admin client certificate, RBAC authorisation, loopback ports),
plus the controller manager and scheduler so that garbage collection and scheduling are real.
Everything lives in one state directory: certificates, kubeconfigs, etcd data, logs and a
``state.json`` that lets another process (``qbackbone dev cluster down``) stop the cluster.
"""

from __future__ import annotations

import json
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qbackbone.dev import procs
from qbackbone.dev.binaries import find_bin_dir
from qbackbone.dev.kubeconfig import write_kubeconfig
from qbackbone.dev.pki import CertificateAuthority, KeyPair, service_account_keys
from qbackbone.dev.waiting import WaitTimeout, wait_for

SERVICE_CIDR = "10.0.0.0/24"
_APISERVER_HOSTS = (
    "127.0.0.1", "localhost", "10.0.0.1", "kubernetes", "kubernetes.default",
    "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
)
# Stop order: clients of the API server first, etcd last.
_STOP_ORDER = ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd")


class ClusterError(RuntimeError):
    """The local cluster could not start, or is in the wrong state for the request."""


@dataclass
class ClusterInfo:
    """A running local cluster, as recorded in ``<state_dir>/state.json``."""

    state_dir: str
    kubeconfig: str
    server: str
    bin_dir: str
    started_seconds: float = 0.0
    processes: list[procs.ProcessRecord] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return Path(self.state_dir) / "logs"

    def save(self) -> None:
        path = Path(self.state_dir) / "state.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, state_dir: Path) -> ClusterInfo | None:
        """The recorded cluster in ``state_dir``, or None if there is none."""
        path = state_dir / "state.json"
        if not path.exists():
            return None
        raw = json.loads(path.read_text())
        raw["processes"] = [procs.ProcessRecord(**p) for p in raw.get("processes", [])]
        return cls(**raw)

    def alive(self) -> list[procs.ProcessRecord]:
        return [p for p in self.processes if p.alive()]


def _get(url: str, context: ssl.SSLContext | None = None) -> bool:
    with urllib.request.urlopen(url, timeout=2, context=context) as resp:
        return bool(resp.status == 200)


class LocalCluster:
    """Start and stop a control plane whose files live in ``state_dir``."""

    def __init__(self, state_dir: Path, bin_dir: Path | None = None,
                 tied: bool = False, apiserver_args: Sequence[str] = (),
                 node_ip: str | None = None) -> None:
        """``tied``: the components are killed when this process dies (tests: the state is
        throw-away, and SIGKILL avoids etcd leaving before the API server); otherwise they
        outlive it (``dev cluster up``). ``apiserver_args``: extra kube-apiserver flags, after
        the launcher's own (e.g. an audit log for benchmarks). ``node_ip``: the host's address
        for a real node (``realnode.py``): the API server also listens there and advertises
        it, so pods reach it through the ``kubernetes`` Service (kube-proxy)."""
        self.state_dir = Path(state_dir)
        self.tied = tied
        self.node_ip = node_ip
        self.apiserver_args = list(apiserver_args)
        self.bin_dir = find_bin_dir(bin_dir)
        self.info: ClusterInfo | None = None
        self._admin_context: ssl.SSLContext | None = None
        self._popen: dict[str, subprocess.Popen[bytes]] = {}

    def __enter__(self) -> ClusterInfo:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _bin(self, name: str) -> str:
        return str(self.bin_dir / name)

    def _launch(self, info: ClusterInfo, name: str, args: list[str]) -> None:
        proc, record = procs.start(name, [self._bin(name), *args], info.log_dir,
                                   die_signal=signal.SIGKILL if self.tied else None)
        self._popen[name] = proc
        info.processes.append(record)
        info.save()

    def _wait(self, info: ClusterInfo, name: str, probe: str, timeout: float,
              context: ssl.SSLContext | None = None) -> None:
        def ready() -> bool:
            if self._popen[name].poll() is not None:
                raise ClusterError(f"{name} exited with {self._popen[name].returncode}")
            return _get(probe, context)

        try:
            wait_for(ready, timeout, interval=0.1, what=f"{name} at {probe}")
        except (WaitTimeout, ClusterError) as exc:
            log = info.log_dir / f"{name}.log"
            raise ClusterError(
                f"{name} did not become ready: {exc}\n--- last lines of {log}:\n"
                f"{procs.tail(log)}"
            ) from exc

    def start(self, timeout: float = 90.0) -> ClusterInfo:
        """Start all components and wait until each reports healthy; return the cluster."""
        previous = ClusterInfo.load(self.state_dir)
        if previous is not None and previous.alive():
            raise ClusterError(f"a cluster is already running from {self.state_dir}")
        t0 = time.monotonic()
        pki_dir, etcd_dir, log_dir = (self.state_dir / d for d in ("pki", "etcd", "logs"))
        shutil.rmtree(etcd_dir, ignore_errors=True)
        for d in (pki_dir, etcd_dir, log_dir):
            d.mkdir(parents=True, exist_ok=True)
        etcd_dir.chmod(0o700)

        ca = CertificateAuthority(pki_dir)
        serving = ca.issue("apiserver", "kube-apiserver",
                           hosts=(*_APISERVER_HOSTS, *([self.node_ip] if self.node_ip else [])),
                           client=False, server=True)
        # How the API server authenticates to kubelets (logs, exec, port-forward).
        kubelet_client = ca.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                                  organizations=("system:masters",))
        admin = ca.issue("admin", "qbackbone-admin", organizations=("system:masters",))
        kcm = ca.issue("kube-controller-manager", "system:kube-controller-manager")
        sched = ca.issue("kube-scheduler", "system:kube-scheduler")
        sa_pub, sa_key = service_account_keys(pki_dir)

        etcd_port, peer_port, api_port, kcm_port, sched_port = (
            procs.free_port() for _ in range(5)
        )
        server = f"https://127.0.0.1:{api_port}"
        kubeconfig = self.state_dir / "kubeconfig"
        info = ClusterInfo(str(self.state_dir), str(kubeconfig), server, str(self.bin_dir))
        self.info = info
        try:
            self._start_etcd(info, etcd_dir, etcd_port, peer_port, timeout)
            self._start_apiserver(info, ca.pair, serving, admin, kubelet_client, sa_pub,
                                  sa_key, etcd_port, api_port, timeout)
            write_kubeconfig(kubeconfig, server, ca.pair.cert_pem(), admin,
                             "qbackbone-admin", "qbackbone-dev")
            kcm_config = write_kubeconfig(pki_dir / "kube-controller-manager.kubeconfig",
                                          server, ca.pair.cert_pem(), kcm,
                                          "system:kube-controller-manager", "qbackbone-dev")
            sched_config = write_kubeconfig(pki_dir / "kube-scheduler.kubeconfig", server,
                                            ca.pair.cert_pem(), sched,
                                            "system:kube-scheduler", "qbackbone-dev")
            self._launch(info, "kube-controller-manager", [
                f"--kubeconfig={kcm_config}",
                f"--authentication-kubeconfig={kcm_config}",
                f"--authorization-kubeconfig={kcm_config}",
                "--bind-address=127.0.0.1", f"--secure-port={kcm_port}",
                f"--cert-dir={pki_dir / 'kcm-serving'}",
                "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={sa_key}",
                f"--root-ca-file={ca.pair.cert}",
                f"--cluster-signing-cert-file={ca.pair.cert}",
                f"--cluster-signing-key-file={ca.pair.key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
            ])
            self._launch(info, "kube-scheduler", [
                f"--kubeconfig={sched_config}",
                f"--authentication-kubeconfig={sched_config}",
                f"--authorization-kubeconfig={sched_config}",
                "--bind-address=127.0.0.1", f"--secure-port={sched_port}",
                f"--cert-dir={pki_dir / 'scheduler-serving'}",
                "--leader-elect=false",
            ])
            insecure = ssl._create_unverified_context()  # self-signed serving certs
            self._wait(info, "kube-controller-manager",
                       f"https://127.0.0.1:{kcm_port}/healthz", timeout, insecure)
            self._wait(info, "kube-scheduler",
                       f"https://127.0.0.1:{sched_port}/healthz", timeout, insecure)
            # Pods need their namespace's ServiceAccount (admission): wait for the first one.
            self._wait(info, "kube-controller-manager",
                       f"{server}/api/v1/namespaces/default/serviceaccounts/default", timeout,
                       self._admin_context)
        except BaseException:
            self.stop()
            raise
        info.started_seconds = round(time.monotonic() - t0, 2)
        info.save()
        return info

    def _start_etcd(self, info: ClusterInfo, data_dir: Path, port: int, peer: int,
                    timeout: float) -> None:
        client_url, peer_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer}"
        self._launch(info, "etcd", [
            "--name=default", f"--data-dir={data_dir}",
            f"--listen-client-urls={client_url}", f"--advertise-client-urls={client_url}",
            f"--listen-peer-urls={peer_url}", f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=default={peer_url}",
            "--unsafe-no-fsync=true",  # test data: speed over durability, as envtest does
        ])
        self._wait(info, "etcd", f"{client_url}/health", timeout)

    def _start_apiserver(self, info: ClusterInfo, ca: KeyPair, serving: KeyPair,
                         admin: KeyPair, kubelet_client: KeyPair, sa_pub: Path, sa_key: Path,
                         etcd_port: int, port: int, timeout: float) -> None:
        bind, advertise = ("0.0.0.0", self.node_ip) if self.node_ip else ("127.0.0.1",) * 2
        self._launch(info, "kube-apiserver", [
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            f"--bind-address={bind}", f"--advertise-address={advertise}",
            f"--secure-port={port}",
            f"--cert-dir={Path(info.state_dir) / 'pki'}",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={ca.cert}",
            "--authorization-mode=RBAC",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--service-account-issuer=https://127.0.0.1:{port}",
            f"--service-account-key-file={sa_pub}",
            f"--service-account-signing-key-file={sa_key}",
            "--allow-privileged=true",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--kubelet-client-certificate={kubelet_client.cert}",
            f"--kubelet-client-key={kubelet_client.key}",
            *self.apiserver_args,
        ])
        context = ssl.create_default_context(cafile=str(ca.cert))
        context.load_cert_chain(str(admin.cert), str(admin.key))
        self._admin_context = context
        self._wait(info, "kube-apiserver", f"https://127.0.0.1:{port}/readyz", timeout, context)

    def stop(self, grace: float = 10.0) -> None:
        """Stop every component (scheduler and controller manager first, etcd last)."""
        info = self.info or ClusterInfo.load(self.state_dir)
        if info is None:
            return
        stop_cluster(info, self._popen, grace)
        self._popen.clear()


def stop_cluster(info: ClusterInfo,
                 popen: dict[str, subprocess.Popen[bytes]] | None = None,
                 grace: float = 10.0) -> None:
    """Stop the processes recorded in ``info`` and forget them; logs stay in the state dir."""
    popen = popen or {}
    order = {name: i for i, name in enumerate(_STOP_ORDER)}
    for record in sorted(info.processes, key=lambda r: order.get(r.name, -1)):
        procs.stop(record, popen.get(record.name), grace)
    info.processes = []
    info.save()
    shutil.rmtree(Path(info.state_dir) / "etcd", ignore_errors=True)
