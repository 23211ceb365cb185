"""`qbackbone`: run jobs locally, list the fleet, generate CRDs, start a dev cluster."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from qbackbone import __version__
from qbackbone.api.conditions import Phase, Reason
from qbackbone.api.manifests import ManifestError, load_manifests
from qbackbone.api.quantumjob import QuantumJobStatus

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE = 0, 1, 2


def _dump(obj: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(obj, indent=2, allow_nan=False) + "\n"
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)


def _job_object(name: str, namespace: str | None, status: QuantumJobStatus) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "qbackbone.io/v1alpha1", "kind": "QuantumJob", "metadata": meta,
            "status": status.to_wire()}


def _write_job(obj: dict[str, Any], fmt: str, index: int, total: int) -> None:
    """Write one job's object as soon as it ends (YAML); JSON lists wait for the last one."""
    if fmt == "json" and total > 1:
        return
    if fmt == "yaml" and index > 0:
        sys.stdout.write("---\n")
    sys.stdout.write(_dump(obj, fmt))
    if fmt == "yaml":
        sys.stdout.write("...\n")  # YAML's document end: a reader knows this one is whole
    sys.stdout.flush()


def cmd_run(args: argparse.Namespace) -> int:
    """Run every QuantumJob found in the paths, each in its own process; print their status."""
    from qbackbone.api.limits import JobLimits
    from qbackbone.api.policy import with_network_state
    from qbackbone.cli.history import run_history
    from qbackbone.cli.isolated import Budget, failed_status, run_isolated
    from qbackbone.cli.summary import TerminalProgress, summarise
    from qbackbone.core.errors import JobFailure
    from qbackbone.core.pipeline import run_job
    from qbackbone.core.pipeline.reduce import resolve_policy
    from qbackbone.core.qpus.fleet import build_fleet, default_fleet_nodes

    found = load_manifests([Path(p) for p in args.paths])
    for why in found.skipped:
        print(f"error: {Reason.INVALID_MANIFEST}: {why} (skipped)", file=sys.stderr)
    if not found.jobs and not found.broken_jobs:
        raise ManifestError(f"no QuantumJob found in {', '.join(args.paths)}")
    nodes = found.qpus or list(default_fleet_nodes())
    try:
        fleet = build_fleet(nodes)
    except JobFailure as err:
        raise ManifestError(f"{err.reason}: {err.message}") from None
    print(f"fleet: {', '.join(q.name for q in fleet)}"
          f"{' (built-in default)' if not found.qpus else ''}", file=sys.stderr)
    policies = {p.metadata.name: with_network_state(p, found.read_config_map)
                for p in found.policies}
    history = run_history(args, fleet)  # records jobs; learning as each policy allows
    total = len(found.broken_jobs) + len(found.jobs)
    objects: list[dict[str, Any]] = []
    failed = False

    def finish(name: str, namespace: str | None, status: QuantumJobStatus) -> None:
        nonlocal failed
        summarise(name, status)
        objects.append(_job_object(name, namespace, status))
        _write_job(objects[-1], args.output, len(objects) - 1, total)
        failed |= status.phase == Phase.FAILED

    for broken in found.broken_jobs:
        finish(broken.name, broken.namespace, failed_status(broken.reason, broken.message))
    for job in found.jobs:
        name = job.metadata.name
        learned = None
        try:
            policy = resolve_policy(job, policies)
            limits, learned = policy.spec.limits, history.learned_for(policy)
        except JobFailure:  # the job itself fails PolicyNotFound, within the default limits
            limits = JobLimits()
        progress = TerminalProgress(name) if not args.quiet else None

        def work(job: Any = job, progress: Any = progress,
                 learned: Any = learned) -> QuantumJobStatus:
            return run_job(job, fleet, policies, progress=progress, seed=args.seed,
                           read_config_map=found.read_config_map, learned=learned)

        if args.no_isolation:
            status = work()
        else:
            status = run_isolated(work, Budget(seconds=limits.max_run_seconds,
                                               memory_mib=limits.max_memory_mib))
        finish(name, job.metadata.namespace, status)
        history.record(job, status)
    history.close()
    if args.output == "json" and total > 1:
        sys.stdout.write(_dump({"apiVersion": "v1", "kind": "List", "items": objects}, "json"))
    if found.skipped:
        return EXIT_USAGE  # the jobs that could be read ran; the rest is listed on stderr
    return EXIT_JOB_FAILED if failed else EXIT_OK


def cmd_fleet(args: argparse.Namespace) -> int:
    """List the QPUs (the given QPUNodes, or the default fleet) with their calibration."""
    from qbackbone.core.qpus.devices import fake_device_names
    from qbackbone.core.qpus.fleet import build_fleet, default_fleet_nodes

    if args.devices:
        for name in sorted(fake_device_names()):
            print(name)
        return EXIT_OK
    found = load_manifests([Path(p) for p in args.paths]) if args.paths else None
    nodes = (found.qpus if found else []) or list(default_fleet_nodes())
    rows = []
    for qpu in build_fleet(nodes):
        d = qpu.descriptor
        snap = qpu.calibration_snapshot()
        rows.append({
            "name": d.name, "provider": d.provider, "backend": d.backend_name,
            "qubits": d.qubits, "deviceQubits": d.device_qubits,
            "medianT1Us": snap.median_t1_us if snap else None,
            "medianT2Us": snap.median_t2_us if snap else None,
            "median2qError": snap.median_2q_error if snap else None,
            "twoQubitGate": snap.two_qubit_gate if snap else None,
            "maxDepth": d.max_depth, "maxDepthDerived": d.max_depth_derived,
            "shotTimeUs": round(d.shot_time * 1e6, 1), "setupTimeS": d.setup_time,
            "site": d.site,
        })
    if args.output != "table":
        sys.stdout.write(_dump(rows, args.output))
        return EXIT_OK

    def cell(key: str, value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.2e}" if key == "median2qError" else str(value)

    headers = ["NAME", "BACKEND", "QUBITS", "T1(us)", "T2(us)", "2Q-ERR", "2Q-GATE",
               "MAX-DEPTH", "SHOT(us)", "SETUP(s)", "SITE"]
    keys = ["name", "backend", "qubits", "medianT1Us", "medianT2Us", "median2qError",
            "twoQubitGate", "maxDepth", "shotTimeUs", "setupTimeS", "site"]
    table = [headers] + [[cell(k, r[k]) for k in keys] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    print("max depth: two-qubit-gate layers at which estimated success falls to 0.5 "
          "(derived from calibration; '-' = unbounded)", file=sys.stderr)
    return EXIT_OK


def cmd_crds(args: argparse.Namespace) -> int:
    """Write (or check) the CRD manifests generated from the API models."""
    from qbackbone.api.crdgen import build_crds

    out = Path(args.output)
    drift = []
    for filename, crd in build_crds().items():
        text = "# Generated by `qbackbone crds` from the pydantic models; do not edit.\n"
        text += yaml.safe_dump(crd, sort_keys=False, width=100)
        path = out / filename
        if args.check:
            if not path.exists() or path.read_text() != text:
                drift.append(str(path))
        else:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}", file=sys.stderr)
    if drift:
        print(f"CRDs differ from the models: {', '.join(drift)}; run `qbackbone crds`",
              file=sys.stderr)
        return EXIT_JOB_FAILED
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="qbackbone", description=__doc__)
    parser.add_argument("--version", action="version", version=f"qbackbone {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run QuantumJobs locally and print their status")
    run.add_argument("paths", nargs="+", help="manifest files or directories (QuantumJob, "
                     "QPUNode, InvocationPolicy; several documents per file)")
    run.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    run.add_argument("--seed", type=int, default=None, help="seed simulators and transpiler")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    run.add_argument("--no-isolation", action="store_true",
                     help="run jobs in this process (no per-job time or memory limit; for "
                     "debugging)")
    from qbackbone.cli.history import add_run_options
    add_run_options(run)
    run.set_defaults(func=cmd_run)

    fleet = sub.add_parser("fleet", help="list the QPU fleet with calibration and max depth")
    fleet.add_argument("paths", nargs="*", help="QPUNode manifests (default: built-in fleet)")
    fleet.add_argument("-o", "--output", choices=["table", "yaml", "json"], default="table")
    fleet.add_argument("--devices", action="store_true", help="list the offline fake devices")
    fleet.set_defaults(func=cmd_fleet)

    crds = sub.add_parser("crds", help="generate the CRDs from the API models")
    crds.add_argument("--output", default="crds", help="directory (default: crds)")
    crds.add_argument("--check", action="store_true", help="fail when the files differ")
    crds.set_defaults(func=cmd_crds)

    # Subcommands that live with their own packages.
    from controllers.main import register as register_operator

    from qbackbone.cli.history import register as register_history
    from qbackbone.cli.schedule import register as register_schedule
    from qbackbone.dev.cli import register as register_dev
    from qbackbone.deviceplugin.cli import register as register_device_plugin
    from qbackbone.dra.cli import register as register_dra_driver
    from qbackbone.worker.cli import register as register_worker

    for register in (register_schedule, register_history, register_operator, register_worker,
                     register_dev, register_device_plugin, register_dra_driver):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `qbackbone` command."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="qiskit_ibm_runtime")
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ManifestError as err:
        print(f"error: {Reason.INVALID_MANIFEST}: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
