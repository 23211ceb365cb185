"""The example manifests pass the generated CRDs' validation on a real API server, and the
schema rejects what it can (unknown fields, bad enums, bad observables)."""

from __future__ import annotations

import subprocess
from functools import partial
from pathlib import Path

import pytest
from kubernetes import client

from qbackbone.dev import ClusterInfo
from qbackbone.dev.waiting import wait_for
from tests.cluster.test_cluster_api import established

REPO = Path(__file__).resolve().parents[2]
GOOD_EXAMPLES = ["quickstart", "single-qpu", "classical", "distributed", "sampling"]

pytestmark = pytest.mark.cluster


def _kubectl(cluster: ClusterInfo, *args: str,
             stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(cluster.bin_dir) / "kubectl"), f"--kubeconfig={cluster.kubeconfig}", *args],
        capture_output=True, text=True, timeout=60, input=stdin)


@pytest.fixture(scope="module")
def crds_installed(cluster: ClusterInfo, api: client.ApiClient) -> None:
    proc = _kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f",
                    str(REPO / "crds"))
    assert proc.returncode == 0, proc.stderr
    ext = client.ApiextensionsV1Api(api)
    for name in ("quantumjobs", "qpunodes", "invocationpolicies"):
        wait_for(partial(established, ext, f"{name}.qbackbone.io"), 30, what=name)


@pytest.mark.parametrize("example", GOOD_EXAMPLES)
def test_examples_pass_server_side_validation(example: str, cluster: ClusterInfo,
                                              namespace: str, crds_installed: None) -> None:
    def dry_run() -> bool:
        proc = _kubectl(cluster, "apply", "--dry-run=server", "-n", namespace, "-f",
                        str(REPO / "examples" / example))
        assert "unknown field" not in proc.stderr and "Invalid value" not in proc.stderr, (
            proc.stderr)
        return proc.returncode == 0

    wait_for(dry_run, 30, what=f"examples/{example} accepted")


@pytest.mark.parametrize(("patch", "needle"), [
    ("  shotz: 5\n", "unknown field"),
    ("  execution: {mode: Sometimes}\n", "spec.execution.mode"),
    ("  shots: 0\n", "spec.shots"),
])
def test_schema_rejects_bad_jobs(patch: str, needle: str, cluster: ClusterInfo,
                                 namespace: str, crds_installed: None) -> None:
    manifest = ("apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata: {name: bad}\n"
                "spec:\n  circuit: {qasm: 'OPENQASM 2.0;', observables: [ZZ]}\n" + patch)
    proc = _kubectl(cluster, "apply", "--dry-run=server", "-n", namespace, "-f", "-",
                    stdin=manifest)
    assert proc.returncode != 0
    assert needle in proc.stderr, proc.stderr


def test_schema_rejects_bad_observable_letters(cluster: ClusterInfo, namespace: str,
                                               crds_installed: None) -> None:
    manifest = ("apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata: {name: bad}\n"
                "spec:\n  circuit: {qasm: 'OPENQASM 2.0;', observables: [ZQ]}\n")
    proc = _kubectl(cluster, "apply", "--dry-run=server", "-n", namespace, "-f", "-",
                    stdin=manifest)
    assert proc.returncode != 0 and "observables" in proc.stderr, proc.stderr
