"""Gap of the QB scheduler to the CP-SAT optimum on instances small enough to prove it.

    python benchmarks/scheduler/exact_gap.py --quick   # about a minute
    python benchmarks/scheduler/exact_gap.py --full    # tens of minutes (CP-SAT time limits)

For each instance class (jobs x QPUs) and several loads, deadline coefficients and seeds, runs
the QB scheduler (default ``AnnealingParams``), greedy EDF and CP-SAT (both cut kinds allowed,
as in QB). Every schedule is validated. Only instances CP-SAT proves optimal count toward the
gap; the gap of an instance is ``(optimum - served) / optimum``. Writes
``benchmarks/results/scheduler-exact-<mode>.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from qbackbone.core.scheduling import (
    AnnealingParams,
    InstanceParams,
    anneal,
    check_schedule,
    edf,
    generate,
    solve_exact,
)

MODES: dict[str, dict[str, Any]] = {
    "quick": {"classes": ((5, 2), (6, 3)), "loads": (1.0, 2.0), "coefs": (1.0,),
              "seeds": 3, "time_limit": 10.0},
    "full": {"classes": ((5, 2), (6, 3), (8, 3), (10, 4)), "loads": (1.0, 2.0),
             "coefs": (0.75, 1.5), "seeds": 3, "time_limit": 20.0},
}


def gap(opt: int, served: int) -> float:
    return 0.0 if opt == 0 else (opt - served) / opt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true")
    group.add_argument("--full", action="store_true")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    name = "quick" if args.quick else "full"
    mode = MODES[name]
    rows = []
    for n_jobs, n_qpus in mode["classes"]:
        for load in mode["loads"]:
            for coef in mode["coefs"]:
                for seed in range(mode["seeds"]):
                    problem = generate(InstanceParams(n_jobs=n_jobs, n_qpus=n_qpus, load=load,
                                                      deadline_coef=coef, seed=seed))
                    t0 = time.perf_counter()
                    qb = anneal(problem, AnnealingParams(seed=seed))
                    qb_s = time.perf_counter() - t0
                    check_schedule(problem, qb)
                    greedy = edf(problem)
                    check_schedule(problem, greedy)
                    exact = solve_exact(problem, time_limit=mode["time_limit"], hint=qb)
                    if exact.schedule is not None:
                        check_schedule(problem, exact.schedule)
                    row = {"class": f"{n_jobs}x{n_qpus}", "jobs": n_jobs, "qpus": n_qpus,
                           "load": load, "deadline_coef": coef, "seed": seed,
                           "qb": qb.served, "edf": greedy.served, "cpsat": exact.served,
                           "cpsat_status": exact.status, "cpsat_bound": exact.bound,
                           "cpsat_seconds": round(exact.seconds, 2),
                           "qb_seconds": round(qb_s, 3)}
                    rows.append(row)
                    print(row, flush=True)
    summary = {}
    for cls in dict.fromkeys(r["class"] for r in rows):
        proven = [r for r in rows if r["class"] == cls and r["cpsat_status"] == "OPTIMAL"]
        if not proven:
            continue
        opt = sum(r["cpsat"] for r in proven)
        summary[cls] = {
            "instances": sum(r["class"] == cls for r in rows),
            "proven_optimal": len(proven),
            "qb_mean_gap": statistics.fmean(gap(r["cpsat"], r["qb"]) for r in proven),
            "qb_max_gap": max(gap(r["cpsat"], r["qb"]) for r in proven),
            "qb_total_gap": 1 - sum(r["qb"] for r in proven) / opt if opt else 0.0,
            "qb_optimal_share": sum(r["qb"] == r["cpsat"] for r in proven) / len(proven),
            "edf_mean_gap": statistics.fmean(gap(r["cpsat"], r["edf"]) for r in proven),
        }
    print(f"{'class':>6} {'proven':>7} {'QB mean gap':>12} {'QB max':>7} {'QB=opt':>7} "
          f"{'EDF mean gap':>13}")
    for cls, s in summary.items():
        print(f"{cls:>6} {s['proven_optimal']:>3}/{s['instances']:<3} "
              f"{100 * s['qb_mean_gap']:>11.1f}% {100 * s['qb_max_gap']:>6.0f}% "
              f"{100 * s['qb_optimal_share']:>6.0f}% {100 * s['edf_mean_gap']:>12.1f}%")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"scheduler-exact-{name}.json"
    path.write_text(json.dumps({"meta": {"mode": name, **mode}, "summary": summary,
                                "runs": rows}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
