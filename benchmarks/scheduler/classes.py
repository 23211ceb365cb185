"""Per-class quality of the scheduler against the proven optimum (issue 17, item 3).

    python benchmarks/scheduler/classes.py --quick   # 2 seeds per class, 10 s proofs
    python benchmarks/scheduler/classes.py           # 8 seeds per class, 20 s proofs

For every class of :data:`~qbackbone.core.scheduling.instance_classes.INSTANCE_CLASSES` and
every seed, these plan the instance: the QB scheduler (``anneal`` with default params), its
three ablations (no shot splitting, no LOCC awareness, neither), greedy EDF and the
operator's joint plan (``admission.plan_waiting``, on the problem with the jobs' cut plans
removed: the operator never re-cuts a waiting job); every plan is checked by the validator
against the problem it solved (the ablations without LOCC: every job LO-cut). CP-SAT
(``solve_exact``, one worker, hinted with the QB plan: a proof is a proof, whatever the hint)
proves the optimum or not; only proven instances count toward the ratios, also those where
the CP-SAT step inside ``anneal`` (the same model) proved it: on a loaded machine it may get
more wall time than the benchmark's limit. Relabelling check: QB on the problem with QPUs and
jobs in reverse order and renamed must serve as many jobs. Reports per class and method the
mean and minimum of served / optimum, how many instances fell below the optimum and by how
many jobs at most, QB's mean seconds, the CP-SAT step inside QB (runs, wins, proofs) and
relabelling mismatches. Writes ``benchmarks/results/scheduler-classes.json``
(``-quick.json`` with ``--quick``) with every run (class, seed, served per method), so an
instance below the optimum can be reproduced with ``INSTANCE_CLASSES[class](seed)``.

Run from the repository root with the package importable (``PYTHONPATH=operator`` or the
package installed).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from qbackbone.core.scheduling import (
    AnnealingParams,
    Problem,
    Schedule,
    anneal,
    edf,
    problem_for,
    solve_exact,
    validate,
)
from qbackbone.core.scheduling.admission import plan_waiting
from qbackbone.core.scheduling.instance_classes import INSTANCE_CLASSES

MODES: dict[str, dict[str, Any]] = {
    "quick": {"seeds": 2, "time_limit": 10.0},
    "full": {"seeds": 8, "time_limit": 20.0},
}
#: Methods in table order; each ablation is (shot splitting, LOCC awareness).
ABLATIONS: dict[str, tuple[bool, bool]] = {
    "qb": (True, True), "qb-nosplit": (False, True), "qb-nolocc": (True, False),
    "qb-neither": (False, False),
}
METHODS = (*ABLATIONS, "edf", "plan_waiting")


def relabel(problem: Problem) -> Problem:
    """QPUs and jobs in reverse order under new names (allowed-QPU sets renamed too)."""
    qnew = {q.name: f"Q{len(problem.qpus) - i:02d}" for i, q in enumerate(problem.qpus)}
    jnew = {j.name: f"J{len(problem.jobs) - i:02d}" for i, j in enumerate(problem.jobs)}
    qpus = tuple(replace(q, name=qnew[q.name]) for q in reversed(problem.qpus))
    jobs = tuple(
        replace(j, name=jnew[j.name], subcircuits=tuple(
            s if s.qpus is None else replace(s, qpus=frozenset(qnew[n] for n in s.qpus))
            for s in j.subcircuits))
        for j in reversed(problem.jobs))
    return Problem(qpus, jobs, problem.now)


def without_plans(problem: Problem) -> Problem:
    """The jobs as the operator's joint plan sees them: cut kinds fixed (no cut plan)."""
    return replace(problem, jobs=tuple(replace(j, plan=None) for j in problem.jobs))


def checked(problem: Problem, schedule: Schedule, invalid: list[str], label: str) -> int:
    """Jobs ``schedule`` serves on ``problem`` as the validator counts them; a violation is
    recorded in ``invalid``."""
    report = validate(problem, schedule)
    if not report.valid:
        invalid.append(f"{label}: {report.violations[:3]}")
    return len(report.served)


def run_instance(name: str, seed: int, time_limit: float) -> dict[str, Any]:
    problem = INSTANCE_CLASSES[name](seed)
    invalid: list[str] = []
    served: dict[str, int] = {}
    seconds: dict[str, float] = {}
    qb: Schedule | None = None
    for method, (split, locc) in ABLATIONS.items():
        params = AnnealingParams(shot_splitting=split, locc_aware=locc)
        t0 = time.perf_counter()
        s = anneal(problem, params)
        seconds[method] = time.perf_counter() - t0
        served[method] = checked(problem_for(problem, params), s, invalid, method)
        if method == "qb":
            qb = s
    assert qb is not None
    t0 = time.perf_counter()
    served["edf"] = checked(problem, edf(problem), invalid, "edf")
    seconds["edf"] = time.perf_counter() - t0
    fixed_cuts = without_plans(problem)
    t0 = time.perf_counter()
    served["plan_waiting"] = checked(fixed_cuts, plan_waiting(fixed_cuts), invalid,
                                     "plan_waiting")
    seconds["plan_waiting"] = time.perf_counter() - t0
    other = relabel(problem)
    relabelled = anneal(other, AnnealingParams())
    relabel_served = checked(other, relabelled, invalid, "qb-relabelled")
    exact = solve_exact(problem, time_limit=time_limit, workers=1, hint=qb)
    if exact.schedule is not None:
        checked(problem, exact.schedule, invalid, "cpsat")
    optimum, proof = None, None
    if exact.status == "OPTIMAL":
        optimum, proof = exact.served, "cpsat"
    elif qb.stats.get("exact_optimal") == 1.0:  # the same model, proved inside anneal
        optimum, proof = int(qb.stats["exact_served"]), "cpsat-in-qb"
    if optimum is not None and max(served.values()) > optimum:
        invalid.append(f"a method serves more than the proven optimum {optimum}: {served}")
    return {
        "class": name, "seed": seed, "jobs": len(problem.jobs), "qpus": len(problem.qpus),
        "optimum": optimum, "proof": proof, "cpsat_status": exact.status,
        "cpsat_served": exact.served, "cpsat_bound": exact.bound,
        "cpsat_seconds": round(exact.seconds, 2), "served": served,
        "seconds": {k: round(v, 3) for k, v in seconds.items()},
        "relabel_served": relabel_served,
        "qb_exact": {k: qb.stats.get(k, 0.0) for k in ("exact", "exact_won", "exact_optimal")},
        "invalid": invalid,
    }


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    proven = [r for r in rows if r["optimum"] is not None]
    out: dict[str, Any] = {
        "instances": len(rows), "proven": len(proven),
        "optimum_share": (sum(r["optimum"] for r in proven) / sum(r["jobs"] for r in proven)
                          if proven else None),
        "invalid": sum(len(r["invalid"]) for r in rows),
        "relabel_mismatches": sum(r["relabel_served"] != r["served"]["qb"] for r in rows),
        "qb_mean_seconds": statistics.fmean(r["seconds"]["qb"] for r in rows),
        "qb_cpsat_runs": sum(r["qb_exact"]["exact"] for r in rows),
        "qb_cpsat_won": sum(r["qb_exact"]["exact_won"] for r in rows),
        "qb_cpsat_optimal": sum(r["qb_exact"]["exact_optimal"] for r in rows),
        "methods": {},
    }
    for m in METHODS:
        ratios = [1.0 if r["optimum"] == 0 else r["served"][m] / r["optimum"] for r in proven]
        short = [r["optimum"] - r["served"][m] for r in proven]
        out["methods"][m] = {
            "mean": statistics.fmean(ratios) if ratios else None,
            "min": min(ratios) if ratios else None,
            "below": sum(s > 0 for s in short),
            "max_short": max(short, default=0),
            "below_seeds": [r["seed"] for r, s in zip(proven, short, strict=True) if s > 0],
        }
    return out


def table(summary: dict[str, Any]) -> str:
    head = f"{'class':<20} {'proven':>6} {'opt':>5} " + " ".join(f"{m:>16}" for m in METHODS)
    lines = [head, " " * 34 + "  (mean/min ratio, below, max short)",
             "-" * len(head)]
    for name, s in summary.items():
        cells = []
        for m in METHODS:
            c = s["methods"][m]
            cells.append(f"{'-':>16}" if c["mean"] is None else
                         f"{c['mean']:.3f}/{c['min']:.2f} {c['below']:>2} {c['max_short']:>2}"
                         .rjust(16))
        share = "-" if s["optimum_share"] is None else f"{s['optimum_share']:.2f}"
        lines.append(f"{name:<20} {s['proven']:>2}/{s['instances']:<3} {share:>5} "
                     + " ".join(cells))
    lines.append("")
    lines.append(f"{'class':<20} {'QB s':>6} {'CP-SAT in QB: runs/won/proved':>30} "
                 f"{'relabel mismatches':>19} {'invalid':>8}")
    for name, s in summary.items():
        cp = f"{s['qb_cpsat_runs']:.0f}/{s['qb_cpsat_won']:.0f}/{s['qb_cpsat_optimal']:.0f}"
        lines.append(f"{name:<20} {s['qb_mean_seconds']:>6.2f} {cp:>30} "
                     f"{s['relabel_mismatches']:>19} {s['invalid']:>8}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--classes", nargs="*", help="only these classes (default: all)")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    mode_name = "quick" if args.quick else "full"
    mode = MODES[mode_name]
    names = args.classes or list(INSTANCE_CLASSES)
    started = time.perf_counter()
    rows = []
    for name in names:
        for seed in range(mode["seeds"]):
            row = run_instance(name, seed, mode["time_limit"])
            rows.append(row)
            print(f"{name} seed {seed}: optimum {row['optimum']} ({row['cpsat_status']}, "
                  f"{row['cpsat_seconds']} s) served {row['served']} "
                  f"relabelled {row['relabel_served']} invalid {len(row['invalid'])}",
                  flush=True)
    summary = {n: summarise([r for r in rows if r["class"] == n]) for n in names}
    print(table(summary))
    commit = os.environ.get("QB_SOURCE_COMMIT", "")  # when run on a snapshot of a commit
    if not commit:
        with contextlib.suppress(OSError):
            commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True,
                                    text=True, check=False).stdout.strip()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("scheduler-classes-quick.json" if args.quick else "scheduler-classes.json")
    path.write_text(json.dumps({
        "meta": {"mode": mode_name, **mode, "classes": names, "commit": commit,
                 "seconds": round(time.perf_counter() - started, 1)},
        "summary": summary, "runs": rows}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
