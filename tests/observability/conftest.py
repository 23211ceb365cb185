"""``qbackbone operator`` with ``--metrics-port`` and ``--log-format json`` on a real control
plane of its own, with its own node agent and two QPUs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from qbackbone.dev import ClusterInfo, LocalCluster
from qbackbone.dev.agentproc import start_node_agent
from qbackbone.dev.crds import install_crds
from qbackbone.dev.procs import free_port, stop
from qbackbone.dev.waiting import wait_for
from tests.operator.kit import REPO, G, V, qpunode, ready_status, serving

NODES = ("obs-host:obs-qpu-a,obs-qpu-b",)
QPUS = ("obs-qpu-a", "obs-qpu-b")
NAMESPACE = "metrics-test"


class MeteredOperator:
    """The operator as a subprocess serving /metrics; restartable (same ports, same log)."""

    def __init__(self, cluster: ClusterInfo, log: Path) -> None:
        self.cluster, self.log = cluster, log
        self.health, self.metrics_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self) -> None:
        qbackbone = str(Path(sys.executable).parent / "qbackbone")
        argv = [qbackbone, "operator", f"--kubeconfig={self.cluster.kubeconfig}",
                f"--liveness=http://127.0.0.1:{self.health}/healthz",
                f"--metrics-port={self.metrics_port}", "--log-format=json",
                f"--worker-command={qbackbone}", "--seed=11"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=dict(os.environ))
        proc = self.proc
        for url in (f"http://127.0.0.1:{self.health}/healthz", self.metrics_url):
            wait_for(partial(serving, url, proc), 60, interval=0.3, what=url)
        if proc.poll() is not None:
            pytest.fail(f"operator exited with {proc.returncode}:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Metered:
    """A control plane of its own with the operator, its node agent and two Ready QPUNodes."""

    info: ClusterInfo
    api: client.ApiClient
    operator: MeteredOperator
    qpus: tuple[str, ...]
    namespace: str


@pytest.fixture(scope="module")
def metered(k8s_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Metered]:
    """Its own cluster, so no other test's operator reconciles these jobs (and this operator
    none of theirs) and these QPUNodes join no other test's fleet."""
    state = tmp_path_factory.mktemp("metrics")
    local = LocalCluster(state / "cluster", k8s_bin_dir, tied=True)
    info = local.start()
    api = config.new_client_from_config(config_file=info.kubeconfig)
    agent = running = None
    try:
        install_crds(info, api, REPO / "crds")
        agent = start_node_agent(info, NODES, tied=True,
                                 pod_env=[f"KUBECONFIG={info.kubeconfig}"])
        running = MeteredOperator(info, state / "operator.log")
        running.start()
        custom = client.CustomObjectsApi(api)
        for name in QPUS:
            custom.create_cluster_custom_object(G, V, "qpunodes",
                                                qpunode(name, "aer", "aer_simulator", qubits=8))
        for name in QPUS:
            wait_for(partial(ready_status, custom, name, "True"), 60,
                     what=f"QPUNode {name} Ready")
        core = client.CoreV1Api(api)
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        wait_for(partial(core.read_namespaced_service_account, "default", NAMESPACE), 30,
                 what=f"default ServiceAccount in {NAMESPACE}")
        yield Metered(info, api, running, QPUS, NAMESPACE)
    finally:
        if running is not None:
            running.stop()
        if agent is not None:
            stop(agent[1], agent[0])
        api.close()
        local.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    found = item.funcargs.get("metered") if hasattr(item, "funcargs") else None
    running = found.operator if isinstance(found, Metered) else None
    if report.failed and running is not None and running.log.exists():
        report.sections.append(("operator log (tail)", running.log.read_text()[-6000:]))
    return report
