"""Decision latency of the QB scheduler: time to a first plan and to the final plan.

    python benchmarks/scheduler/latency.py [--quick] [--engines native,python] [--out DIR]

On generated instances (load 1, deadline coefficient 1.5, several seeds per size) it times,
for each placement engine (``qbackbone.core.scheduling.engine``: the compiled one and the
pure-Python reference): the first usable plan (greedy EDF with shot splitting, the annealer's
first start) and the final plan of ``anneal(problem, AnnealingParams(seed=...))``, the default
entry point, in wall and CPU seconds. Every plan is checked with the validator; the two engines
must give the same plan. Targets (issue 17): 100 jobs / 20 QPUs within 0.2 s, 1,000 / 100
within 2 s. Writes ``scheduler-latency.json`` (``-quick`` with --quick) and prints a table.
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
    edf,
    generate,
)
from qbackbone.core.scheduling.engine import native_available

TARGETS = {(100, 20): 0.2, (1000, 100): 2.0}


def _timed(fn):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer sizes and seeds")
    ap.add_argument("--engines", default="native,python")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    engines = [e for e in args.engines.split(",") if e != "native" or native_available()]
    seeds = range(2) if args.quick else range(3)
    sizes = [(100, 20), (1000, 100)] if args.quick else [(20, 8), (100, 20), (300, 50),
                                                          (1000, 100)]
    rows: list[dict] = []
    print(f"{'engine':>7} {'jobs':>5} {'qpus':>5} {'first s':>8} {'final s':>8} {'max s':>7} "
          f"{'cpu s':>6} {'served':>7} {'edf':>5} lean target")
    for n_jobs, n_qpus in sizes:
        plans: dict[str, list] = {}
        for engine in engines:
            os.environ["QB_SCHEDULER_ENGINE"] = engine
            runs = []
            for seed in seeds:
                problem = generate(InstanceParams(n_jobs=n_jobs, n_qpus=n_qpus, load=1.0,
                                                  deadline_coef=1.5, seed=seed))
                first, first_wall, _ = _timed(lambda p=problem: edf(p))
                final, wall, cpu = _timed(lambda p=problem, s=seed: anneal(
                    p, AnnealingParams(seed=s)))
                check_schedule(problem, first)
                check_schedule(problem, final)
                plans.setdefault(engine, []).append(final.fragments)
                runs.append({"engine": engine, "jobs": n_jobs, "qpus": n_qpus, "seed": seed,
                             "first_seconds": first_wall, "seconds": wall, "cpu_seconds": cpu,
                             "served": final.served, "edf_served": first.served,
                             "lean": bool(final.stats.get("lean")),
                             "iterations": final.stats["iterations"],
                             "work": final.stats["work"], "exact": final.stats.get("exact")})
            rows += runs
            times = [r["seconds"] for r in runs]
            target = TARGETS.get((n_jobs, n_qpus))
            verdict = "" if target is None else (
                f"<= {target} s: {'met' if max(times) <= target else 'MISSED'}")
            print(f"{engine:>7} {n_jobs:>5} {n_qpus:>5} "
                  f"{statistics.median(r['first_seconds'] for r in runs):>8.4f} "
                  f"{statistics.median(times):>8.3f} {max(times):>7.3f} "
                  f"{statistics.median(r['cpu_seconds'] for r in runs):>6.3f} "
                  f"{statistics.mean(r['served'] for r in runs):>7.1f} "
                  f"{statistics.mean(r['edf_served'] for r in runs):>5.1f} "
                  f"{runs[0]['lean']!s:>5} {verdict}", flush=True)
        if len(plans) == 2:
            assert plans["native"] == plans["python"], f"engines disagree at {n_jobs}/{n_qpus}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ("scheduler-latency-quick.json" if args.quick else "scheduler-latency.json")
    meta = {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg(), "engines": engines,
            "targets": {f"{j}/{q}": t for (j, q), t in TARGETS.items()}}
    path.write_text(json.dumps({"meta": meta, "runs": rows}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
