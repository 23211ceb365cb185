"""Install from the chart on a real control plane and run a job under the chart's RBAC only.

A cluster of its own (the session cluster has operators with admin credentials watching every
namespace). The rendered chart (CRDs included) is applied as it is; the node agent stands in
for the kubelets and gives every pod a token of its service account (TokenRequest, bound to
the pod), so the operator Deployment's pod runs ``qbackbone operator`` with the chart's command
and arguments as ``<release>-operator``, and the fragment pods run as ``<release>-worker``.
Nothing in the install holds an admin credential: a permission missing from the chart shows
up as a QPUNode that never gets Ready or a job that never succeeds.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from qbackbone.dev import ClusterInfo, LocalCluster
from qbackbone.dev.agentproc import start_node_agent
from qbackbone.dev.procs import free_port, stop
from qbackbone.dev.waiting import wait_for
from tests.chart.helm import REPO, documents, render
from tests.cluster.fixtures import run_kubectl

pytestmark = pytest.mark.cluster

RELEASE_NS = "qbackbone-system"
OPERATOR_SA, WORKER_SA = "qbackbone-operator", "qbackbone-worker"
QPUS = ("qpu-a", "qpu-b")
G, V = "qbackbone.io", "v1alpha1"


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


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


@pytest.fixture(scope="module")
def install(k8s_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Install]:
    local = LocalCluster(tmp_path_factory.mktemp("install-cluster"), k8s_bin_dir, tied=True)
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
        text = render(k8s_bin_dir, "--include-crds",
                      "--set", f"operator.healthPort={port}", "--set", "operator.seed=11",
                      "--set", f"worker.command={venv_bin / 'qbackbone'}",
                      namespace=RELEASE_NS)
        installed = Install(info, api, documents(text), f"http://127.0.0.1:{port}/healthz",
                            Path(info.state_dir) / "node-agent")
        installed.kubectl("create", "namespace", RELEASE_NS)
        installed.kubectl("apply", "--server-side", "-f", "-", stdin=text)
        yield installed
        stop(record, proc)
    finally:
        api.close()
        local.stop()


def _operator_pod(core: client.CoreV1Api) -> Any:
    pods = core.list_namespaced_pod(
        RELEASE_NS, label_selector="app.kubernetes.io/component=operator").items
    return pods[0] if pods and pods[0].status.phase == "Running" else None


def _whoami(install: Install, kubeconfig: Path) -> str:
    return install.kubectl(f"--kubeconfig={kubeconfig}", "auth", "whoami",
                           "-o", "jsonpath={.status.userInfo.username}")


def _can(install: Install, kubeconfig: Path, *args: str) -> bool:
    proc = run_kubectl(install.cluster, f"--kubeconfig={kubeconfig}", "auth", "can-i", *args)
    return proc.stdout.strip() == "yes"


def _ready(custom: client.CustomObjectsApi, name: str) -> bool:
    obj = custom.get_cluster_custom_object(G, V, "qpunodes", name)
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def _finished(custom: client.CustomObjectsApi, name: str) -> dict[str, Any] | None:
    job = custom.get_namespaced_custom_object(G, V, RELEASE_NS, "quantumjobs", name)
    phase = (job.get("status") or {}).get("phase")
    return dict(job) if phase in ("Succeeded", "Failed") else None


def test_chart_renders_the_deployment_the_agent_runs(install: Install) -> None:
    """The operator pod is the Deployment's (its command and arguments, its service account)."""
    deployment = next(d for d in install.docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["qbackbone"]
    assert container["args"][0] == "operator"
    assert "--seed=11" in container["args"]
    core = client.CoreV1Api(install.api)
    pod = wait_for(partial(_operator_pod, core), 60, what="operator pod Running")
    assert pod.spec.service_account_name == OPERATOR_SA
    assert pod.spec.containers[0].args == container["args"]
    try:
        wait_for(partial(_healthy, install.health_url), 60, interval=0.3,
                 what="operator /healthz")
    except Exception:
        pytest.fail(f"operator not healthy:\n{install.diagnostics()}")


def test_operator_runs_with_its_service_account_token_only(install: Install) -> None:
    core = client.CoreV1Api(install.api)
    pod = wait_for(partial(_operator_pod, core), 60, what="operator pod Running")
    kubeconfig = install.sandbox(pod) / "kubeconfig"
    user = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]
    assert set(user) == {"token"}, "the operator must hold a token, not a certificate"
    assert _whoami(install, kubeconfig) == f"system:serviceaccount:{RELEASE_NS}:{OPERATOR_SA}"
    # Least privilege: what the chart grants, and nothing like an admin credential.
    assert _can(install, kubeconfig, "patch", "quantumjobs.qbackbone.io/status", "-A")
    assert not _can(install, kubeconfig, "list", "secrets", "-A")
    assert not _can(install, kubeconfig, "delete", "pods", "-n", RELEASE_NS)
    assert not _can(install, kubeconfig, "update", "quantumjobs.qbackbone.io", "-A")


def test_quickstart_job_succeeds_under_the_charts_rbac(install: Install) -> None:
    custom = client.CustomObjectsApi(install.api)
    core = client.CoreV1Api(install.api)
    wait_for(partial(_healthy, install.health_url), 90, interval=0.3, what="operator /healthz")
    for name in QPUS:
        install.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps({
            "apiVersion": f"{G}/{V}", "kind": "QPUNode", "metadata": {"name": name},
            "spec": {"backend": {"provider": "aer", "name": "aer_simulator"}, "qubits": 8}}))
    try:
        for name in QPUS:
            wait_for(partial(_ready, custom, name), 60, what=f"QPUNode {name} Ready")
    except Exception:
        pytest.fail(f"QPUNodes not Ready under the chart's RBAC:\n{install.diagnostics()}")
    install.kubectl("apply", "--server-side", "-n", RELEASE_NS,
                    "-f", str(REPO / "examples" / "quickstart"))
    try:
        job = wait_for(partial(_finished, custom, "qaoa-ring-6"), 120, interval=0.3,
                       what="quickstart job finished")
    except Exception:
        pytest.fail(f"quickstart job did not finish:\n{install.diagnostics()}")
    status = job["status"]
    assert status["phase"] == "Succeeded", (status.get("conditions"), install.diagnostics())
    assert status["verification"]["passed"] is True
    assert len(status["result"]["expectationValues"]) == 4
    # The fragments ran as the chart's worker service account, with a token bound to the pod.
    pods = core.list_namespaced_pod(RELEASE_NS, label_selector="qbackbone.io/job=qaoa-ring-6")
    assert pods.items, "the job ran no pods"
    for pod in pods.items:
        assert pod.spec.service_account_name == WORKER_SA
        assert pod.status.phase == "Succeeded"
        kubeconfig = install.sandbox(pod) / "kubeconfig"
        assert _whoami(install, kubeconfig) == f"system:serviceaccount:{RELEASE_NS}:{WORKER_SA}"
        assert not _can(install, kubeconfig, "list", "pods", "-n", RELEASE_NS)
    policy = custom.get_namespaced_custom_object(G, V, RELEASE_NS, "invocationpolicies",
                                                 "default")
    valid = [c for c in policy["status"]["conditions"] if c["type"] == "Valid"]
    assert valid and valid[0]["status"] == "True"
    # Usage figures need the watch on pods and jobs the chart grants.
    used = {p.metadata.labels["qbackbone.io/qpu"] for p in pods.items}
    for qpu in used:
        wait_for(lambda q=qpu: (custom.get_cluster_custom_object(G, V, "qpunodes", q)
                                ["status"].get("utilisation", 0) > 0), 30,
                 what=f"{qpu} utilisation")
    wait_for(lambda: custom.get_namespaced_custom_object(
        G, V, RELEASE_NS, "invocationpolicies", "default")["status"].get("jobsDecided") == 1,
        30, what="policy jobsDecided 1")
