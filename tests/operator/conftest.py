"""The operator against the real local control plane: CRDs, a node agent whose pods can reach
the API server, aer QPUNodes on the agent's QPUs, and ``qbackbone operator`` as a subprocess.

The cluster fixtures come from tests/cluster/fixtures.py (a plugin of the root conftest),
so a run of both directories shares one cluster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from qbackbone.dev import ClusterInfo
from qbackbone.dev.agentproc import start_node_agent
from qbackbone.dev.procs import free_port, stop
from qbackbone.dev.waiting import wait_for
from tests.operator.kit import (
    PodWatch,
    create_ready_qpunode,
    delete_qpunode,
    qpunode,
    ready_status,
    serving,
)

# QPU names are the agent's extended resources and the QPUNode names.
# Distinct from tests/cluster's agent QPUs: both agents may run in one session.
OPERATOR_NODES = ("op-host-a:op-qpu-a,op-qpu-b,op-qpu-c,op-qpu-d",)
QPUS = ("op-qpu-a", "op-qpu-b")
# Advertised too, QPUNodes only while a test uses them: slow in the scheduler's model.
SLOW_QPUS = ("op-qpu-c", "op-qpu-d")
SLOW_SHOT_TIME = "1ms"  # a 36,000-shot LOCC subcircuit: 36 s on one QPU, 18 s on two




@pytest.fixture(scope="session")
def operator_agent(cluster: ClusterInfo) -> Iterator[tuple[str, ...]]:
    """A node agent whose pods get the admin kubeconfig (no service-account mounts here)."""
    proc, record = start_node_agent(cluster, OPERATOR_NODES, tied=True,
                                    pod_env=[f"KUBECONFIG={cluster.kubeconfig}"])
    yield tuple(n.split(":")[0] for n in OPERATOR_NODES)
    stop(record, proc)


class OperatorProcess:
    """``qbackbone operator`` as a subprocess, appending to one log; restartable by tests."""

    def __init__(self, cluster: ClusterInfo, log: Path) -> None:
        self.cluster = cluster
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        url = f"http://127.0.0.1:{free_port()}/healthz"
        qbackbone = str(Path(sys.executable).parent / "qbackbone")
        argv = [qbackbone, "operator", f"--kubeconfig={self.cluster.kubeconfig}",
                f"--liveness={url}", f"--worker-command={qbackbone}", "--seed=11"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, env=dict(os.environ))
        proc = self.proc
        wait_for(partial(serving, url, proc), 60, interval=0.3, what="operator /healthz")
        if proc.poll() is not None:
            pytest.fail(f"operator exited with {proc.returncode}:\n{self.log.read_text()[-3000:]}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="session")
def operator(cluster: ClusterInfo, crds: None, operator_agent: tuple[str, ...],
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """``qbackbone operator`` running against the cluster."""
    running = OperatorProcess(cluster, tmp_path_factory.mktemp("operator") / "operator.log")
    running.start()
    print(f"\noperator up; log {running.log}")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def fleet(api: client.ApiClient, operator: OperatorProcess) -> tuple[str, ...]:
    """Two ideal aer QPUNodes on the agent's QPUs, Ready."""
    custom = client.CustomObjectsApi(api)
    for name in QPUS:
        custom.create_cluster_custom_object("qbackbone.io", "v1alpha1", "qpunodes",
                                            qpunode(name, "aer", "aer_simulator", qubits=8))
    for name in QPUS:
        wait_for(partial(ready_status, custom, name, "True"), 60, what=f"QPUNode {name} Ready")
    return QPUS


@pytest.fixture
def slow_pair(api: client.ApiClient, fleet: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Two aer QPUNodes the joint plan sees as slow (1 ms per shot): a job whose deadline is
    shorter than its shots on one of them gets its shots split over both. Real runs take
    seconds, far inside such deadlines. Deleted after the test."""
    for name in SLOW_QPUS:
        create_ready_qpunode(api, name, qubits=8, shotTime=SLOW_SHOT_TIME)
    yield SLOW_QPUS
    for name in SLOW_QPUS:
        delete_qpunode(api, name)


@pytest.fixture
def pod_watch(core: client.CoreV1Api, namespace: str) -> Iterator[PodWatch]:
    """Watches the test's namespace: every pod as first added, and how often."""
    with PodWatch(core, namespace) as seen:
        yield seen


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    running = item.funcargs.get("operator") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(running, OperatorProcess) and running.log.exists():
        report.sections.append(("operator log (tail)", running.log.read_text()[-6000:]))
    return report
