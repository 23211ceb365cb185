"""Markdown tables from the scheduler result files (as pasted into docs/scheduler.md).

    python benchmarks/scheduler/report.py [--mode full] [--results benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any


def sweep_table(summary: dict[str, Any], methods: list[str], axis: str) -> str:
    xs = sorted(summary[methods[0]], key=float)
    lines = [f"| method | {' | '.join(f'{axis} {x}' for x in xs)} |",
             "|---|" + "---|" * len(xs)]
    for m in methods:
        cells = [f"{summary[m][x]['mean']:.2f} ± {summary[m][x]['ci95']:.2f}" for x in xs]
        lines.append(f"| {m} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="full")
    ap.add_argument("--results", default="benchmarks/results")
    args = ap.parse_args()
    res = Path(args.results)
    bench = json.loads((res / f"scheduler-{args.mode}.json").read_text())
    methods = bench["meta"]["methods"]
    m = bench["meta"]
    print(f"Served fraction (mean ± 95% CI over {m['seeds']} seeds; {m['n_jobs']} jobs, "
          f"{m['n_qpus']} QPUs), deadline coefficient {m['base_deadline_coef']}:\n")
    print(sweep_table(bench["summary"]["by_load"], methods, "load"))
    print(f"\nServed fraction vs deadline coefficient, load {m['base_load']}:\n")
    print(sweep_table(bench["summary"]["by_deadline_coef"], methods, "coef"))
    runs = bench["runs"]
    instances = {(r["load"], r["deadline_coef"], r["seed"]) for r in runs}
    print(f"\nQB served fewer jobs than another method on {len(bench['qb_beaten'])} of "
          f"{len(instances)} instances: " + "; ".join(
              f"{v['method']} {v['served']} vs {v['qb']} (load {v['load']}, coef "
              f"{v['deadline_coef']}, seed {v['seed']})" for v in bench["qb_beaten"]))
    exact_path = res / f"scheduler-exact-{args.mode}.json"
    if exact_path.exists():
        exact = json.loads(exact_path.read_text())
        print("\n| class | proven optimal | QB mean gap | QB max gap | QB = optimum | "
              "QB total gap | EDF mean gap |\n|---|---|---|---|---|---|---|")
        for cls, s in exact["summary"].items():
            print(f"| {cls} | {s['proven_optimal']}/{s['instances']} | "
                  f"{100 * s['qb_mean_gap']:.1f}% | {100 * s['qb_max_gap']:.0f}% | "
                  f"{100 * s['qb_optimal_share']:.0f}% | {100 * s['qb_total_gap']:.1f}% | "
                  f"{100 * s['edf_mean_gap']:.1f}% |")
        proven = [r for r in exact["runs"] if r["cpsat_status"] == "OPTIMAL"]
        if proven:
            gaps = [(r["cpsat"] - r["qb"]) / r["cpsat"] if r["cpsat"] else 0.0 for r in proven]
            total = 1 - sum(r["qb"] for r in proven) / sum(r["cpsat"] for r in proven)
            print(f"| all | {len(proven)}/{len(exact['runs'])} | "
                  f"{100 * statistics.fmean(gaps):.1f}% | {100 * max(gaps):.0f}% | "
                  f"{100 * sum(g == 0 for g in gaps) / len(gaps):.0f}% | "
                  f"{100 * total:.1f}% | |")
    lat_path = res / "scheduler-latency.json"
    if lat_path.exists():
        lat = json.loads(lat_path.read_text())
        sizes: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for r in lat["runs"]:
            sizes.setdefault((r["jobs"], r["qpus"]), []).append(r)
        print("\n| jobs | QPUs | median s | max s | iterations | work |\n|---|---|---|---|---|---|")
        for (j, q), rs in sorted(sizes.items()):
            t = [r["seconds"] for r in rs]
            print(f"| {j} | {q} | {statistics.median(t):.2f} | {max(t):.2f} | "
                  f"{int(statistics.median(r['iterations'] for r in rs))} | "
                  f"{int(statistics.median(r['work'] for r in rs))} |")


if __name__ == "__main__":
    main()
