"""Decomposition benchmark (issue 21): traffic engineering wider than every QPU, by region.

    .venv/bin/python benchmarks/optimize/decomposition.py            # every case (~30 min)
    .venv/bin/python benchmarks/optimize/decomposition.py --quick    # Abilene and GEANT, 20

Writes benchmarks/results/decomposition[-quick].json and prints a table. Per case (a Topology
Zoo backbone or a generated 200-node one, with gravity-model demands loading the busiest
shortest-path link to 120 %):

- decomposed: `qbackbone run`'s pipeline (run_job) on the built-in default fleet (nairobi 7,
  guadalupe 8, torino 7 noisy qubits; aer-ideal 20), execution.mode SingleQPU, regional
  sub-QUBOs of at most 8 variables, QAOA p=2, 1000 shots per sub-QUBO; its wall time, QPU
  calls, rounds, and the objective (congestion, sum of squared utilisations) recomputed from
  the reported routes;
- the same decomposition with every block solved exactly (classical blocks): what the regions
  and the coordinator reach without QAOA;
- whole-problem CP-SAT (the exact routing model) and simulated annealing (on the whole QUBO,
  refined) given the decomposed run's wall time; CP-SAT's bound;
- today's pinning reduction: the smallest demands pinned until the QUBO fits 16 variables,
  the rest solved to optimality, evaluated on the whole problem.

Ratios are reference / decomposed objective (minimised: 1 is as good, above 1 is better).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import networkx as nx
from instances import gravity_demands, synthetic_graph, zoo_graph  # benchmarks/optimize

from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.problem import TrafficEngineeringProblem
from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.optimize.classical import solve_exact
from qbackbone.core.optimize.decompose import (
    ClassicalBlockSolver,
    Settings,
    annealing_reference,
    cp_sat_reference,
    decompose_and_solve,
    make_regions,
    recompute_loads,
)
from qbackbone.core.optimize.problem import ProblemError
from qbackbone.core.optimize.solve import refine
from qbackbone.core.optimize.traffic import reduce_traffic
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet, default_fleet_nodes

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
WIDTH = 8
SHOTS = 1000
PINNING_LIMIT = 16  # the default policy's maxVariables


def _spec(graph: nx.Graph, pairs: int, seed: int) -> dict[str, Any]:
    links = [{"source": u, "target": v, "capacity": d["capacity"]}
             for u, v, d in graph.edges(data=True)]
    return {"topology": {"links": links}, "demands": gravity_demands(graph, pairs, 1.2, seed),
            "candidatePaths": 3, "aggregateToFit": False}


def _policy(iterations: int, budget: float) -> dict[str, InvocationPolicy]:
    return {"default": InvocationPolicy.model_validate({
        "metadata": {"name": "default"},
        "spec": {"optimization": {"shots": SHOTS, "exactTimeLimitSeconds": 0, "decomposition": {
            "enabled": True, "maxRegionVariables": WIDTH, "iterations": iterations,
            "timeBudgetSeconds": budget}}}})}


def _pinning(spec: TrafficEngineeringProblem) -> dict[str, Any]:
    """Today's reduction: pin the smallest demands to fit 16 variables, solve the rest exactly
    (10 s), and score the routing on the whole problem (pinned demands included)."""
    start = time.perf_counter()
    try:
        reduced = reduce_traffic(spec, PINNING_LIMIT)
    except ProblemError as err:  # pinning would strand a demand: today it goes classical
        return {"feasible": False, "note": str(err)[:200]}
    exact = solve_exact(reduced.qubo, 10.0, reduced.objective_qubo, reduced.constraints)
    if exact is None:
        return {"variables": reduced.qubo.size, "feasible": False}
    chosen = refine(reduced, exact.x)
    return {"variables": reduced.qubo.size, "pinned": len(reduced.pinned),
            "free": len(reduced.free), "objective": round(chosen.objective, 6),
            "feasible": chosen.feasible, "provenOnReduced": exact.proven_optimal,
            "seconds": round(time.perf_counter() - start, 3)}


def run_case(name: str, graph: nx.Graph, pairs: int, seed: int, iterations: int,
             budget: float) -> dict[str, Any]:
    """One backbone and demand set: every method, the same time for the classical ones."""
    raw = _spec(graph, pairs, seed)
    spec = TrafficEngineeringProblem.model_validate(raw)
    whole = reduce_traffic(spec, None)
    case: dict[str, Any] = {
        "backbone": name, "nodes": graph.number_of_nodes(), "links": graph.number_of_edges(),
        "demands": len(raw["demands"]), "freeDemands": len(whole.free),
        "wholeVariables": whole.qubo.size}
    job = QuantumJob.model_validate({"metadata": {"name": f"te-{name.lower()}-{pairs}"},
                                     "spec": {"execution": {"mode": "SingleQPU"},
                                              "problem": {"trafficEngineering": raw}}})
    fleet = build_fleet(default_fleet_nodes())
    start = time.perf_counter()
    status = run_job(job, fleet, _policy(iterations, budget), seed=seed)
    wall = time.perf_counter() - start
    if status.phase != "Succeeded" or status.result is None:
        failed = [c for c in status.conditions if c.type == "Failed"]
        case["decomposed"] = {"failed": (failed[0].message if failed else status.phase)[:300],
                              "wallSeconds": round(wall, 2)}
        cp = cp_sat_reference(whole, max(60.0, wall))  # is there a feasible routing at all?
        case["cpSat60s"] = {"objective": _num(cp.objective), "feasible": cp.feasible,
                            "bound": _num(cp.bound), "proven": cp.proven,
                            "seconds": cp.seconds}
        return case
    report = status.result.decomposition
    solution = status.result.solution
    assert report is not None and solution is not None
    check = recompute_loads(whole.graph, solution.routes or [], spec.demands)
    case["decomposed"] = {
        "objective": round(check.congestion, 6), "feasible": not check.violations,
        "wallSeconds": round(wall, 2), "qpuCalls": report.qpu_calls,
        "classicalCalls": report.classical_calls, "regions": len(report.regions),
        "regionSource": report.region_source, "rounds": len(report.rounds), "stop": report.stop,
        "qpus": status.result.qpus, "shots": status.result.shots,
        "initialCongestion": report.initial_congestion,
        "initialOverload": report.initial_overload,
        "reconciledCongestion": report.reconciled_congestion,
        "finalCongestion": report.final_congestion, "repair": report.repair,
        "roundsDetail": [{"subproblems": r.subproblems, "strategy": r.strategy,
                          "accepted": r.accepted, "rejected": r.rejected,
                          "mergedOverload": r.merged_overload,
                          "congestionAfter": r.congestion_after} for r in report.rounds]}
    limit = max(1.0, wall)
    regions = make_regions(whole.graph, whole.free, WIDTH, "site", seed)
    t0 = time.perf_counter()
    blocks = decompose_and_solve(whole, regions, ClassicalBlockSolver(1.0),
                                 Settings(WIDTH, iterations, budget, seed))
    case["decomposedClassicalBlocks"] = {"objective": round(blocks.final[1], 6),
                                         "feasible": blocks.final[0] == 0,
                                         "subproblems": len(blocks.blocks),
                                         "seconds": round(time.perf_counter() - t0, 3)}
    cp = cp_sat_reference(whole, limit)
    case["cpSatSameTime"] = {"objective": _num(cp.objective), "feasible": cp.feasible,
                             "bound": _num(cp.bound), "proven": cp.proven,
                             "seconds": cp.seconds}
    sa = annealing_reference(whole, limit, seed)
    case["annealingSameTime"] = {"objective": _num(sa.objective), "feasible": sa.feasible,
                                 "seconds": sa.seconds}
    case["pinning"] = _pinning(spec)
    ours = case["decomposed"]["objective"]
    best = min(v for v in (cp.objective if cp.feasible else math.inf,
                           sa.objective if sa.feasible else math.inf))
    case["ratios"] = {
        "bestClassicalSameTime": _ratio(best, ours),
        "cpSatSameTime": _ratio(cp.objective, ours) if cp.feasible else None,
        "cpSatBound": _ratio(cp.bound, ours) if cp.bound is not None else None,
        "annealingSameTime": _ratio(sa.objective, ours) if sa.feasible else None,
        "pinning": _ratio(case["pinning"].get("objective"), ours),
        "classicalBlocks": _ratio(blocks.final[1], ours)}
    return case


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def _ratio(reference: float | None, ours: float) -> float | None:
    if reference is None or not math.isfinite(reference) or ours <= 0:
        return None
    return round(reference / ours, 4)


def cases(quick: bool) -> list[tuple[str, nx.Graph, int]]:
    """(name, graph, demands) of every case."""
    abilene, geant, cogent = zoo_graph("Abilene"), zoo_graph("Geant2012"), zoo_graph("Cogentco")
    if quick:
        return [("Abilene", abilene, 20), ("GEANT", geant, 20)]
    out = [("Abilene", abilene, 20), ("Abilene", abilene, 40), ("Abilene", abilene, 55)]
    out += [("GEANT", geant, n) for n in (20, 40, 80)]
    out += [("Cogentco", cogent, n) for n in (20, 40, 80)]
    out += [("Generated200", synthetic_graph(200, 11), 80)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--budget", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", action="append", default=[], metavar="NAME:DEMANDS",
                        help="rerun these cases only and merge them into the results file")
    args = parser.parse_args()
    path = RESULTS / ("decomposition-quick.json" if args.quick else "decomposition.json")
    kept = {}
    if args.only and path.exists():
        kept = {(c["backbone"], c["demands"]): c for c in json.loads(path.read_text())["cases"]}
    rows = []
    for name, graph, pairs in cases(args.quick):
        if args.only and f"{name}:{pairs}" not in args.only:
            if (name, pairs) in kept:
                rows.append(kept[(name, pairs)])
            continue
        case = run_case(name, graph, pairs, args.seed, args.iterations, args.budget)
        rows.append(case)
        d = case["decomposed"]
        r = case.get("ratios", {})
        print(f"{name:13s} {pairs:3d} dem {case['wholeVariables']:4d} var  "
              f"decomposed {d.get('objective')} feasible={d.get('feasible')} "
              f"{d.get('wallSeconds')}s {d.get('qpuCalls')} QPU calls | ratio best-classical "
              f"{r.get('bestClassicalSameTime')} cp-sat {r.get('cpSatSameTime')} bound "
              f"{r.get('cpSatBound')} SA {r.get('annealingSameTime')} pinning "
              f"{r.get('pinning')} classical-blocks {r.get('classicalBlocks')}", flush=True)
    out = {
        "benchmark": "decomposition (issue 21)",
        "generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "settings": {"width": WIDTH, "shots": SHOTS, "qaoaLayers": 2,
                     "iterations": args.iterations, "timeBudgetSeconds": args.budget,
                     "fleet": "built-in default (nairobi, guadalupe, torino, aer-ideal)",
                     "demands": "gravity model (instances.gravity_demands), shortest-path load "
                     "1.2, seed " + str(args.seed), "pinningLimit": PINNING_LIMIT,
                     "ratio": "reference objective / decomposed objective (congestion, "
                     "minimised): above 1 the reference is worse"},
        "cases": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
