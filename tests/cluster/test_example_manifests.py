"""The example manifests pass the generated CRDs' validation on a real API server, and the
schema rejects what it can (unknown fields, bad enums, bad observables)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbackbone.dev import ClusterInfo
from qbackbone.dev.waiting import wait_for
from tests.cluster.fixtures import run_kubectl

REPO = Path(__file__).resolve().parents[2]
GOOD_EXAMPLES = ["quickstart", "single-qpu", "classical", "distributed", "sampling", "optimize",
                 "queue", "detect-predict", "network-state", "decomposition"]

pytestmark = pytest.mark.cluster


@pytest.mark.parametrize("example", GOOD_EXAMPLES)
def test_examples_pass_server_side_validation(example: str, cluster: ClusterInfo,
                                              namespace: str, crds: None) -> None:
    def dry_run() -> bool:
        proc = run_kubectl(cluster, "apply", "--dry-run=server", "-n", namespace, "-f",
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
                                 namespace: str, crds: None) -> None:
    manifest = ("apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata: {name: bad}\n"
                "spec:\n  circuit: {qasm: 'OPENQASM 2.0;', observables: [ZZ]}\n" + patch)
    proc = run_kubectl(cluster, "apply", "--dry-run=server", "-n", namespace, "-f", "-",
                    stdin=manifest)
    assert proc.returncode != 0
    assert needle in proc.stderr, proc.stderr


def test_schema_rejects_bad_observable_letters(cluster: ClusterInfo, namespace: str,
                                               crds: None) -> None:
    manifest = ("apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata: {name: bad}\n"
                "spec:\n  circuit: {qasm: 'OPENQASM 2.0;', observables: [ZQ]}\n")
    proc = run_kubectl(cluster, "apply", "--dry-run=server", "-n", namespace, "-f", "-",
                    stdin=manifest)
    assert proc.returncode != 0 and "observables" in proc.stderr, proc.stderr


@pytest.mark.parametrize(("spec", "needle"), [
    ("spec:\n  circuit: {qasm: 'OPENQASM 2.0;', sampling: true}\n"
     "  problem: {qubo: {linear: {a: 1}}}\n", "exactly one of spec.circuit or spec.problem"),
    ("spec: {}\n", "exactly one of spec.circuit or spec.problem"),
    ("spec:\n  problem: {}\n", "exactly one of qubo, trafficEngineering, sliceAdmission, "),
    ("spec:\n  problem:\n    trafficEngineering:\n      topology: {format: graphml}\n"
     "      demands: [{source: a, target: b, volume: 1}]\n",
     "exactly one of links, document or configMapRef"),
    ("spec:\n  problem:\n    sliceAdmission:\n      resources: [{name: p, capacity: 1}]\n"
     "      slices: [{name: s, revenue: -1, demands: {p: 1}}]\n", "revenue"),
])
def test_schema_rejects_bad_problems(spec: str, needle: str, cluster: ClusterInfo,
                                     namespace: str, crds: None) -> None:
    manifest = ("apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata: {name: bad}\n"
                + spec)
    proc = run_kubectl(cluster, "apply", "--dry-run=server", "-n", namespace, "-f", "-",
                       stdin=manifest)
    assert proc.returncode != 0
    assert needle in proc.stderr, proc.stderr
