"""Decision latency of the QB scheduler: 20 jobs on 8 QPUs, 100 jobs on 20 QPUs, and growth.

    python benchmarks/scheduler/latency.py [--quick] [--out benchmarks/results]

Times one ``anneal`` call (baseline portfolio included) with default ``AnnealingParams`` on
generated instances (load 1, deadline coefficient 1.5), several seeds per size; writes
``scheduler-latency.json`` with every run and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from qbackbone.core.scheduling import (
    AnnealingParams,
    InstanceParams,
    anneal,
    check_schedule,
    generate,
)

TARGETS = {(20, 8): 1.0, (100, 20): 5.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and seeds")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    seeds = range(2) if args.quick else range(3)
    sizes = [(20, 8), (100, 20)]
    if not args.quick:
        sizes += [(10, 8), (50, 8), (100, 8), (200, 8), (50, 4), (50, 16), (50, 32), (200, 20)]
    params = AnnealingParams()
    rows: list[dict] = []
    print(f"{'jobs':>5} {'qpus':>5} {'median s':>9} {'max s':>7} {'iters':>6} {'work':>8} target")
    for n_jobs, n_qpus in sizes:
        runs = []
        for seed in seeds:
            problem = generate(InstanceParams(n_jobs=n_jobs, n_qpus=n_qpus, load=1.0,
                                              deadline_coef=1.5, seed=seed))
            p = AnnealingParams(
                iterations=params.iterations, initial_temperature=params.initial_temperature,
                cooling_rate=params.cooling_rate, seed=seed,
            )
            t0 = time.perf_counter()
            s = anneal(problem, p)
            dt = time.perf_counter() - t0
            check_schedule(problem, s)
            runs.append({"jobs": n_jobs, "qpus": n_qpus, "seed": seed, "seconds": dt,
                         "served": s.served, "iterations": s.stats["iterations"],
                         "work": s.stats["work"]})
        rows += runs
        times = [r["seconds"] for r in runs]
        target = TARGETS.get((n_jobs, n_qpus))
        ok = target is not None and max(times) <= target
        verdict = "" if target is None else f"<= {target} s: {'met' if ok else 'MISSED'}"
        print(f"{n_jobs:>5} {n_qpus:>5} {statistics.median(times):>9.3f} {max(times):>7.3f} "
              f"{int(runs[0]['iterations']):>6} {int(runs[0]['work']):>8} {verdict}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scheduler-latency.json"
    meta = {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg(),
            "params": {"iterations": params.iterations, "cooling_rate": params.cooling_rate}}
    path.write_text(json.dumps({"meta": meta, "runs": rows}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
