"""The rendered chart is accepted by the real API server (server-side dry run), after the
chart's CRDs are applied: with the default values and with every optional feature on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from qbackbone.dev import ClusterInfo
from tests.chart.helm import ALL_FEATURES, documents, render
from tests.cluster.fixtures import run_kubectl

pytestmark = pytest.mark.cluster
# No Prometheus Operator in the test cluster: its kind is checked by the render tests only.
NOT_SERVED = {"ServiceMonitor"}


@pytest.mark.parametrize("features", ["default", "all"])
def test_rendered_chart_passes_server_side_dry_run(cluster: ClusterInfo, crds: None,
                                                   k8s_bin_dir: Path, namespace: str,
                                                   features: str) -> None:
    extra = [] if features == "default" else [
        "-f", str(ALL_FEATURES),
        # RoleBindings and worker ServiceAccounts go into namespaces that must exist.
        "--set-json", f"operator.watchNamespaces={json.dumps([namespace])}"]
    docs = [d for d in documents(render(k8s_bin_dir, *extra, namespace=namespace))
            if d["kind"] not in NOT_SERVED]
    stream = yaml.safe_dump_all(docs)
    proc = run_kubectl(cluster, "apply", "--dry-run=server", "-o", "name", "-f", "-",
                    stdin=stream)
    assert proc.returncode == 0, proc.stderr
    accepted = proc.stdout.split()
    assert len(accepted) == len(docs), proc.stdout
    assert "deployment.apps/qbackbone-operator" in accepted
    assert "daemonset.apps/qbackbone-device-plugin" in accepted
    if features == "all":
        assert {"qpunode.qbackbone.io/qpu-a", "invocationpolicy.qbackbone.io/default",
                "service/qbackbone-metrics"} <= set(accepted)
