"""Issue 14 through `qbackbone run` as a user runs it: hostile jobs beside a good one.

One run holds a good job and one hostile job of each class: every hostile job ends Failed
with its CamelCase reason, the good job keeps its Succeeded result, stdout is strict JSON,
nothing read from a file the job did not write appears anywhere, and no traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.test_run_command import IDEAL_FLEET, job_manifest
from tests.conftest import REPO

SECRET = "qb-planted-secret-5e1d"
V2 = 'OPENQASM 2.0;\\ninclude \\"qelib1.inc\\";\\n'
V3 = 'OPENQASM 3.0;\\ninclude \\"stdgates.inc\\";\\n'
GOOD = ('  circuit:\n    qasm: "' + V2 + 'qreg q[2];\\nh q[0];\\ncx q[0],q[1];"\n'
        '    observables: [ZZ, XX]\n  shots: 1000\n')


def _circuit(qasm: str, observables: str = "[Z]") -> str:
    return f'  circuit:\n    qasm: "{qasm}"\n    observables: {observables}\n  shots: 100\n'


def _nested(levels: int) -> str:
    parts = [V2, "gate g0 a { h a; }\\n"]
    parts += [f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}\\n" for i in range(1, levels + 1)]
    return "".join([*parts, "qreg q[1];\\n", f"g{levels} q[0];"])


def hostile_jobs(secret_file: Path) -> dict[str, tuple[str, str]]:
    """Job name -> (spec, expected reason)."""
    return {
        "include-absolute": (_circuit(f'OPENQASM 2.0;\\ninclude \\"{secret_file}\\";\\n'
                                      "qreg q[1];\\nh q[0];"), "ForbiddenInclude"),
        "include-relative": (_circuit('OPENQASM 2.0;\\ninclude \\"secret.inc\\";\\n'
                                      "qreg q[1];\\nh q[0];"), "ForbiddenInclude"),
        "include-v3": (_circuit(f'OPENQASM 3.0;\\ninclude \\"{secret_file}\\";\\n'
                                "qubit[1] q;\\nh q[0];"), "ForbiddenInclude"),
        "qreg-huge": (_circuit(V2 + "qreg q[100000000];\\nh q[0];"), "InputTooLarge"),
        "qubit-huge": (_circuit(V3 + "qubit[100000000] q;\\nh q[0];"), "InputTooLarge"),
        "qreg-2-64": (_circuit(V2 + "qreg q[18446744073709551616];\\nh q[0];"),
                      "InvalidCircuit"),
        "nested-gates": (_circuit(_nested(20)), "InputTooLarge"),
        "for-huge": (_circuit(V3 + "qubit[1] q;\\nfor int i in [0:1000000000] { h q[0]; }"),
                     "InputTooLarge"),
        "while": (_circuit(V3 + "qubit[1] q;\\nbit c;\\nc = measure q[0];\\n"
                           "while (c) { h q[0]; c = measure q[0]; }"), "UnsupportedOperation"),
        "rx-inf": (_circuit(V2 + "qreg q[1];\\nrx(1e400) q[0];"), "InvalidCircuit"),
        "opaque": (_circuit(V2 + "opaque foo a;\\nqreg q[1];\\nfoo q[0];"), "UnknownGate"),
        "deadline-nan": (GOOD + "  deadline: .nan\n", "InvalidDeadline"),
        "deadline-400-digits": (GOOD + f"  deadline: {'9' * 400}\n", "InvalidDeadline"),
        "deadline-fullwidth": (GOOD + "  deadline: \uff13\uff10s\n", "InvalidDeadline"),
        "dotless-i": (_circuit(V2 + "qreg q[2];\\nh q[0];", "[\u0131\u0131]"),
                      "InvalidObservable"),
        "snake-case": (GOOD + "  policy_ref: {name: default}\n", "InvalidManifest"),
    }


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str],
                                                                   dict[str, str]]:
    tmp = tmp_path_factory.mktemp("hostile")
    secret_file = tmp / "secret.inc"
    secret_file.write_text(f"{SECRET} q;\n")
    (tmp / "fleet.yaml").write_text(IDEAL_FLEET)
    (tmp / "good.yaml").write_text(job_manifest(GOOD, name="good"))
    expected = {}
    for name, (spec, reason) in hostile_jobs(secret_file).items():
        (tmp / f"{name}.yaml").write_text(job_manifest(spec, name=name))
        expected[name] = reason
    (tmp / "meta-list.yaml").write_text(
        "apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata: [a]\nspec: {}\n")
    expected["document-1"] = "InvalidManifest"
    (tmp / "not-utf8.yaml").write_bytes(b"kind: QuantumJob\n\xff\xfe\n")
    expected["not-utf8"] = "InvalidManifest"
    (tmp / "deep.yaml").write_text("a: " + "[" * 3000 + "]" * 3000 + "\n")
    proc = subprocess.run([sys.executable, "-m", "qbackbone.cli.main", "run", "-q", "-o", "json",
                           "--seed", "3", str(tmp)], cwd=tmp, capture_output=True, text=True,
                          timeout=600)
    return proc, expected


def test_every_hostile_job_fails_alone_with_its_reason(
        hostile_run: tuple[subprocess.CompletedProcess[str], dict[str, str]]) -> None:
    proc, expected = hostile_run
    assert proc.returncode == 2, proc.stderr  # deep.yaml is of no known kind: skipped
    items = json.loads(proc.stdout)["items"]  # strict JSON: json.loads refuses nothing here
    json.dumps(items, allow_nan=False)
    by_name = {i["metadata"]["name"]: i["status"] for i in items}
    assert by_name["good"]["phase"] == "Succeeded"
    assert by_name["good"]["verification"]["passed"] is True
    for name, reason in expected.items():
        status = by_name[name]
        failed = next(c for c in status["conditions"] if c["type"] == "Failed")
        assert (status["phase"], failed["reason"]) == ("Failed", reason), (name, failed)
    assert "deep.yaml: YAML nested too deeply (skipped)" in proc.stderr


def test_nothing_read_from_disk_and_no_traceback(
        hostile_run: tuple[subprocess.CompletedProcess[str], dict[str, str]]) -> None:
    proc, _ = hostile_run
    assert SECRET not in proc.stdout and SECRET not in proc.stderr
    assert "root:" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_results_survive_a_run_that_is_killed(tmp_path: Path) -> None:
    """YAML results are written as each job ends: a run killed later keeps them."""
    (tmp_path / "fleet.yaml").write_text(IDEAL_FLEET)
    (tmp_path / "a.yaml").write_text(job_manifest(GOOD, name="a"))
    (tmp_path / "b.yaml").write_text(
        "apiVersion: qbackbone.io/v1alpha1\nkind: InvocationPolicy\nmetadata: {name: slow}\n"
        "spec: {limits: {maxRunSeconds: 600}}\n---\n"
        + job_manifest(GOOD + "  policyRef: {name: slow}\n", name="b"))
    proc = subprocess.Popen([sys.executable, "-m", "qbackbone.cli.main", "run", "-q",
                             str(tmp_path / "fleet.yaml"), str(tmp_path / "a.yaml"),
                             str(tmp_path / "b.yaml")], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    lines = []
    while (line := proc.stdout.readline()) not in ("...\n", ""):  # job a's document end
        lines.append(line)
    proc.kill()
    proc.communicate(timeout=30)
    first = yaml.safe_load("".join(lines))
    assert first["metadata"]["name"] == "a" and first["status"]["phase"] == "Succeeded"


def test_a_policy_raising_limits_past_the_machine_fails_that_job_only(tmp_path: Path) -> None:
    """Under a 3 GiB address-space limit (a user's ulimit -v), a policy that allows a 28-qubit
    statevector (4 GiB) gets MemoryLimitExceeded for its job; the good job still succeeds."""
    import resource

    greedy = ("apiVersion: qbackbone.io/v1alpha1\nkind: InvocationPolicy\nmetadata: {name: g}\n"
              "spec: {limits: {maxMemoryMiB: 65536}, fallback: {maxStatevectorQubits: 32}}\n---\n"
              + job_manifest('  policyRef: {name: g}\n  execution: {mode: Classical}\n'
                             + _circuit(V2 + "qreg q[28];\\nh q;\\nt q;", "[" + "Z" * 28 + "]"),
                             name="greedy"))
    (tmp_path / "fleet.yaml").write_text(IDEAL_FLEET)
    (tmp_path / "good.yaml").write_text(job_manifest(GOOD, name="good"))
    (tmp_path / "greedy.yaml").write_text(greedy)
    limit = 3 * 1024**3

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "qbackbone.cli.main", "run", "-q", "-o", "json",
                           str(tmp_path)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, preexec_fn=limited)
    assert proc.returncode == 1, proc.stderr
    by_name = {i["metadata"]["name"]: i["status"] for i in json.loads(proc.stdout)["items"]}
    assert by_name["good"]["phase"] == "Succeeded"
    failed = next(c for c in by_name["greedy"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "MemoryLimitExceeded", failed
    assert "Traceback" not in proc.stderr
