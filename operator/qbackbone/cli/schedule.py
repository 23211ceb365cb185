"""`qbackbone schedule`: plan the given jobs jointly on the fleet and draw the Gantt chart."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from qbackbone.api.manifests import ManifestError, load_manifests
from qbackbone.api.policy import SchedulerOptions


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `schedule` command."""
    cmd = subparsers.add_parser(
        "schedule", help="schedule QuantumJobs jointly (L3 scheduler) and draw a Gantt chart")
    cmd.add_argument("paths", nargs="+", help="manifests: QuantumJobs, QPUNodes, policies")
    cmd.add_argument("--gantt", default="schedule.png", help="PNG to write (default: %(default)s)")
    cmd.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")
    cmd.add_argument("--policy", default="default",
                     help="policy whose scheduler settings apply (default: %(default)s)")
    cmd.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Decide every job, schedule the quantum ones together, print and draw the schedule."""
    from qbackbone.cli.main import _dump
    from qbackbone.core import scheduling as sched
    from qbackbone.core.errors import JobFailure
    from qbackbone.core.pipeline import decide_job, start_job
    from qbackbone.core.pipeline.joint import schedule_jointly
    from qbackbone.core.qpus.fleet import build_fleet, default_fleet_nodes

    found = load_manifests([Path(p) for p in args.paths])
    if not found.jobs:
        raise ManifestError(f"no QuantumJob found in {', '.join(args.paths)}")
    fleet = build_fleet(found.qpus or list(default_fleet_nodes()))
    policies = {p.metadata.name: p for p in found.policies}
    options = policies[args.policy].spec.scheduler if args.policy in policies \
        else SchedulerOptions()
    decided, refused = [], {}
    for job in found.jobs:
        try:
            decided.append(decide_job(start_job(job), fleet, policies))
        except JobFailure as err:
            refused[job.metadata.name] = f"{err.reason}: {err.message}"
    joint = schedule_jointly(decided, fleet, options)
    plan = joint.schedule
    sched.render_gantt(joint.problem, plan, args.gantt,
                       title=f"{plan.served} of {len(joint.problem.jobs)} jobs served "
                       f"({plan.method})")
    out: dict[str, Any] = {
        "method": plan.method, "admitted": sorted(plan.admitted), "served": plan.served,
        "fragments": [{"job": f.job, "subcircuit": f.subcircuit, "qpu": f.qpu,
                       "shots": f.shots, "start": round(f.start, 6), "end": round(f.end, 6)}
                      for f in sorted(plan.fragments, key=lambda f: (f.qpu, f.start))],
        "notOnQPUs": {**joint.skipped, **refused},
    }
    sys.stdout.write(_dump(out, args.output))
    print(f"{plan.served} of {len(joint.problem.jobs)} quantum job(s) served by their "
          f"deadline with {plan.method}; {len(out['notOnQPUs'])} not on QPUs; "
          f"Gantt chart: {args.gantt}", file=sys.stderr)
    return 0
