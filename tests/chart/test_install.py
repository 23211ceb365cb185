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
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from tests.chart.helm import REPO
from tests.chart.installed import QPUS, RELEASE_NS, TEAM_NS, Install, healthy
from tests.cluster.fixtures import run_kubectl

pytestmark = pytest.mark.cluster

OPERATOR_SA, WORKER_SA = "qbackbone-operator", "qbackbone-worker"
G, V = "qbackbone.io", "v1alpha1"


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


def _finished(custom: client.CustomObjectsApi, namespace: str,
              name: str) -> dict[str, Any] | None:
    job = custom.get_namespaced_custom_object(G, V, namespace, "quantumjobs", name)
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
        wait_for(partial(healthy, install.health_url), 60, interval=0.3,
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
    assert not _can(install, kubeconfig, "delete", "configmaps", "-n", RELEASE_NS)
    assert not _can(install, kubeconfig, "update", "quantumjobs.qbackbone.io", "-A")


def run_quickstart(install: Install, namespace: str) -> dict[str, Any]:
    """QPUNodes Ready, examples/quickstart/ applied in ``namespace`` and verified, its pods run
    as the worker service account, the usage figures moving; returns the job."""
    custom = client.CustomObjectsApi(install.api)
    core = client.CoreV1Api(install.api)
    wait_for(partial(healthy, install.health_url), 90, interval=0.3, what="operator /healthz")
    for name in QPUS:
        install.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps({
            "apiVersion": f"{G}/{V}", "kind": "QPUNode", "metadata": {"name": name},
            "spec": {"backend": {"provider": "aer", "name": "aer_simulator"}, "qubits": 8}}))
    try:
        for name in QPUS:
            wait_for(partial(_ready, custom, name), 60, what=f"QPUNode {name} Ready")
    except Exception:
        pytest.fail(f"QPUNodes not Ready under the chart's RBAC:\n{install.diagnostics()}")
    install.kubectl("apply", "--server-side", "-n", namespace,
                    "-f", str(REPO / "examples" / "quickstart"))
    try:
        job = wait_for(partial(_finished, custom, namespace, "qaoa-ring-6"), 120,
                       interval=0.3, what="quickstart job finished")
    except Exception:
        pytest.fail(f"quickstart job did not finish:\n{install.diagnostics()}")
    status = job["status"]
    assert status["phase"] == "Succeeded", (status.get("conditions"), install.diagnostics())
    assert status["verification"]["passed"] is True
    assert len(status["result"]["expectationValues"]) == 4

    # The fragments ran as the chart's worker service account, with a token bound to the pod.
    def pods_done() -> Any:  # the result exists a moment before the worker exits
        found = core.list_namespaced_pod(namespace,
                                         label_selector="qbackbone.io/job=qaoa-ring-6")
        return found if all(p.status.phase == "Succeeded" for p in found.items) else None

    pods = wait_for(pods_done, 30, what="fragment pods Succeeded")
    assert pods.items, "the job ran no pods"
    for pod in pods.items:
        assert pod.spec.service_account_name == WORKER_SA
        kubeconfig = install.sandbox(pod) / "kubeconfig"
        assert _whoami(install, kubeconfig) == f"system:serviceaccount:{namespace}:{WORKER_SA}"
        assert not _can(install, kubeconfig, "list", "pods", "-n", namespace)
    policy = custom.get_namespaced_custom_object(G, V, namespace, "invocationpolicies",
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
        G, V, namespace, "invocationpolicies", "default")["status"].get("jobsDecided") == 1,
        30, what="policy jobsDecided 1")
    # kopf posts the QPUNodes' events (cluster-scoped) in the operator's own namespace.
    events = core.list_namespaced_event(RELEASE_NS).items
    assert {e.involved_object.name for e in events if e.reason == "Calibrated"} == set(QPUS)
    return dict(job)


def test_quickstart_job_succeeds_under_the_charts_rbac(install: Install) -> None:
    run_quickstart(install, RELEASE_NS)


def test_namespaced_install_runs_jobs_only_in_its_namespaces(
        namespaced_install: Install) -> None:
    """operator.watchNamespaces: RoleBindings in the watched namespace, the events Role in the
    release namespace; a job elsewhere is not touched."""
    custom = client.CustomObjectsApi(namespaced_install.api)
    namespaced_install.kubectl("create", "-n", "elsewhere", "-f",
                               str(REPO / "examples" / "quickstart" / "job.yaml"))
    run_quickstart(namespaced_install, TEAM_NS)
    ignored = custom.get_namespaced_custom_object(G, V, "elsewhere", "quantumjobs",
                                                  "qaoa-ring-6")
    assert not ignored.get("status") and not ignored["metadata"].get("finalizers"), ignored
