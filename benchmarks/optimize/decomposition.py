"""Decomposition benchmark (issue 21): traffic engineering and slice admission wider than
every QPU, by region.

    .venv/bin/python benchmarks/optimize/decomposition.py            # every case (~40 min)
    .venv/bin/python benchmarks/optimize/decomposition.py --quick    # Abilene and GEANT, 20
    .venv/bin/python benchmarks/optimize/decomposition.py --slices   # slice rows only, merged

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

Slice-admission rows (`"problem": "sliceAdmission"`): requests from slice_instances.py on the
same backbones (the topology inline, resources placed on it by name), the same fleet, width
and shots; the objective is the revenue recomputed from the admitted names; references are
the same (CP-SAT on the exact admission model, annealing on the whole QUBO, the decomposition
with exact blocks), and today's path is the job with decomposition off (the QUBO is too wide
for a QPU: it is solved classically).

Ratios are reference / decomposed objective for congestion (minimised) and decomposed /
reference for revenue (maximised): either way 1 is as good and above 1 the reference is worse.
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
from slice_instances import slice_requests  # benchmarks/optimize

from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.problem import SliceAdmissionProblem, TrafficEngineeringProblem
from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.optimize.classical import solve_exact
from qbackbone.core.optimize.decompose import (
    ClassicalBlockSolver,
    Settings,
    SliceDecomposition,
    TrafficDecomposition,
    annealing_reference,
    check_admission,
    cp_sat_reference,
    decompose_and_solve,
    make_regions,
    recompute_loads,
)
from qbackbone.core.optimize.problem import ProblemError
from qbackbone.core.optimize.slices import reduce_slices
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


def _policy(iterations: int, budget: float, enabled: bool = True,
            exact: float = 0) -> dict[str, InvocationPolicy]:
    return {"default": InvocationPolicy.model_validate({
        "metadata": {"name": "default"},
        "spec": {"optimization": {"shots": SHOTS, "exactTimeLimitSeconds": exact,
                                  "decomposition": {
                                      "enabled": enabled, "maxRegionVariables": WIDTH,
                                      "iterations": iterations, "timeBudgetSeconds": budget}}}})}


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
        # Is there a feasible routing at all?
        cp = cp_sat_reference(TrafficDecomposition(whole), max(60.0, wall))
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
    blocks = decompose_and_solve(TrafficDecomposition(whole), regions, ClassicalBlockSolver(1.0),
                                 Settings(WIDTH, iterations, budget, seed))
    case["decomposedClassicalBlocks"] = {"objective": round(blocks.final[1], 6),
                                         "feasible": blocks.final[0] == 0,
                                         "subproblems": len(blocks.blocks),
                                         "seconds": round(time.perf_counter() - t0, 3)}
    cp = cp_sat_reference(TrafficDecomposition(whole), limit)
    case["cpSatSameTime"] = {"objective": _num(cp.objective), "feasible": cp.feasible,
                             "bound": _num(cp.bound), "proven": cp.proven,
                             "seconds": cp.seconds}
    sa = annealing_reference(TrafficDecomposition(whole), limit, seed)
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


def run_slice_case(name: str, graph: nx.Graph, count: int, seed: int, iterations: int,
                   budget: float) -> dict[str, Any]:
    """One backbone and slice request set: decomposed, today's path, and the references."""
    raw = {**slice_requests(graph, count, seed), "slackBits": 2, "topology": {"links": [
        {"source": u, "target": v, "capacity": d["capacity"]}
        for u, v, d in graph.edges(data=True)]}}
    spec = SliceAdmissionProblem.model_validate(raw)
    whole = SliceDecomposition(reduce_slices(spec), graph)
    case: dict[str, Any] = {
        "problem": "sliceAdmission", "backbone": name, "nodes": graph.number_of_nodes(),
        "links": graph.number_of_edges(), "demands": count, "resources": len(spec.resources),
        "wholeVariables": whole.problem.qubo.size}
    runs = {}
    for label, enabled in (("decomposed", True), ("todaysPath", False)):
        job = QuantumJob.model_validate({"metadata": {"name": f"slices-{name.lower()}-{count}"},
                                         "spec": {"execution": {"mode": "SingleQPU"},
                                                  "problem": {"sliceAdmission": raw}}})
        start = time.perf_counter()
        status = run_job(job, build_fleet(default_fleet_nodes()),
                         _policy(iterations, budget, enabled, 0 if enabled else 10), seed=seed)
        wall = time.perf_counter() - start
        assert status.phase == "Succeeded" and status.result is not None, status.conditions
        solution = status.result.solution
        assert solution is not None
        check = check_admission(spec, solution.admitted or [], solution.rejected or [])
        runs[label] = (status, check, wall)
        case[label] = {"objective": check.revenue, "feasible": not check.violations,
                       "wallSeconds": round(wall, 2), "path": status.result.path}
    status, _, wall = runs["decomposed"]
    report = status.result.decomposition if status.result else None
    assert report is not None
    case["decomposed"].update({
        "qpuCalls": report.qpu_calls, "classicalCalls": report.classical_calls,
        "regions": len(report.regions), "regionSource": report.region_source,
        "borderResources": len(report.border_resources), "rounds": len(report.rounds),
        "stop": report.stop, "qpus": status.result.qpus if status.result else [],
        "reconciledRevenue": report.reconciled_revenue, "finalRevenue": report.final_revenue,
        "repair": report.repair,
        "roundsDetail": [{"subproblems": r.subproblems, "strategy": r.strategy,
                          "accepted": r.accepted, "rejected": r.rejected,
                          "mergedOverload": r.merged_overload,
                          "revenueAfter": r.revenue_after} for r in report.rounds]})
    regions = whole.regions(WIDTH, "site", seed)
    blocks = decompose_and_solve(whole, regions, ClassicalBlockSolver(1.0),
                                 Settings(WIDTH, iterations, budget, seed))
    limit = max(1.0, wall)
    cp = cp_sat_reference(whole, limit)
    sa = annealing_reference(whole, limit, seed)
    case["decomposedClassicalBlocks"] = {"objective": -blocks.final[1],
                                         "feasible": blocks.final[0] == 0}
    case["cpSatSameTime"] = {"objective": _num(cp.objective), "feasible": cp.feasible,
                             "bound": _num(cp.bound), "proven": cp.proven, "seconds": cp.seconds}
    case["annealingSameTime"] = {"objective": _num(sa.objective), "feasible": sa.feasible,
                                 "seconds": sa.seconds}
    ours = case["decomposed"]["objective"]
    best = max(v for v in (cp.objective if cp.feasible else 0.0,
                           sa.objective if sa.feasible else 0.0))
    case["ratios"] = {  # decomposed / reference (revenue, maximised): above 1 ours is better
        "bestClassicalSameTime": _ratio(ours, best),
        "cpSatSameTime": _ratio(ours, cp.objective) if cp.feasible else None,
        "cpSatBound": _ratio(ours, cp.bound) if cp.bound is not None else None,
        "annealingSameTime": _ratio(ours, sa.objective) if sa.feasible else None,
        "todaysPath": _ratio(ours, case["todaysPath"]["objective"]),
        "classicalBlocks": _ratio(ours, -blocks.final[1])}
    return case


Case = tuple[str, str, nx.Graph, int]  # (problem, backbone, graph, demands or requests)


def cases(quick: bool) -> list[Case]:
    """(problem, name, graph, demands) of every case."""
    abilene, geant, cogent = zoo_graph("Abilene"), zoo_graph("Geant2012"), zoo_graph("Cogentco")
    te, sa = "trafficEngineering", "sliceAdmission"
    if quick:
        return [(te, "Abilene", abilene, 20), (te, "GEANT", geant, 20),
                (sa, "Abilene", abilene, 20)]
    out = [(te, "Abilene", abilene, 20), (te, "Abilene", abilene, 40),
           (te, "Abilene", abilene, 55)]
    out += [(te, "GEANT", geant, n) for n in (20, 40, 80)]
    out += [(te, "Cogentco", cogent, n) for n in (20, 40, 80)]
    generated = synthetic_graph(200, 11)
    out += [(te, "Generated200", generated, 80)]
    for name, graph in (("Abilene", abilene), ("GEANT", geant), ("Cogentco", cogent)):
        out += [(sa, name, graph, n) for n in (20, 40, 80)]
    out += [(sa, "Generated200", generated, 80)]
    return out


def _key(case: dict[str, Any]) -> str:
    prefix = "slices:" if case.get("problem") == "sliceAdmission" else ""
    return f"{prefix}{case['backbone']}:{case['demands']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--budget", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", action="append", default=[], metavar="NAME:DEMANDS",
                        help="rerun these cases only (slices:NAME:REQUESTS for slice rows) and "
                        "merge them into the results file")
    parser.add_argument("--slices", action="store_true",
                        help="rerun the slice-admission rows only and merge them")
    args = parser.parse_args()
    path = RESULTS / ("decomposition-quick.json" if args.quick else "decomposition.json")
    merge = bool(args.only) or args.slices
    kept = {}
    if merge and path.exists():
        kept = {_key(c): c for c in json.loads(path.read_text())["cases"]}
    rows = []
    for problem, name, graph, pairs in cases(args.quick):
        key = ("slices:" if problem == "sliceAdmission" else "") + f"{name}:{pairs}"
        wanted = key in args.only or (args.slices and problem == "sliceAdmission")
        if merge and not wanted:
            if key in kept:
                rows.append(kept[key])
            continue
        runner = run_slice_case if problem == "sliceAdmission" else run_case
        case = runner(name, graph, pairs, args.seed, args.iterations, args.budget)
        rows.append(case)
        d = case["decomposed"]
        r = case.get("ratios", {})
        print(f"{key:22s} {case['wholeVariables']:4d} var  "
              f"decomposed {d.get('objective')} feasible={d.get('feasible')} "
              f"{d.get('wallSeconds')}s {d.get('qpuCalls')} QPU calls | ratio best-classical "
              f"{r.get('bestClassicalSameTime')} cp-sat {r.get('cpSatSameTime')} bound "
              f"{r.get('cpSatBound')} SA {r.get('annealingSameTime')} pinning/today "
              f"{r.get('pinning', r.get('todaysPath'))} classical-blocks "
              f"{r.get('classicalBlocks')}", flush=True)
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
                     "minimised): above 1 the reference is worse",
                     "sliceRequests": "slice_instances.slice_requests, load 1.6, slackBits 2, "
                     "seed " + str(args.seed),
                     "sliceRatio": "decomposed revenue / reference revenue (maximised): above "
                     "1 the reference is worse; todaysPath: decomposition off"},
        "cases": rows,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
