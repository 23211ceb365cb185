"""Benchmark the worst hostile input of each defect class of issue 14 through `qbackbone run`.

Each case runs as a user would: `qbackbone run good.yaml hostile.yaml -o json`, beside a
good job. For each it reports the outcome (exit code, the hostile job's reason), whether
the good job kept its Succeeded result, whether a planted secret file's content leaked into
any output, the wall time, and the peak memory (the largest RSS of the run's processes).

    .venv/bin/python benchmarks/hostile/worst_cases.py [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SECRET = "qb-secret-7f3a9c"
GOOD = """apiVersion: qbackbone.io/v1alpha1
kind: QuantumJob
metadata: {name: good}
spec:
  circuit:
    qasm: 'OPENQASM 2.0; include "qelib1.inc"; qreg q[2]; h q[0]; cx q[0],q[1];'
    observables: [ZZ, XX]
  shots: 1000
"""
FLEET = """apiVersion: qbackbone.io/v1alpha1
kind: QPUNode
metadata: {name: ideal}
spec: {backend: {provider: aer, name: aer_simulator}, qubits: 8}
"""


def _job(name: str, qasm: str, observables: str = "[Z]", extra: str = "") -> str:
    body = "\n".join("      " + line for line in qasm.strip().splitlines())
    return (f"apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata: {{name: {name}}}\n"
            f"spec:\n  circuit:\n    qasm: |\n{body}\n    observables: {observables}\n"
            f"  shots: 100\n{extra}")


def _nested_gates(levels: int) -> str:
    lines = ['OPENQASM 2.0;', 'include "qelib1.inc";', "gate g0 a { h a; }"]
    lines += [f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}" for i in range(1, levels + 1)]
    return "\n".join([*lines, "qreg q[1];", f"g{levels} q[0];"])


def cases(secret_file: Path) -> dict[str, tuple[str, str]]:
    """Class -> (case name, manifest text): the worst example of each class."""
    v2 = 'OPENQASM 2.0;\ninclude "qelib1.inc";\n'
    v3 = 'OPENQASM 3.0;\ninclude "stdgates.inc";\n'
    return {
        "include": ("include-secret", _job("inc", f'OPENQASM 2.0;\ninclude "{secret_file}";\n'
                                                  "qreg q[1];\nh q[0];")),
        "loader": ("deep-yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n"),
        "yaml-aliases": ("alias-bomb-16", "apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\n"
                         "metadata: {name: bomb}\nspec: [&a0 [x, x, x, x], " + ", ".join(
                             f"&a{i} [{', '.join([f'*a{i - 1}'] * 4)}]" for i in range(1, 17))
                         + "]\n"),
        "v3-definitions": ("v3-gates-3^12", _job("v3nest", v3 + "qubit[1] q;\ngate g0 a { h a; }\n"
                           + "".join(f"gate g{k} a {{ g{k - 1} a; g{k - 1} a; g{k - 1} a; }}\n"
                                     for k in range(1, 13)) + "g12 q[0];")),
        "panic": ("qreg-2^64", _job("panic", v2 + "qreg q[18446744073709551616];\nh q[0];")),
        "register-size": ("qubit[1e8]", _job("big", v3 + "qubit[100000000] q;\nh q[0];")),
        "expansion": ("nested-gates-40", _job("nest", _nested_gates(40))),
        "loop": ("for-1e9", _job("loop", v3 + "qubit[1] q;\n"
                                 "for int i in [0:1000000000] { h q[0]; }")),
        "numbers": ("rx-1e400", _job("num", v2 + "qreg q[1];\nrx(1e400) q[0];",
                                     extra="  deadline: .nan\n")),
        "opaque": ("opaque-gate", _job("opq", v2 + "opaque foo a;\nqreg q[1];\nfoo q[0];")),
        "many-observables": ("20000-observables", _job(
            "many", v2 + "qreg q[15];\nh q;\n",
            "[" + ", ".join(format(i, "015b").replace("0", "I").replace("1", "Z")
                            for i in range(1, 20001)) + "]")),
        "qubo": ("qubo-20000", "apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\n"
                 "metadata: {name: qubo}\nspec:\n  problem:\n    qubo:\n      linear: {"
                 + ", ".join(f"x{i}: 1.0" for i in range(20000)) + "}\n"),
        "look-alike": ("dotless-i", _job("dotless", v2 + "qreg q[2];\nh q[0];", "[\u0131\u0131]")),
    }


# A fresh wrapper per run: RUSAGE_CHILDREN's maxrss is the largest RSS of any process it
# waited for (the run and the job processes it forked), so each case gets its own peak.
_WRAPPER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def _run(directory: Path) -> dict[str, Any]:
    peak_file = directory / "peak-kib"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _WRAPPER, str(peak_file), sys.executable, "-m",
         "qbackbone.cli.main", "run", "-q", "-o", "json", "--seed", "1", str(directory)],
        cwd=directory, capture_output=True, text=True, timeout=600)
    return {"code": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr,
            "seconds": round(time.perf_counter() - start, 2),
            "peak_kib": int(peak_file.read_text() or 0)}


def run_case(name: str, text: str, secret_file: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        (directory / "fleet.yaml").write_text(FLEET)
        (directory / "good.yaml").write_text(GOOD)
        (directory / "hostile.yaml").write_text(text)
        result = _run(directory)
    items: list[dict[str, Any]] = []
    try:
        out = json.loads(result["stdout"])
        items = out.get("items", [out])
    except json.JSONDecodeError:
        pass
    phases = {i["metadata"]["name"]: i["status"]["phase"] for i in items}
    hostile = [i for i in items if i["metadata"]["name"] != "good"]
    reasons = [next((c["reason"] for c in i["status"]["conditions"] if c["type"] == "Failed"),
                    None) for i in hostile]
    return {
        "case": name, "exitCode": result["code"], "seconds": result["seconds"],
        "peakRssMiB": round(result["peak_kib"] / 1024, 1),
        "goodSucceeded": phases.get("good") == "Succeeded",
        "hostileReasons": reasons, "strictJson": bool(items),
        "traceback": "Traceback" in result["stderr"],
        "secretLeaked": SECRET in result["stdout"] + result["stderr"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=str(REPO / "benchmarks/results/hostile.json"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as secret_dir:
        secret_file = Path(secret_dir) / "secret.inc"
        secret_file.write_text(f"{SECRET} x;\n")
        for klass, (name, text) in cases(secret_file).items():
            row = {"class": klass, **run_case(name, text, secret_file)}
            rows.append(row)
            print(f"{klass:18} {name:20} exit {row['exitCode']}  {row['seconds']:6.2f} s  "
                  f"peak {row['peakRssMiB']:7.1f} MiB  good {row['goodSucceeded']!s:5}  "
                  f"reasons {row['hostileReasons']}  leak {row['secretLeaked']}  "
                  f"traceback {row['traceback']}", flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "cases": rows,
    }, indent=2) + "\n")
    print(f"wrote {args.output}")
    bad = [r for r in rows if r["traceback"] or r["secretLeaked"] or not r["goodSucceeded"]
           or "InternalError" in r["hostileReasons"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
