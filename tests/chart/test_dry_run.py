"""The rendered chart is accepted by the real API server (server-side dry run), after the
chart's CRDs are applied: with the default values and with every optional feature on."""

from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from qbackbone.dev import ClusterInfo
from qbackbone.dev.waiting import wait_for
from tests.chart.helm import ALL_FEATURES, CHART, documents, render
from tests.cluster.test_cluster_api import established

pytestmark = pytest.mark.cluster
# No Prometheus Operator in the test cluster: its kind is checked by the render tests only.
NOT_SERVED = {"ServiceMonitor"}


def _kubectl(cluster: ClusterInfo, *args: str,
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(cluster.bin_dir) / "kubectl"),
                           f"--kubeconfig={cluster.kubeconfig}", *args],
                          capture_output=True, text=True, timeout=120, input=stdin, check=False)


@pytest.fixture(scope="module")
def chart_crds(cluster: ClusterInfo, api: client.ApiClient) -> None:
    proc = _kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f",
                    str(CHART / "crds"))
    assert proc.returncode == 0, proc.stderr
    ext = client.ApiextensionsV1Api(api)
    for name in ("quantumjobs", "qpunodes", "invocationpolicies"):
        wait_for(partial(established, ext, f"{name}.qbackbone.io"), 30, what=name)


@pytest.mark.parametrize("features", ["default", "all"])
def test_rendered_chart_passes_server_side_dry_run(cluster: ClusterInfo, chart_crds: None,
                                                   k8s_bin_dir: Path, namespace: str,
                                                   features: str) -> None:
    extra = [] if features == "default" else [
        "-f", str(ALL_FEATURES),
        # RoleBindings and worker ServiceAccounts go into namespaces that must exist.
        "--set-json", f"operator.watchNamespaces={json.dumps([namespace])}"]
    docs = [d for d in documents(render(k8s_bin_dir, *extra, namespace=namespace))
            if d["kind"] not in NOT_SERVED]
    stream = yaml.safe_dump_all(docs)
    proc = _kubectl(cluster, "apply", "--dry-run=server", "-o", "name", "-f", "-",
                    stdin=stream)
    assert proc.returncode == 0, proc.stderr
    accepted = proc.stdout.split()
    assert len(accepted) == len(docs), proc.stdout
    assert "deployment.apps/qbackbone-operator" in accepted
    assert "daemonset.apps/qbackbone-device-plugin" in accepted
    if features == "all":
        assert {"qpunode.qbackbone.io/qpu-a", "invocationpolicy.qbackbone.io/default",
                "service/qbackbone-metrics"} <= set(accepted)
