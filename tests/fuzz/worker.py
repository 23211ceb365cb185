"""The fuzz worker: a fresh interpreter that runs each input in a forked child.

Run as ``python -m tests.fuzz.worker``; it reads one JSON request per line on stdin and
answers one JSON line on stdout. Each request names manifest files; a forked child loads
them with ``load_manifests`` and runs every QuantumJob with ``run_job`` in-process (the
library's own functions, not the CLI), then reports the statuses as text.

Why a separate interpreter: a process that has transpiled or simulated once holds Rust and
OpenMP thread pools, and a child forked from it deadlocks on its first transpile. The pytest
process has usually run other tiers, so children are forked from this clean worker, which
imports and warms everything up without running a pool. The fork also gives each input a
hard time limit (the child is killed), the CLI's memory limit (RLIMIT_AS above the current
size) and a clean measurement of its peak RSS growth.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from qbackbone.cli.isolated import fork_and_collect


def _status_kib(field: str) -> int:
    """A ``VmRSS``-style value of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _virtual_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _warm_up() -> None:
    """Import (never run) what jobs use, so each forked child starts fast and safe."""
    import qiskit_aer  # noqa: F401
    import qiskit_ibm_runtime  # noqa: F401
    from qiskit.transpiler import generate_preset_pass_manager
    from qiskit.transpiler.preset_passmanagers.plugin import list_stage_plugins

    import qbackbone.core.optimize.classical
    import qbackbone.core.pipeline
    import qbackbone.core.pipeline.optimize  # noqa: F401
    from qbackbone.core.circuits.parse import parse_qasm

    for stage in ("init", "layout", "routing", "translation", "optimization", "scheduling"):
        list_stage_plugins(stage)
    generate_preset_pass_manager(optimization_level=1, basis_gates=["cx", "u"])
    # Parsing is pure Python plus Rust without a thread pool: safe before forking.
    parse_qasm('OPENQASM 2.0; include "qelib1.inc"; qreg q[1]; h q[0];')
    parse_qasm('OPENQASM 3.0; include "stdgates.inc"; qubit[1] q; h q[0];')


def _ideal_fleet() -> list[Any]:
    from qbackbone.api.qpunode import QPUNode
    from qbackbone.core.qpus.fleet import build_fleet

    node = QPUNode.model_validate({"metadata": {"name": "ideal"}, "spec": {
        "backend": {"provider": "aer", "name": "aer_simulator"}, "qubits": 8}})
    return build_fleet([node])


def _strict(obj: Any) -> tuple[str, bool]:
    """The object as JSON text, and whether it is strict JSON (no NaN or Infinity)."""
    try:
        return json.dumps(obj, allow_nan=False), True
    except ValueError:
        return json.dumps(obj, allow_nan=True, default=str), False


def _job_record(name: str, status: Any, loaded: bool) -> dict[str, Any]:
    try:
        wire = status.to_wire()
    except Exception as err:  # the status itself cannot be serialised
        return {"name": name, "loaded": loaded, "phase": str(status.phase), "reason": None,
                "status": "", "strict": False, "serialise_error": repr(err)}
    text, strict = _strict(wire)
    failed = [c for c in status.conditions if c.type == "Failed" and c.status == "True"]
    return {"name": name, "loaded": loaded, "phase": str(status.phase),
            "reason": str(failed[0].reason) if failed else None, "status": text,
            "strict": strict}


def _work(request: dict[str, Any], fleet: list[Any]) -> dict[str, Any]:
    """Load the files and run their jobs, as `qbackbone run` would, minus the CLI."""
    from qbackbone.api.manifests import ManifestError, load_manifests
    from qbackbone.cli.isolated import failed_status
    from qbackbone.core.errors import JobFailure
    from qbackbone.core.pipeline import run_job
    from qbackbone.core.qpus.fleet import build_fleet

    try:
        found = load_manifests([Path(p) for p in request["files"]])
    except ManifestError as err:
        return {"refused": f"{err.reason}: {err}", "skipped": [], "jobs": []}
    out: dict[str, Any] = {"refused": None, "skipped": list(found.skipped), "jobs": []}
    for broken in found.broken_jobs:
        out["jobs"].append(_job_record(broken.name, failed_status(broken.reason,
                                                                  broken.message), False))
    if found.qpus:
        try:
            fleet = build_fleet(found.qpus)
        except JobFailure as err:  # the CLI's exit 2: the fleet cannot be built
            out["refused"] = f"{err.reason}: {err.message}"
            return out
    policies = {p.metadata.name: p for p in found.policies}
    for job in found.jobs:
        status = run_job(job, fleet, policies, seed=request.get("seed", 1),
                         read_config_map=found.read_config_map)
        out["jobs"].append(_job_record(job.metadata.name, status, True))
    return out


def _child(request: dict[str, Any], fleet: list[Any], out_fd: int) -> None:
    code = 0
    try:
        os.chdir(request["cwd"])  # relative includes would resolve next to the planted files
        Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
        start_kib = _status_kib("VmRSS")
        limit = _virtual_bytes() + int(request.get("memory_mib", 1536)) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            result = _work(request, fleet)
        except BaseException:  # an exception escaping the library: the finding itself
            result = {"escaped": traceback.format_exc()[-4000:], "jobs": [], "skipped": [],
                      "refused": None}
        result["rss_growth_mib"] = round(max(_status_kib("VmHWM") - start_kib, 0) / 1024, 1)
        with os.fdopen(out_fd, "wb") as out:
            out.write(json.dumps(result, default=str).encode())
    except BaseException:
        traceback.print_exc()
        code = 70
    finally:
        sys.stderr.flush()
        os._exit(code)


def run_one(request: dict[str, Any], fleet: list[Any]) -> dict[str, Any]:
    """Fork, run the request in the child within its time limit, and describe what happened."""
    started = time.monotonic()
    outcome = fork_and_collect(lambda out_fd: _child(request, fleet, out_fd),
                               float(request.get("timeout", 20.0)), relay=False)
    elapsed = round(time.monotonic() - started, 3)
    result: dict[str, Any] = {"jobs": [], "skipped": [], "refused": None}
    wait_status = outcome.wait_status
    if outcome.timed_out:
        result["hang"] = True
    elif outcome.payload:
        result = json.loads(outcome.payload)
    elif os.WIFSIGNALED(wait_status):
        result["crash"] = f"killed by {signal.Signals(os.WTERMSIG(wait_status)).name}"
    else:
        result["crash"] = f"exited with code {os.WEXITSTATUS(wait_status)} without a result"
    result["elapsed"] = elapsed
    result["stderr"] = outcome.output_tail.decode(errors="replace")
    return result


def main() -> None:
    """Serve requests until stdin closes."""
    _warm_up()
    fleet = _ideal_fleet()
    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        answer = run_one(json.loads(line), fleet)
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
