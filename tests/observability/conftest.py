"""``qbackbone operator`` with ``--metrics-port`` and ``--log-format json`` against the real
control plane, with its own node agent and QPUs (names distinct from tests/operator's, so
both directories can run in one session)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from qbackbone.dev import ClusterInfo
from qbackbone.dev.agentproc import start_node_agent
from qbackbone.dev.procs import stop
from qbackbone.dev.waiting import wait_for
from tests.operator.kit import qpunode, ready_status

NODES = ("obs-host:obs-qpu-a,obs-qpu-b",)
QPUS = ("obs-qpu-a", "obs-qpu-b")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _up(url: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        return True  # reported by the caller
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


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
            wait_for(partial(_up, url, proc), 60, interval=0.3, what=url)
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


@pytest.fixture(scope="session")
def metered_operator(cluster: ClusterInfo, crds: None,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[MeteredOperator]:
    """A node agent with two QPUs, the operator, and two ideal aer QPUNodes, Ready."""
    agent, record = start_node_agent(cluster, NODES, tied=True,
                                     pod_env=[f"KUBECONFIG={cluster.kubeconfig}"])
    running = MeteredOperator(cluster, tmp_path_factory.mktemp("metrics") / "operator.log")
    try:
        running.start()
        yield running
    finally:
        running.stop()
        stop(record, agent)


@pytest.fixture(scope="session")
def metered_fleet(api: client.ApiClient, metered_operator: MeteredOperator) -> tuple[str, ...]:
    custom = client.CustomObjectsApi(api)
    for name in QPUS:
        custom.create_cluster_custom_object("qbackbone.io", "v1alpha1", "qpunodes",
                                            qpunode(name, "aer", "aer_simulator", qubits=8))
    for name in QPUS:
        wait_for(partial(ready_status, custom, name, "True"), 60, what=f"QPUNode {name} Ready")
    return QPUS


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    running = item.funcargs.get("metered_operator") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(running, MeteredOperator) and running.log.exists():
        report.sections.append(("operator log (tail)", running.log.read_text()[-6000:]))
    return report
