"""The chart installed on a control plane of its own (tests/chart/test_install.py and
test_gitops.py): the rendered chart applied as it is, and a node agent standing in for the
kubelets that gives every pod a token of its service account, so the operator Deployment's pod
and the worker pods run under the chart's RBAC only."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from qbackbone.dev import ClusterInfo, LocalCluster
from qbackbone.dev.agentproc import start_node_agent
from qbackbone.dev.procs import free_port, stop
from tests.chart.helm import documents, render
from tests.cluster.fixtures import run_kubectl

RELEASE_NS = "qbackbone-system"
TEAM_NS = "team-a"  # a second namespace where jobs run (worker.namespaces), for GitOps
QPUS = ("qpu-a", "qpu-b")


@dataclass
class Install:
    """The installed chart: its cluster, an admin client, the rendered objects, the agent."""

    cluster: ClusterInfo
    api: client.ApiClient
    docs: list[dict[str, Any]]
    health_url: str
    agent_dir: Path

    def kubectl(self, *args: str, stdin: str | None = None) -> str:
        proc = run_kubectl(self.cluster, *args, stdin=stdin)
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def sandbox(self, pod: Any) -> Path:
        """The node agent's directory of a pod (its logs and kubeconfig)."""
        meta = pod.metadata
        return self.agent_dir / "pods" / f"{meta.namespace}_{meta.name}_{meta.uid}"

    def diagnostics(self) -> str:
        """Agent log and every pod's container logs, for a failure message."""
        parts = [(self.cluster.log_dir / "node-agent.log").read_text()[-3000:]]
        for log in sorted((self.agent_dir / "pods").glob("*/*.log")):
            parts.append(f"--- {log.parent.name}/{log.name}\n{log.read_text()[-3000:]}")
        return "\n".join(parts)


def healthy(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


@contextmanager
def installed(k8s_bin_dir: Path, state_dir: Path, *values: str,
              namespaces: tuple[str, ...] = (RELEASE_NS,)) -> Iterator[Install]:
    """A control plane in ``state_dir``, a node agent handing pods their service account's
    token, and the chart rendered with ``values`` (plus a free health port, a seed and the
    absolute worker command) applied after creating ``namespaces``."""
    local = LocalCluster(state_dir, k8s_bin_dir, tied=True)
    info = local.start()
    api = config.new_client_from_config(config_file=info.kubeconfig)
    venv_bin = Path(sys.executable).parent
    port = free_port()
    try:
        # The agent runs pods' commands as local processes: `qbackbone` must be on its PATH
        # (the image's entry point); workers get the absolute path through worker.command.
        env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
        proc, record = start_node_agent(info, [f"qpu-host:{','.join(QPUS)}"], tied=True,
                                        service_account_tokens=True, env=env)
        # No storage provisioner here: the history's claim would never bind (tests/chart/
        # test_chart.py checks the claim as rendered).
        text = render(k8s_bin_dir, "--include-crds", "--set", "history.enabled=false",
                      "--set", f"operator.healthPort={port}", "--set", "operator.seed=11",
                      "--set", f"worker.command={venv_bin / 'qbackbone'}", *values,
                      namespace=RELEASE_NS)
        found = Install(info, api, documents(text), f"http://127.0.0.1:{port}/healthz",
                        Path(info.state_dir) / "node-agent")
        for ns in namespaces:
            found.kubectl("create", "namespace", ns)
        found.kubectl("apply", "--server-side", "-f", "-", stdin=text)
        yield found
        stop(record, proc)
    finally:
        api.close()
        local.stop()


@pytest.fixture(scope="session")
def install(k8s_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    """The default install (cluster-wide RBAC); workers also in ``TEAM_NS`` (GitOps test)."""
    with installed(k8s_bin_dir, tmp_path_factory.mktemp("install-cluster"), "--set-json",
                   f"worker.namespaces={json.dumps([RELEASE_NS, TEAM_NS])}",
                   namespaces=(RELEASE_NS, TEAM_NS)) as found:
        yield found


@pytest.fixture(scope="module")
def namespaced_install(k8s_bin_dir: Path,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    """An install watching only ``TEAM_NS`` (RoleBindings there, an events Role in the release
    namespace, the namespace observer's list/watch): a control plane of its own."""
    with installed(k8s_bin_dir, tmp_path_factory.mktemp("ns-install-cluster"), "--set-json",
                   f"operator.watchNamespaces={json.dumps([TEAM_NS])}",
                   namespaces=(RELEASE_NS, TEAM_NS, "elsewhere")) as found:
        yield found
