"""Hostile inputs through the real `qbackbone run` in a subprocess, beside a good job.

The CLI runs each job in its own forked process under the policy's time and memory limits
(here 10 s and the default 1536 MiB), so a job that would hang or blow memory in-process
ends Failed/TimeLimitExceeded or Failed/MemoryLimitExceeded; the good job must keep its
Succeeded result whatever its neighbours do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import REPO
from tests.fuzz.gen_manifests import API, circuit_spec, good_job, job_doc, job_file
from tests.fuzz.gen_problems import problem_docs
from tests.fuzz.gen_values import render_all
from tests.fuzz.harness import TALLY, Fuzzer, Planted, assert_clean, fuzz_settings
from tests.fuzz.outcomes import INTERNALS, REASON, Problem

CLI_RUNS = 6
JOB_SECONDS = 10
FLEET = {"apiVersion": API, "kind": "QPUNode", "metadata": {"name": "ideal"},
         "spec": {"backend": {"provider": "aer", "name": "aer_simulator"}, "qubits": 8}}
POLICY = {"apiVersion": API, "kind": "InvocationPolicy", "metadata": {"name": "default"},
          "spec": {"limits": {"maxRunSeconds": JOB_SECONDS}}}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


def run_cli(category: str, folder: Path, planted: Planted, hostile: list[bytes]) -> None:
    """Write the good job and the hostile files, run the CLI, record what it printed."""
    folder.mkdir(parents=True)
    (folder / "fleet.yaml").write_text(render_all([FLEET, POLICY]))
    (folder / "good.yaml").write_text(render_all([good_job()]))
    # Unique job names per file (h<k>-...), so each status can be traced to its input.
    hostile = [data.replace(b"name: fuzz-", f"name: h{k}-".encode())
               for k, data in enumerate(hostile)]
    for k, data in enumerate(hostile):
        (folder / f"hostile-{k}.yaml").write_bytes(data)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "operator"), str(REPO)])}
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "qbackbone.cli.main", "run", str(folder),
                           "-o", "json", "--seed", "1"], cwd=planted.cwd, env=env,
                          capture_output=True, text=True, errors="replace",
                          timeout=60 + JOB_SECONDS * (len(hostile) + 1))
    elapsed = time.monotonic() - started
    texts = [d.decode("utf-8", errors="replace") for d in hostile]
    text = "\n---\n".join(texts)
    TALLY.inputs[category] += len(hostile) + 1
    TALLY.measure(category, text, elapsed, 0.0)  # memory: the CLI's own per-job limit
    for problem, happened in cli_problems(category, proc, planted.secrets, texts):
        TALLY.problem(category, problem, text, happened)


def _input_of(name: str, texts: list[str]) -> str:
    """The hostile file a job came from (its name starts h<k>-), else the name."""
    head = name.split("-", 1)[0]
    if head[:1] == "h" and head[1:].isdigit() and int(head[1:]) < len(texts):
        return texts[int(head[1:])]
    return name


def cli_problems(category: str, proc: subprocess.CompletedProcess[str],
                 secrets: tuple[str, ...], texts: list[str]) -> list[tuple[Problem, str]]:
    """What is wrong with one CLI run; counts its outcomes on the way."""
    found: list[tuple[Problem, str]] = []
    code, out, err = proc.returncode, proc.stdout, proc.stderr
    if code not in (0, 1, 2):
        found.append((Problem("exit code", str(code)), err[-1500:]))
    marker = next((m for m in INTERNALS if m in err), None)
    if marker:
        found.append((Problem("internals on stderr", marker), err[err.find(marker) - 300:][:1500]))
    for secret in secrets:
        if secret in out or secret in err:
            found.append((Problem("file contents leaked", secret[:12]), ""))
    TALLY.outcomes[f"{category}: refused-at-load (skipped document)"] += err.count("(skipped)")
    try:
        printed = json.loads(out, parse_constant=_reject_constant) if out.strip() else None
    except ValueError as exc:
        found.append((Problem("stdout is not strict JSON", str(exc)[:60]), out[:1000]))
        return found
    if printed is None:
        if code != 2 or "Traceback" in err:
            found.append((Problem("nothing on stdout", f"exit {code}"), err[-1500:]))
        return found
    items = printed["items"] if printed.get("kind") == "List" else [printed]
    phases = {}
    for item in items:
        name, status = item["metadata"]["name"], item["status"]
        failed = [c for c in status.get("conditions", []) if c["type"] == "Failed"]
        reason = failed[0]["reason"] if failed else None
        phases[name] = status.get("phase")
        TALLY.count(category, f"{status.get('phase')}/{reason}" if reason else "Succeeded",
                    _input_of(name, texts))
        if status.get("phase") not in ("Succeeded", "Failed") or (failed and not reason):
            found.append((Problem("not final", str(status.get("phase"))), json.dumps(status)))
        elif reason and (not REASON.match(reason) or reason == "InternalError"):
            found.append((Problem("bad reason", reason), failed[0]["message"][:800]))
    if phases.get("good-job") != "Succeeded":
        found.append((Problem("good job lost", str(phases.get("good-job"))),
                      json.dumps(items)[:1500]))
    expected = 0 if all(p == "Succeeded" for p in phases.values()) else 1
    if code not in (expected, 2):
        found.append((Problem("exit code disagrees with the statuses", f"{code}"), err[-800:]))
    return found


def hostile_files(secrets: list[str]) -> st.SearchStrategy[bytes]:
    """One hostile file: a mutated job, a hostile circuit, or a problem job."""
    circuit = circuit_spec(secrets, hostile=0.5).map(
        lambda case: render_all([job_doc("fuzz-circuit", case[0])]).encode())
    problem = problem_docs(secrets).map(lambda docs: render_all(docs).encode())
    return st.one_of(job_file(secrets), circuit, problem)


def test_cli_runs_hostile_files_beside_a_good_job(fuzzer: Fuzzer,
                                                  tmp_path_factory: Any) -> None:
    base = tmp_path_factory.mktemp("fuzz-cli")
    secrets = fuzzer.planted.include_paths
    serial = iter(range(10**6))

    @fuzz_settings(CLI_RUNS)
    @given(hostile=st.lists(hostile_files(secrets), min_size=5, max_size=7))
    def run(hostile: list[bytes]) -> None:
        run_cli("cli", base / f"run-{next(serial)}", fuzzer.planted, hostile)

    run()
    assert_clean("cli")


H3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\nqubit[2] q;\n'


def test_good_job_keeps_its_result_beside_known_hostile_jobs(fuzzer: Fuzzer,
                                                              tmp_path: Path) -> None:
    """The nastiest inputs found so far, in one run with a good job."""
    secret = fuzzer.planted.include_paths[0]
    circuits = [H3 + "// x\rqubit[100000] big;\nh q[0];",
                'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[18446744073709551617];',
                H3 + f'// x\rinclude "{secret}";\nh q[0];',
                H3 + "rz(" + "-" * 5000 + "1) q[0];"]
    docs = [render_all([job_doc(f"known-{k}", {"circuit": {"qasm": c, "sampling": True},
                                               "shots": 100})]).encode()
            for k, c in enumerate(circuits)]
    docs += [b"apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata:\n  name: latin\n"
             b"spec: {circuit: {qasm: caf\xe9}}\n",
             b"kind: QuantumJob\nmetadata: {name: deep}\nspec: " + b"[" * 5000 + b"]" * 5000,
             b"kind: QuantumJob\napiVersion: qbackbone.io/v1alpha1\nmetadata: {name: big}\n"
             b"spec: {shots: " + b"9" * 5000 + b"}\n"]
    run_cli("cli-known", tmp_path / "known", fuzzer.planted, docs)
    assert_clean("cli-known")
