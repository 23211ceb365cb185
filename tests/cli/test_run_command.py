"""`qbackbone run` as a user runs it: status on stdout only, reasons on stderr, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

GOOD_CIRCUIT = 'OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; h q[0]; cx q[0],q[1];'
IDEAL_FLEET = """apiVersion: qbackbone.io/v1alpha1
kind: QPUNode
metadata: {name: ideal}
spec: {backend: {provider: aer, name: aer_simulator}, qubits: 8}
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qbackbone.cli.main", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def job_manifest(spec: str, name: str = "j") -> str:
    return (f"apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata: {{name: {name}}}\n"
            f"spec:\n{spec}")


def write(tmp_path: Path, text: str, name: str = "job.yaml") -> str:
    (tmp_path / "fleet.yaml").write_text(IDEAL_FLEET)
    path = tmp_path / name
    path.write_text(text)
    return str(tmp_path)


def test_json_output_is_pure_and_parseable(tmp_path: Path) -> None:
    spec = f"  circuit:\n    qasm: '{GOOD_CIRCUIT}'\n    observables: [ZZ, XX]\n  shots: 2000\n"
    proc = run_cli("run", write(tmp_path, job_manifest(spec)), "-o", "json", "--seed", "1")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["kind"] == "QuantumJob" and out["metadata"]["name"] == "j"
    assert out["status"]["phase"] == "Succeeded"
    values = out["status"]["result"]["expectationValues"]
    assert [v["observable"] for v in values] == ["ZZ", "XX"]
    assert all(abs(v["value"] - 1.0) <= 4 * v["stdError"] + 1e-9 for v in values)
    assert out["status"]["verification"]["passed"] is True
    assert "decide:" in proc.stderr and "verification:" in proc.stderr


def test_yaml_is_the_default(tmp_path: Path) -> None:
    spec = f"  circuit:\n    qasm: '{GOOD_CIRCUIT}'\n    sampling: true\n  shots: 500\n"
    proc = run_cli("run", write(tmp_path, job_manifest(spec)), "-q")
    assert proc.returncode == 0, proc.stderr
    status = yaml.safe_load(proc.stdout)["status"]
    assert set(status["result"]["counts"]) <= {"00", "11"}


BAD_JOBS = {
    "unparsable": ("  circuit:\n    qasm: 'OPENQASM 2.0; qreg q[2]; h q[0'\n"
                   "    observables: [ZZ]\n",
                   "InvalidCircuit"),
    "unknown-gate": ("  circuit:\n    qasm: 'OPENQASM 2.0; include \"qelib1.inc\"; qreg q[1]; "
                     "frob q[0];'\n    observables: [Z]\n", "UnknownGate"),
    "short-observable": (f"  circuit:\n    qasm: '{GOOD_CIRCUIT}'\n    observables: [Z]\n",
                         "InvalidObservable"),
    "bad-letters": (f"  circuit:\n    qasm: '{GOOD_CIRCUIT}'\n    observables: [ZA]\n",
                    "InvalidObservable"),
    "zero-shots": (f"  circuit:\n    qasm: '{GOOD_CIRCUIT}'\n    observables: [ZZ]\n  shots: 0\n",
                   "InvalidShots"),
    "negative-shots": (f"  circuit:\n    qasm: '{GOOD_CIRCUIT}'\n    observables: [ZZ]\n"
                       "  shots: -5\n", "InvalidShots"),
    "deadline-passed": (f"  circuit:\n    qasm: '{GOOD_CIRCUIT}'\n    observables: [ZZ]\n"
                        "  deadline: 10s\n", "DeadlineExceeded"),
    "deadline-garbage": (f"  circuit:\n    qasm: '{GOOD_CIRCUIT}'\n    observables: [ZZ]\n"
                         "  deadline: whenever\n", "InvalidDeadline"),
    "deadline-zero": (f"  circuit:\n    qasm: '{GOOD_CIRCUIT}'\n    observables: [ZZ]\n"
                      "  deadline: 0s\n", "InvalidDeadline"),
    "missing-policy": (f"  circuit:\n    qasm: '{GOOD_CIRCUIT}'\n    observables: [ZZ]\n"
                       "  policyRef: {name: nope}\n", "PolicyNotFound"),
    "unknown-field": (f"  circuit:\n    qasm: '{GOOD_CIRCUIT}'\n    observables: [ZZ]\n"
                      "  colour: blue\n", "InvalidManifest"),
    "no-observables": (f"  circuit:\n    qasm: '{GOOD_CIRCUIT}'\n", "InvalidObservable"),
}


@pytest.mark.parametrize("case", sorted(BAD_JOBS))
def test_bad_jobs_fail_with_reason_and_no_traceback(case: str, tmp_path: Path) -> None:
    spec, reason = BAD_JOBS[case]
    text = job_manifest(spec)
    if case == "deadline-passed":
        text = text.replace("metadata: {name: j}",
                            "metadata: {name: j, creationTimestamp: '2026-01-01T00:00:00Z'}")
    proc = run_cli("run", write(tmp_path, text), "-o", "json")
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    status = json.loads(proc.stdout)["status"]
    assert status["phase"] == "Failed"
    failed = next(c for c in status["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == reason
    assert f"FAILED {reason}: " in proc.stderr


def test_circuit_too_wide_without_cutting_or_fallback(tmp_path: Path) -> None:
    policy = ("apiVersion: qbackbone.io/v1alpha1\nkind: InvocationPolicy\n"
              "metadata: {name: strict}\n"
              "spec: {cutting: {enabled: false}, fallback: {enabled: false}}\n---\n")
    wide = "OPENQASM 2.0; include \"qelib1.inc\"; qreg q[10]; h q;"
    spec = (f"  circuit:\n    qasm: '{wide}'\n    observables: [ZZZZZZZZZZ]\n"
            "  policyRef: {name: strict}\n")
    proc = run_cli("run", write(tmp_path, policy + job_manifest(spec)), "-o", "json")
    assert proc.returncode == 1
    failed = next(c for c in json.loads(proc.stdout)["status"]["conditions"]
                  if c["type"] == "Failed")
    assert failed["reason"] == "NoEligibleQPU"
    assert "forbids cutting" in failed["message"] and "disables the fallback" in failed["message"]


@pytest.mark.parametrize(("text", "needle"), [
    ("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n", "kind 'Deployment'"),
    ("apiVersion: qbackbone.io/v1alpha1\nkind: QPUNode\nmetadata: {name: x}\n"
     "spec: {backend: {provider: quantum-magic, name: y}}\n", "spec.backend.provider"),
    ("key: [unclosed\n", "not valid YAML"),
])
def test_bad_manifests_exit_2_with_a_message(text: str, needle: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    proc = run_cli("run", str(path))
    assert proc.returncode == 2
    assert needle in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_missing_path_is_a_clear_error() -> None:
    proc = run_cli("run", "/nonexistent/jobs")
    assert proc.returncode == 2 and "no such file or directory" in proc.stderr


@pytest.mark.slow
def test_quickstart_runs_on_the_default_fleet() -> None:
    proc = run_cli("run", "examples/quickstart/", "-o", "json", "--seed", "7")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)["status"]
    assert status["phase"] == "Succeeded" and status["verification"]["passed"]
    assert "built-in default" in proc.stderr
    assert status["decision"]["path"] == "SingleQPU"
    # A real noisy-QPU result, mitigated: the most faithful noisy QPU, unsplit, not the
    # ideal simulator of the fleet (issue 15).
    result = status["result"]
    assert result["qpus"] == ["torino"] and not result["idealSimulator"]
    assert result["mitigation"] and status["verification"]["noisy"]
    assert all("strata" not in ev for ev in result["expectationValues"])


def test_fleet_lists_calibration() -> None:
    proc = run_cli("fleet", "-o", "json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert {"nairobi", "guadalupe", "torino", "aer-ideal"} <= set(rows)
    assert rows["torino"]["twoQubitGate"] == "cz" and rows["nairobi"]["twoQubitGate"] == "cx"
    assert rows["torino"]["maxDepth"] > rows["guadalupe"]["maxDepth"]
    assert rows["aer-ideal"]["maxDepth"] is None


@pytest.mark.parametrize(("value", "message"), [("-1", "must be 0 or more seconds"),
                                                ("soon", "not a number of seconds")])
def test_operator_refuses_a_bad_admission_lookahead(value: str, message: str) -> None:
    proc = run_cli("operator", f"--admission-lookahead={value}")
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
