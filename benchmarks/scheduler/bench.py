"""The case-study benchmark: fraction of jobs served vs load (the paper's Fig. 3) and vs the
deadline coefficient (Fig. 4), for the QB scheduler, its ablations and the baselines.

    python benchmarks/scheduler/bench.py --quick    # under a minute
    python benchmarks/scheduler/bench.py --full     # several minutes

Every method runs on the same generated instances (``generator.generate``) with several seeds;
every schedule is checked by the validator. Writes ``benchmarks/results/scheduler-<mode>.json``
(one record per run: method, load, deadline coefficient, seed, jobs, served, seconds) and
PNGs ``scheduler-<mode>-load.png``, ``-deadline.png`` (95% confidence intervals over seeds)
and ``-gantt.png`` (the QB schedule of one instance).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import METHODS, mean_ci, run_method

from qbackbone.core.scheduling import (
    AnnealingParams,
    InstanceParams,
    anneal,
    generate,
    render_gantt,
)

MODES: dict[str, dict[str, Any]] = {
    "quick": {"n_jobs": 20, "n_qpus": 6, "seeds": 3, "iterations": 1000,
              "loads": (0.5, 1.0, 2.0, 3.0), "coefs": (0.5, 0.75, 1.5, 3.0)},
    "full": {"n_jobs": 30, "n_qpus": 8, "seeds": 5, "iterations": None,
             "loads": (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
             "coefs": (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)},
}
BASE_LOAD = 1.0
BASE_COEF = 1.5


def sweep(mode: dict[str, Any]) -> list[dict[str, Any]]:
    points = [(load, BASE_COEF) for load in mode["loads"]]
    points += [(BASE_LOAD, c) for c in mode["coefs"] if (BASE_LOAD, c) not in points]
    runs = []
    for load, coef in points:
        for seed in range(mode["seeds"]):
            params = InstanceParams(n_jobs=mode["n_jobs"], n_qpus=mode["n_qpus"], load=load,
                                    deadline_coef=coef, seed=seed)
            problem = generate(params)
            for method in METHODS:
                out = run_method(method, problem, seed, mode["iterations"])
                runs.append({"method": method, "load": load, "deadline_coef": coef,
                             "seed": seed, "jobs": params.n_jobs, "qpus": params.n_qpus,
                             "served": out.served, "fraction": out.served / params.n_jobs,
                             "seconds": round(out.seconds, 4)})
        recent = runs[-len(METHODS) * mode["seeds"]:]
        means = {m: sum(r["served"] for r in recent if r["method"] == m) / mode["seeds"]
                 for m in METHODS}
        print(f"load {load:<5} coef {coef:<5} "
              + "  ".join(f"{m} {v:.1f}" for m, v in means.items()), flush=True)
    return runs


def dominance(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Instances where some method served more jobs than the QB scheduler."""
    by_instance: dict[tuple[float, float, int], dict[str, int]] = {}
    for r in runs:
        by_instance.setdefault((r["load"], r["deadline_coef"], r["seed"]), {})[r["method"]] = (
            r["served"])
    out = []
    for (load, coef, seed), served in sorted(by_instance.items()):
        for m, s in served.items():
            if s > served["qb"]:
                out.append({"load": load, "deadline_coef": coef, "seed": seed, "method": m,
                            "served": s, "qb": served["qb"]})
    return out


def summary(runs: list[dict[str, Any]], axis: str, fixed: tuple[str, float]) -> dict[str, Any]:
    table: dict[str, dict[str, list[float]]] = {}
    for r in runs:
        if r[fixed[0]] != fixed[1]:
            continue
        table.setdefault(r["method"], {}).setdefault(str(r[axis]), []).append(r["fraction"])
    return {m: {x: dict(zip(("mean", "ci95"), mean_ci(v), strict=True)) for x, v in xs.items()}
            for m, xs in table.items()}


def plot(summ: dict[str, Any], xlabel: str, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in METHODS:
        xs = sorted(summ[m], key=float)
        means = [summ[m][x]["mean"] for x in xs]
        cis = [summ[m][x]["ci95"] for x in xs]
        style = "-o" if m == "qb" else ("--s" if m.startswith("qb-") else ":^")
        ax.errorbar([float(x) for x in xs], means, yerr=cis, fmt=style, capsize=3, label=m,
                    lw=2 if m == "qb" else 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of jobs served by their deadline")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = ap.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="small sweep, under a minute")
    group.add_argument("--full", action="store_true", help="the full sweep (default)")
    ap.add_argument("--out", default="benchmarks/results", help="results directory")
    args = ap.parse_args()
    name = "quick" if args.quick else "full"
    mode = MODES[name]
    t0 = time.perf_counter()
    runs = sweep(mode)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    by_load = summary(runs, "load", ("deadline_coef", BASE_COEF))
    by_coef = summary(runs, "deadline_coef", ("load", BASE_LOAD))
    violations = dominance(runs)
    size = f"{mode['n_jobs']} jobs, {mode['n_qpus']} QPUs, {mode['seeds']} seeds"
    plot(by_load, "load (offered work / fleet capacity)",
         f"Served vs load (deadline coef {BASE_COEF}; {size})", out / f"scheduler-{name}-load.png")
    plot(by_coef, "deadline coefficient", f"Served vs deadline (load {BASE_LOAD}; {size})",
         out / f"scheduler-{name}-deadline.png")
    problem = generate(InstanceParams(n_jobs=mode["n_jobs"], n_qpus=mode["n_qpus"],
                                      load=BASE_LOAD, deadline_coef=BASE_COEF, seed=0))
    extra = {} if mode["iterations"] is None else {"iterations": mode["iterations"]}
    render_gantt(problem, anneal(problem, AnnealingParams(seed=0, **extra)),
                 out / f"scheduler-{name}-gantt.png")
    meta = {"mode": name, **{k: v for k, v in mode.items()}, "base_load": BASE_LOAD,
            "base_deadline_coef": BASE_COEF, "seconds": round(time.perf_counter() - t0, 1),
            "cpus": os.cpu_count(), "methods": list(METHODS)}
    result = {"meta": meta, "summary": {"by_load": by_load, "by_deadline_coef": by_coef},
              "qb_beaten": violations, "runs": runs}
    path = out / f"scheduler-{name}.json"
    path.write_text(json.dumps(result, indent=1))
    print(f"QB served fewer jobs than another method on {len(violations)} instance(s)")
    for v in violations:
        print("  ", v)
    print(f"wrote {path} and PNGs in {out} ({meta['seconds']} s)")


if __name__ == "__main__":
    main()
