"""Optimize benchmark (issue 7): QUBO sizes, phase times, approximation ratios, feasibility.

    .venv/bin/python benchmarks/optimize/bench.py --quick   # under a minute on 2 cores
    .venv/bin/python benchmarks/optimize/bench.py           # full (200 s measured, < 15 min)

Writes benchmarks/results/optimize-<quick|full>.json and prints tables:

1. Sizes and classical solvers: each instance reduced in full and aggregated to fit 16
   variables (trafficEngineering pins its smallest demands to their shortest path): variables,
   couplings, density, slack bits, reduce time; the exact solver (solve.exact_solution: brute
   force or CP-SAT) with its time and whether it proved the optimum; simulated annealing
   (several seeds) with its raw feasibility and approximation ratio before and after refine.
2. The quantum path, phase by phase (angle choice, transpile + sampling, post-processing =
   repair and local search of every distinct sample, verify), on the ideal simulator
   (aer-ideal) and on noisy fake devices of the default fleet (torino, 12-qubit region, and
   nairobi, 7 qubits) for instances that fit. Ratios are against the refined optimum of the
   same (aggregated) QUBO. Beside each run, the same number of UNIFORMLY RANDOM bitstrings goes
   through the same repair and local search: the honest baseline, since refine alone solves
   small instances. Also the fraction of raw samples that are feasible and the fraction that
   are already optimal, and the best raw feasible sample's ratio (no repair).
3. The end-to-end pipeline (qbackbone.core.pipeline.run_job) for one job per kind on the
   default fleet, in Auto mode and with execution.mode SingleQPU (QAOA forced), with
   status.timings.

Demands (instances.gravity_demands): node weight = degree; the `pairs` node pairs with the
largest product of weights are kept (ties broken by a seeded shuffle); volume ~ w_s * w_t *
U(0.5, 1.5); all volumes scaled so that shortest-path routing loads the busiest link to `load`
times its capacity (1.2: shortest paths overload it by 20 %), rounded to whole Mbit/s.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from instances import (  # benchmarks/optimize/instances.py
    problem_spec,
    qubo_problem,
    slice_problem,
    synthetic_graph,
    traffic_problem,
    zoo_graph,
)

from qbackbone.api.problem import ProblemSpec
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus
from qbackbone.core.optimize.classical import simulated_annealing
from qbackbone.core.optimize.features import qubo_features
from qbackbone.core.optimize.problem import ReducedProblem
from qbackbone.core.optimize.qaoa import choose_angles, qaoa_circuit
from qbackbone.core.optimize.qubo import bits_from_key, key_from_bits
from qbackbone.core.optimize.reduce import reduce_problem
from qbackbone.core.optimize.solve import (
    SampleOutcome,
    approximation_ratio,
    best_of_samples,
    exact_solution,
    refine,
    report,
)
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import QPU, build_fleet, default_fleet_nodes

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
PHASES = ["reduce", "decide", "execute", "reconstruct", "verify"]
REFINED_SHOTS = 256
DEMAND_MODEL = (
    "gravity model (benchmarks/optimize/instances.py gravity_demands): node weight = degree; "
    "the `pairs` node pairs with the largest weight product are kept (ties broken by a seeded "
    "shuffle); volume proportional to w_s * w_t * U(0.5, 1.5); volumes scaled so shortest-path "
    "routing loads the busiest link to `load` x its capacity, rounded to whole Mbit/s. "
    "Capacities: Topology Zoo LinkSpeedRaw (bit/s -> Mbit/s), else OC-192 9953 Mbit/s for "
    "OC-192 links, else 10 Gbit/s; synthetic graphs (connected Watts-Strogatz) 10 Gbit/s.")


@dataclass(frozen=True)
class Case:
    """A benchmark instance: a problem spec and how it was made."""

    name: str
    kind: str
    source: str
    spec: ProblemSpec


def te_case(name: str, graph_name: str, pairs: int, load: float, seed: int,
            nodes: int | None = None) -> Case:
    graph = synthetic_graph(nodes, seed) if nodes else zoo_graph(graph_name)
    spec = traffic_problem(graph, pairs, load, seed)
    source = (f"{graph_name} ({graph.number_of_nodes()} nodes, {graph.number_of_edges()} links), "
              f"{pairs} gravity pairs, shortest-path load {load}, seed {seed}")
    return Case(name, "trafficEngineering", source, problem_spec("trafficEngineering", spec))


def slice_case(name: str, slices: int, resources: int, seed: int) -> Case:
    return Case(name, "sliceAdmission",
                f"{slices} random slices over {resources} resources, capacity oversubscribed "
                f"1.8x, seed {seed}",
                problem_spec("sliceAdmission", slice_problem(slices, resources, seed)))


def qubo_case(name: str, variables: int, seed: int) -> Case:
    return Case(name, "qubo", f"dense random QUBO, {variables} variables, coefficients "
                f"U(-1, 1), seed {seed}", problem_spec("qubo", qubo_problem(variables, seed)))


def size_cases(quick: bool) -> list[Case]:
    """Instances for the size and classical tables (reduced in full and fitted to 16)."""
    if quick:
        return [te_case("abilene", "Abilene", 10, 1.2, 1),
                te_case("cogentco", "Cogentco", 12, 1.2, 1), slice_case("slices-12x3", 12, 3, 1)]
    return [te_case("abilene", "Abilene", 10, 1.2, 1),
            te_case("geant2012", "Geant2012", 12, 1.2, 2),
            # Feasible in full, infeasible once aggregated to 16: pinning a demand to its
            # shortest path can leave no feasible routing (kept to show it).
            te_case("geant2012-s1", "Geant2012", 12, 1.2, 1),
            te_case("cogentco", "Cogentco", 12, 1.2, 1),
            te_case("cogentco-40p", "Cogentco", 40, 1.2, 1),
            te_case("synthetic-12", "synthetic", 8, 1.2, 4, nodes=12),
            te_case("synthetic-40", "synthetic", 30, 1.2, 3, nodes=40),
            slice_case("slices-12x3", 12, 3, 1), slice_case("slices-24x4", 24, 4, 2),
            qubo_case("qubo-24", 24, 1)]


@dataclass(frozen=True)
class QuantumCase:
    """An instance for the quantum path: a case reduced to fit, and where to run it."""

    case: Case
    max_variables: int | None
    qpus: tuple[str, ...]


def quantum_cases(quick: bool) -> list[QuantumCase]:
    """Instances that fit the QPUs: 16 (ideal), 8-10 (torino region), 7 (nairobi)."""
    abilene = te_case("abilene", "Abilene", 10, 1.2, 1)
    synthetic8 = te_case("synthetic-8", "synthetic", 4, 1.2, 3, nodes=8)
    slices = slice_case("slices-6x2", 6, 2, 1)
    if quick:
        return [QuantumCase(abilene, 16, ("aer-ideal",)),
                QuantumCase(slices, None, ("aer-ideal",)),
                QuantumCase(synthetic8, 7, ("aer-ideal", "nairobi"))]
    return [
        QuantumCase(abilene, 16, ("aer-ideal",)),
        QuantumCase(te_case("geant2012", "Geant2012", 12, 1.2, 2), 16, ("aer-ideal",)),
        QuantumCase(te_case("cogentco", "Cogentco", 12, 1.2, 1), 16, ("aer-ideal",)),
        QuantumCase(te_case("synthetic-12", "synthetic", 8, 1.2, 4, nodes=12), 16,
                    ("aer-ideal",)),
        QuantumCase(te_case("abilene-8p", "Abilene", 8, 1.2, 3), 10, ("aer-ideal", "torino")),
        QuantumCase(synthetic8, 7, ("aer-ideal", "nairobi")),
        QuantumCase(slices, None, ("aer-ideal",)),
        QuantumCase(slice_case("slices-4x2", 4, 2, 3), None, ("aer-ideal", "torino")),
        QuantumCase(slice_case("slices-4x1", 4, 1, 2), None, ("aer-ideal", "nairobi")),
        QuantumCase(qubo_case("qubo-16", 16, 2), None, ("aer-ideal",)),
        QuantumCase(qubo_case("qubo-10", 10, 3), None, ("aer-ideal", "torino")),
        QuantumCase(qubo_case("qubo-7", 7, 4), None, ("aer-ideal", "nairobi")),
    ]


# -- helpers --------------------------------------------------------------------------------

def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def r4(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def sizes(problem: ReducedProblem) -> dict[str, Any]:
    f = qubo_features(problem.qubo)
    out: dict[str, Any] = {
        "variables": f.variables, "couplings": f.couplings, "density": round(f.density, 4),
        "ruggedness": round(f.ruggedness, 4),
        "slackBits": sum(v.startswith("s[") for v in problem.qubo.variables)}
    if hasattr(problem, "free"):
        out["freeDemands"] = len(problem.free)
        out["pinnedDemands"] = len(problem.pinned)  # type: ignore[attr-defined]
    return out


@dataclass(frozen=True)
class Reference:
    """The refined exact optimum of a reduced problem."""

    objective: float | None
    proven: bool
    seconds: float
    method: str


def reference(problem: ReducedProblem, limit: float) -> Reference:
    exact, seconds = timed(lambda: exact_solution(problem, limit))
    if exact is None:
        return Reference(None, False, seconds, "none")
    ref = refine(problem, exact.x)
    objective = ref.objective if ref.feasible and math.isfinite(ref.objective) else None
    return Reference(objective, exact.proven_optimal, seconds, exact.method)


def ratio(problem: ReducedProblem, objective: float, optimum: float | None,
          feasible: bool = True) -> float | None:
    if optimum is None or not feasible or not math.isfinite(objective):
        return None
    return approximation_ratio(problem, objective, optimum)


def classical(problem: ReducedProblem, ref: Reference, seeds: int,
              sa_limit: float) -> dict[str, Any]:
    """Simulated annealing from several seeds: raw feasibility, ratios before/after refine."""
    runs: list[dict[str, Any]] = []
    for seed in range(seeds):
        sa = simulated_annealing(problem.qubo, sa_limit, seed)
        raw_feasible = not problem.violations(sa.x)
        start = time.perf_counter()
        refined = refine(problem, sa.x)
        refine_seconds = time.perf_counter() - start
        runs.append({"seconds": float(sa.seconds), "refineSeconds": refine_seconds,
                     "rawFeasible": raw_feasible,
                     "rawRatio": ratio(problem, problem.objective(sa.x), ref.objective,
                                       raw_feasible),
                     "ratio": ratio(problem, refined.objective, ref.objective,
                                    refined.feasible),
                     "feasible": refined.feasible})
    ratios = [r["ratio"] for r in runs if r["ratio"] is not None]
    def mean(key: str) -> float | None:
        return r4(statistics.mean(float(r[key]) for r in runs))

    return {"seeds": seeds, "seconds": mean("seconds"), "refineSeconds": mean("refineSeconds"),
            "rawFeasibleRate": mean("rawFeasible"), "feasibleRate": mean("feasible"),
            "meanRatio": r4(statistics.mean(ratios)) if ratios else None,
            "minRatio": r4(min(ratios)) if len(ratios) == len(runs) and ratios else None,
            "runs": runs}


def size_row(case: Case, limit: int | None, exact_limit: float, seeds: int,
             sa_limit: float) -> dict[str, Any]:
    problem, reduce_seconds = timed(lambda: reduce_problem(case.spec, limit))
    ref = reference(problem, exact_limit)
    return {"case": case.name, "kind": case.kind, "source": case.source,
            "fit": limit, **sizes(problem), "reduceSeconds": r4(reduce_seconds),
            "exact": {"method": ref.method, "seconds": r4(ref.seconds), "proven": ref.proven,
                      "optimum": r4(ref.objective)},
            "sa": classical(problem, ref, seeds, sa_limit) if problem.qubo.size else None,
            "notes": problem.notes}


# -- the quantum path ----------------------------------------------------------------------

def sample_stats(problem: ReducedProblem, counts: dict[str, int], optimum: float | None,
                 seed: int) -> tuple[SampleOutcome, dict[str, Any]]:
    """best_of_samples (what the pipeline keeps), plus figures that do not saturate.

    Over EVERY sample (best_of_samples looks at the 512 most frequent bitstrings): the
    fraction already optimal and the best raw feasible sample. Over REFINED_SHOTS shots drawn
    from the samples: the mean ratio of one sample after repair and local search (0 when it
    stays infeasible), i.e. how good a single shot is once post-processed.
    """
    (outcome, post_seconds) = timed(lambda: best_of_samples(problem, counts))
    n = problem.qubo.size
    optimal = 0
    best_raw: float | None = None
    for key, count in counts.items():
        x = bits_from_key(key, n)
        if problem.violations(x):
            continue
        objective = problem.objective(x)
        if best_raw is None or problem.better(objective, best_raw):
            best_raw = objective
        if optimum is not None and abs(objective - optimum) <= 1e-9 * max(1.0, abs(optimum)):
            optimal += count
    keys = sorted(counts)
    weights = np.array([counts[k] for k in keys], dtype=float)
    drawn = np.random.default_rng(seed).choice(len(keys), size=REFINED_SHOTS,
                                               p=weights / weights.sum())
    refined: dict[int, float] = {}
    for k in set(drawn.tolist()):
        candidate = refine(problem, bits_from_key(keys[k], n))
        refined[k] = ratio(problem, candidate.objective, optimum, candidate.feasible) or 0.0
    return outcome, {
        "postSeconds": post_seconds, "samples": outcome.samples,
        "distinct": len(counts),
        "feasibleBeforeRepair": outcome.feasible_before,
        "feasibleAfterRepair": outcome.feasible_after,
        "optimalRawFraction": optimal / outcome.samples,
        "bestRawRatio": None if best_raw is None else ratio(problem, best_raw, optimum),
        "meanRefinedRatio": (float(np.mean([refined[k] for k in drawn.tolist()]))
                             if optimum is not None else None),
        "ratio": ratio(problem, outcome.best.objective, optimum, outcome.best.feasible),
        "feasible": outcome.best.feasible}


def uniform_counts(n: int, shots: int, seed: int) -> dict[str, int]:
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for x in rng.integers(0, 2, (shots, n)):
        key = key_from_bits(x)
        counts[key] = counts.get(key, 0) + 1
    return counts


def quantum_rows(qc: QuantumCase, fleet: dict[str, QPU], seeds: int, shots: dict[str, int],
                 layers: int, exact_limit: float) -> list[dict[str, Any]]:
    problem, reduce_seconds = timed(lambda: reduce_problem(qc.case.spec, qc.max_variables))
    n = problem.qubo.size
    base = {"case": qc.case.name, "kind": qc.case.kind, "source": qc.case.source,
            "fit": qc.max_variables, **sizes(problem), "reduceSeconds": r4(reduce_seconds)}
    if n == 0:
        return [{**base, "qpu": None, "skipped": "no variables left: " + "; ".join(problem.notes)}]
    ref = reference(problem, exact_limit)
    angles, angle_seconds = timed(lambda: choose_angles(problem.qubo, problem.kind, layers))
    circuit, build_seconds = timed(lambda: qaoa_circuit(problem.qubo, angles))
    rows = []
    for name in qc.qpus:
        qpu = fleet[name]
        if n > qpu.descriptor.qubits:
            rows.append({**base, "qpu": name, "skipped": f"{n} variables > {qpu.descriptor.qubits}"
                         " qubits"})
            continue
        runs = []
        for seed in range(seeds):
            start = time.perf_counter()
            compiled = qpu.transpile([circuit], seed=7 + seed)
            transpile_seconds = time.perf_counter() - start
            start = time.perf_counter()
            counts = qpu.executor.run(compiled, shots[name], 1000 + seed)[0]
            sample_seconds = time.perf_counter() - start
            outcome, stats = sample_stats(problem, counts, ref.objective, seed)
            start = time.perf_counter()
            report(problem, outcome.best, "qaoa",
                   None if ref.objective is None else (ref.objective, ref.proven), outcome)
            verify_seconds = time.perf_counter() - start
            _, uniform = sample_stats(problem, uniform_counts(n, shots[name], 5000 + seed),
                                      ref.objective, seed)
            runs.append({"seed": seed, "transpileSeconds": transpile_seconds,
                         "sampleSeconds": sample_seconds, "verifySeconds": verify_seconds,
                         "twoQubitGates": sum(v for k, v in compiled[0].count_ops().items()
                                              if k in ("cx", "cz", "ecr", "rzz")),
                         "depth": compiled[0].depth(), **stats,
                         "uniform": {k: uniform[k] for k in (
                             "feasibleBeforeRepair", "feasibleAfterRepair",
                             "optimalRawFraction", "bestRawRatio", "meanRefinedRatio",
                             "ratio")}})

        def mean(key: str, runs: list[dict[str, Any]] = runs) -> float | None:
            values = [r[key] for r in runs if r[key] is not None]
            return r4(statistics.mean(values)) if values else None

        def umean(key: str, runs: list[dict[str, Any]] = runs) -> float | None:
            values = [r["uniform"][key] for r in runs if r["uniform"][key] is not None]
            return r4(statistics.mean(values)) if values else None

        ratios = [r["ratio"] for r in runs]
        rows.append({
            **base, "qpu": name, "backend": qpu.descriptor.backend_name,
            "ideal": qpu.descriptor.ideal, "layers": angles.layers,
            "angleSource": angles.source, "shots": shots[name], "seeds": seeds,
            "optimum": r4(ref.objective), "optimumProven": ref.proven,
            "exactSeconds": r4(ref.seconds), "exactMethod": ref.method,
            "angleSeconds": r4(angle_seconds), "circuitSeconds": r4(build_seconds),
            "transpileSeconds": mean("transpileSeconds"), "sampleSeconds": mean("sampleSeconds"),
            "postSeconds": mean("postSeconds"), "verifySeconds": mean("verifySeconds"),
            "twoQubitGates": mean("twoQubitGates"), "depth": mean("depth"),
            "meanRatio": mean("ratio"),
            "minRatio": r4(min(ratios)) if all(r is not None for r in ratios) else None,
            "feasibleRate": mean("feasible"),
            "feasibleBeforeRepair": mean("feasibleBeforeRepair"),
            "feasibleAfterRepair": mean("feasibleAfterRepair"),
            "optimalRawFraction": mean("optimalRawFraction"),
            "bestRawRatio": mean("bestRawRatio"),
            "meanRefinedRatio": mean("meanRefinedRatio"),
            "uniformBaseline": {k: umean(k) for k in (
                "feasibleBeforeRepair", "feasibleAfterRepair", "optimalRawFraction",
                "bestRawRatio", "meanRefinedRatio", "ratio")},
            "runs": runs})
    return rows


# -- the pipeline ---------------------------------------------------------------------------

def pipeline_rows(cases: list[Case], fleet: list[QPU], modes: list[str],
                  ) -> list[dict[str, Any]]:
    """run_job per case and mode; a mode 'SingleQPU@name' also selects that QPU by name."""
    rows = []
    for case in cases:
        for mode in modes:
            execution: dict[str, Any] = {"mode": mode.split("@")[0]}
            if "@" in mode:
                execution["qpuSelector"] = {"names": [mode.split("@")[1]]}
            job = QuantumJob.model_validate({
                "metadata": {"name": f"{case.name}-{mode.split('@')[0].lower()}"},
                "spec": {"problem": case.spec.model_dump(by_alias=True, exclude_none=True),
                         "execution": execution}})
            start = time.perf_counter()
            status = run_job(job, fleet, {}, seed=1)
            wall = time.perf_counter() - start
            rows.append(pipeline_row(case, mode, status, wall))
    return rows


def pipeline_row(case: Case, mode: str, status: QuantumJobStatus, wall: float) -> dict[str, Any]:
    t = status.timings
    result = status.result
    solution = result.solution if result else None
    failed = next((c for c in status.conditions if c.type == "Failed" and c.status == "True"),
                  None)
    return {
        "case": case.name, "kind": case.kind, "mode": mode, "phase": status.phase,
        "path": result.path if result else None,
        "decision": status.decision.message if status.decision else None,
        "qpus": result.qpus if result else [], "method": result.method if result else None,
        "failure": f"{failed.reason}: {failed.message}" if failed else None,
        "solver": solution.solver if solution else None,
        "variables": solution.variables if solution else None,
        "feasible": solution.feasible if solution else None,
        "ratio": solution.approximation_ratio if solution else None,
        "optimumProven": solution.optimum_proven if solution else None,
        "feasibleBeforeRepair": solution.feasible_fraction_before_repair if solution else None,
        "feasibleAfterRepair": solution.feasible_fraction_after_repair if solution else None,
        "seconds": {p: r4(getattr(t, f"{p}_seconds")) for p in PHASES} if t else {},
        "total": r4(t.total_seconds) if t else None, "wall": r4(wall),
        # Time inside total_seconds that no phase accounts for (the QAOA angle choice runs
        # outside every run.phase block of pipeline/optimize.py).
        "outsidePhases": r4((t.total_seconds or 0.0) - sum(
            getattr(t, f) or 0.0 for f in type(t).model_fields if f != "total_seconds"))
        if t else None}


# -- printing -------------------------------------------------------------------------------

def fmt(value: Any, spec: str = ".3f", width: int = 6) -> str:
    if value is None:
        return f"{'-':>{width}}"
    if isinstance(value, bool):
        return f"{'yes' if value else 'no':>{width}}"
    return f"{value:>{width}{spec}}"


def print_sizes(rows: list[dict[str, Any]]) -> None:
    print(f"{'instance':<14} {'fit':>4} {'vars':>5} {'coupl':>6} {'dens':>5} {'slack':>5} "
          f"{'free/pin':>8} {'reduce':>7} | {'exact':>10} {'s':>6} {'proven':>6} | "
          f"{'SA s':>5} {'rawFeas':>7} {'raw r':>6} {'r mean':>6} {'r min':>6}")
    for r in rows:
        sa = r["sa"] or {}
        free = (f"{r['freeDemands']}/{r['pinnedDemands']}" if "freeDemands" in r else "-")
        print(f"{r['case']:<14} {fmt(r['fit'], 'd', 4)} {r['variables']:>5} {r['couplings']:>6} "
              f"{r['density']:>5.2f} {r['slackBits']:>5} {free:>8} {r['reduceSeconds']:>7.3f} | "
              f"{r['exact']['method']:>10} {fmt(r['exact']['seconds'], '.2f')} "
              f"{fmt(r['exact']['proven'])} | {fmt(sa.get('seconds'), '.2f', 5)} "
              f"{fmt(sa.get('rawFeasibleRate'), '.2f', 7)} "
              f"{fmt(_mean_raw(sa), '.3f')} {fmt(sa.get('meanRatio'))} "
              f"{fmt(sa.get('minRatio'))}")


def _mean_raw(sa: dict[str, Any]) -> float | None:
    values = [r["rawRatio"] for r in sa.get("runs", []) if r["rawRatio"] is not None]
    return statistics.mean(values) if values else None


def print_quantum(rows: list[dict[str, Any]]) -> None:
    print(f"{'instance':<13} {'fit':>4} {'vars':>4} {'qpu':<9} {'angles':<18} {'2q':>4} "
          f"{'angle':>5} {'sample':>6} {'post':>5} {'verif':>5} | {'r mean':>6} {'r min':>6} "
          f"{'raw r':>6} {'1shot':>6} {'feas':>5} {'rep':>5} {'opt%':>6} | {'r':>6} "
          f"{'1shot':>6} {'feas':>5} {'opt%':>6}")
    for r in rows:
        if "skipped" in r:
            print(f"{r['case']:<13} {fmt(r['fit'], 'd', 4)} {r['variables']:>4} "
                  f"{r['qpu'] or '-':<9} skipped: {r['skipped'][:90]}")
            continue
        u = r["uniformBaseline"]
        print(f"{r['case']:<13} {fmt(r['fit'], 'd', 4)} {r['variables']:>4} {r['qpu']:<9} "
              f"{r['angleSource'].replace('template:', 'T:')[:18]:<18} "
              f"{fmt(r['twoQubitGates'], '.0f', 4)} "
              f"{r['angleSeconds']:>5.2f} {r['sampleSeconds']:>6.2f} {r['postSeconds']:>5.2f} "
              f"{r['verifySeconds']:>5.3f} | {fmt(r['meanRatio'])} {fmt(r['minRatio'])} "
              f"{fmt(r['bestRawRatio'])} {fmt(r['meanRefinedRatio'])} "
              f"{fmt(r['feasibleBeforeRepair'], '.3f', 5)} "
              f"{fmt(r['feasibleAfterRepair'], '.2f', 5)} "
              f"{fmt(_pct(r['optimalRawFraction']), '.2f')} | {fmt(u['ratio'])} "
              f"{fmt(u['meanRefinedRatio'])} {fmt(u['feasibleBeforeRepair'], '.3f', 5)} "
              f"{fmt(_pct(u['optimalRawFraction']), '.2f')}")


def _pct(value: float | None) -> float | None:
    return None if value is None else 100.0 * value


def print_pipeline(rows: list[dict[str, Any]]) -> None:
    print(f"{'instance':<13} {'mode':<17} {'phase':<9} {'path':<9} {'qpus':<10} {'solver':<19} "
          f"{'vars':>4} {'ratio':>6} " + " ".join(f"{p[:7]:>7}" for p in PHASES)
          + f" {'other':>6} {'total':>6}")
    for r in rows:
        print(f"{r['case']:<13} {r['mode']:<17} {r['phase']:<9} {r['path'] or '-':<9} "
              f"{','.join(r['qpus']) or '-':<10} {(r['solver'] or '-')[:19]:<19} "
              f"{fmt(r['variables'], 'd', 4)} {fmt(r['ratio'], '.4f')} "
              + " ".join(fmt(r['seconds'].get(p), '.3f', 7) for p in PHASES)
              + f" {fmt(r['outsidePhases'], '.2f')} {fmt(r['total'], '.2f')}")
        if r["failure"]:
            print(f"{'':<13} -> {r['failure'][:140]}")


def summary(quantum: list[dict[str, Any]], sizes_rows: list[dict[str, Any]]) -> dict[str, Any]:
    ran = [r for r in quantum if "skipped" not in r]

    def group(pred: Callable[[dict[str, Any]], bool], key: str) -> float | None:
        values = [r[key] for r in ran if pred(r) and r[key] is not None]
        return r4(statistics.mean(values)) if values else None

    def ugroup(pred: Callable[[dict[str, Any]], bool], key: str) -> float | None:
        values = [r["uniformBaseline"][key] for r in ran
                  if pred(r) and r["uniformBaseline"][key] is not None]
        return r4(statistics.mean(values)) if values else None

    out: dict[str, Any] = {}
    for label, pred in (("ideal", lambda r: r["ideal"]), ("noisy", lambda r: not r["ideal"])):
        out[label] = {k: group(pred, k) for k in ("meanRatio", "feasibleBeforeRepair",
                                                   "feasibleAfterRepair", "optimalRawFraction",
                                                   "meanRefinedRatio")}
        out[label]["uniformRatio"] = ugroup(pred, "ratio")
        out[label]["uniformMeanRefinedRatio"] = ugroup(pred, "meanRefinedRatio")
        out[label]["uniformFeasibleBeforeRepair"] = ugroup(pred, "feasibleBeforeRepair")
        out[label]["uniformOptimalRawFraction"] = ugroup(pred, "optimalRawFraction")
        out[label]["runs"] = sum(1 for r in ran if pred(r))
    sa = [r["sa"] for r in sizes_rows if r["sa"]]
    out["simulatedAnnealing"] = {
        "meanRatio": r4(statistics.mean(s["meanRatio"] for s in sa if s["meanRatio"] is not None)),
        "rawFeasibleRate": r4(statistics.mean(s["rawFeasibleRate"] for s in sa))}
    return out


def markdown(result: dict[str, Any]) -> str:
    """The tables of a result JSON as Markdown (for docs/optimize-benchmark.md)."""
    def cell(value: Any, spec: str = ".3f") -> str:
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "no"
        return f"{value:{spec}}" if isinstance(value, float) else str(value)

    lines = ["| instance | fit | vars | couplings | density | slack bits | free/pinned | "
             "reduce s | exact | exact s | proven | optimum | SA s | SA raw feasible | "
             "SA raw r | SA+refine r mean | SA+refine r min |", "|" + "---|" * 17]
    for r in result["sizes"]:
        sa = r["sa"] or {}
        free = f"{r['freeDemands']}/{r['pinnedDemands']}" if "freeDemands" in r else "-"
        lines.append(
            f"| {r['case']} | {cell(r['fit'])} | {r['variables']} | {r['couplings']} | "
            f"{r['density']:.2f} | {r['slackBits']} | {free} | {r['reduceSeconds']:.3f} | "
            f"{r['exact']['method']} | {cell(r['exact']['seconds'], '.2f')} | "
            f"{cell(r['exact']['proven'])} | {cell(r['exact']['optimum'], '.4g')} | "
            f"{cell(sa.get('seconds'), '.2f')} | {cell(sa.get('rawFeasibleRate'), '.2f')} | "
            f"{cell(_mean_raw(sa))} | {cell(sa.get('meanRatio'))} | {cell(sa.get('minRatio'))} |")
    lines += ["", "| instance | fit | vars | QPU | angles | 2q gates | angle s | sample s | "
              "post s | verify s | r mean | r min | best raw r | one refined shot r | raw "
              "feasible | feasible after repair | raw optimal % | uniform: r | uniform: one "
              "refined shot r | uniform: raw feasible | uniform: raw optimal % |",
              "|" + "---|" * 21]
    for r in result["quantum"]:
        if "skipped" in r:
            lines.append(f"| {r['case']} | {cell(r['fit'])} | {r['variables']} | "
                         f"{r['qpu'] or '-'} | skipped: {r['skipped']} |" + " |" * 16)
            continue
        u = r["uniformBaseline"]
        lines.append(
            f"| {r['case']} | {cell(r['fit'])} | {r['variables']} | {r['qpu']} | "
            f"{r['angleSource']} | {cell(r['twoQubitGates'], '.0f')} | "
            f"{r['angleSeconds']:.2f} | {r['sampleSeconds']:.2f} | {r['postSeconds']:.2f} | "
            f"{r['verifySeconds']:.3f} | {cell(r['meanRatio'])} | {cell(r['minRatio'])} | "
            f"{cell(r['bestRawRatio'])} | {cell(r['meanRefinedRatio'])} | "
            f"{cell(r['feasibleBeforeRepair'])} | {cell(r['feasibleAfterRepair'], '.2f')} | "
            f"{cell(_pct(r['optimalRawFraction']), '.2f')} | {cell(u['ratio'])} | "
            f"{cell(u['meanRefinedRatio'])} | {cell(u['feasibleBeforeRepair'])} | "
            f"{cell(_pct(u['optimalRawFraction']), '.2f')} |")
    lines += ["", "| instance | mode | phase | path | QPUs | solver | vars | ratio | "
              + " | ".join(f"{p} s" for p in PHASES) + " | outside phases s | total s |",
              "|" + "---|" * (10 + len(PHASES))]
    for r in result["pipeline"]:
        lines.append(
            f"| {r['case']} | {r['mode']} | {r['phase']} | {r['path'] or '-'} | "
            f"{','.join(r['qpus']) or '-'} | {r['solver'] or '-'} | {cell(r['variables'])} | "
            f"{cell(r['ratio'], '.4f')} | "
            + " | ".join(cell(r["seconds"].get(p)) for p in PHASES)
            + f" | {cell(r.get('outsidePhases'), '.2f')} | {cell(r['total'], '.2f')} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few instances, one seed, < 1 min")
    parser.add_argument("--output", default=None, help="JSON path (default: "
                        "benchmarks/results/optimize-<quick|full>.json)")
    parser.add_argument("--markdown", metavar="JSON", help="print the tables of an earlier "
                        "result as Markdown and exit")
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(Path(args.markdown).read_text())), end="")
        return 0
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    quick = args.quick
    seeds = 1 if quick else 3
    exact_limit = 2.0 if quick else 10.0
    sa_limit = 0.3 if quick else 1.0
    layers = 2  # the default policy's optimization.qaoaLayers
    shots = {"aer-ideal": 2000, "torino": 1000, "nairobi": 2000}
    noisy_seeds = 1 if quick else 2
    fleet_list = build_fleet(default_fleet_nodes())
    fleet = {q.name: q for q in fleet_list}

    print("== 1. QUBO sizes, exact solver and simulated annealing (r = approximation ratio "
          "against the refined optimum) ==")
    size_table: list[dict[str, Any]] = []
    for case in size_cases(quick):
        limits: list[int | None] = [None, 16] if case.kind == "trafficEngineering" else [None]
        for limit in limits:
            size_table.append(size_row(case, limit, exact_limit, seeds, sa_limit))
    print_sizes(size_table)

    print(f"\n== 2. The quantum path (QAOA p={layers}). r: best decision after repair + local "
          "search (what the pipeline reports), against the\n   refined exact optimum of the "
          "same QUBO; raw r: best raw feasible sample; 1shot: mean r of ONE sample after "
          "repair +\n   local search; feas: raw samples feasible; rep: feasible after repair; "
          "opt%: raw samples already optimal.\n   Right of the second bar: the same for as "
          "many UNIFORMLY RANDOM bitstrings (the baseline QAOA has to beat) ==")
    quantum: list[dict[str, Any]] = []
    for qc in quantum_cases(quick):
        n_seeds = seeds if qc.qpus == ("aer-ideal",) else noisy_seeds
        quantum += quantum_rows(qc, fleet, n_seeds, shots, layers, exact_limit)
    print_quantum(quantum)

    print("\n== 3. End to end: qbackbone.core.pipeline.run_job on the default fleet "
          "(seconds per status.timings phase) ==")
    e2e_cases = [te_case("abilene", "Abilene", 10, 1.2, 1), slice_case("slices-6x2", 6, 2, 1),
                 qubo_case("qubo-12", 12, 5)]
    if not quick:
        e2e_cases.insert(1, te_case("cogentco", "Cogentco", 12, 1.2, 1))
    pipeline = pipeline_rows(e2e_cases, fleet_list, ["Auto", "SingleQPU"])
    # A 7-variable job sent to the 7-qubit noisy nairobi: what the QIP makes of it.
    pipeline += pipeline_rows([slice_case("slices-4x1", 4, 1, 2)], fleet_list,
                              ["SingleQPU@nairobi"])
    print_pipeline(pipeline)

    totals = summary(quantum, size_table)
    print("\n== summary ==")
    for label in ("ideal", "noisy"):
        s = totals[label]
        feasible_uniform = fmt(s["uniformFeasibleBeforeRepair"], ".3f")
        optimal_uniform = fmt(_pct(s["uniformOptimalRawFraction"]), ".2f")
        print(f"{label:<6} QAOA ({s['runs']} instance/QPU pairs): mean ratio "
              f"{fmt(s['meanRatio'], '.4f')}, raw samples feasible "
              f"{fmt(s['feasibleBeforeRepair'], '.3f')} (uniform {feasible_uniform}), raw "
              f"optimal {fmt(_pct(s['optimalRawFraction']), '.2f')} % (uniform "
              f"{optimal_uniform} %), uniform+repair ratio {fmt(s['uniformRatio'], '.4f')}; one "
              f"refined shot: ratio {fmt(s['meanRefinedRatio'], '.4f')} (uniform "
              f"{fmt(s['uniformMeanRefinedRatio'], '.4f')})")
    print(f"simulated annealing + refine: mean ratio "
          f"{totals['simulatedAnnealing']['meanRatio']}, raw SA outputs feasible "
          f"{totals['simulatedAnnealing']['rawFeasibleRate']}")
    wall = time.perf_counter() - started
    print(f"\nwall time {wall:.1f} s")
    result = {"benchmark": "optimize", "quick": quick,
              "machine": {"python": platform.python_version(), "cpus": 2},
              "wallSeconds": round(wall, 2), "demandModel": DEMAND_MODEL,
              "settings": {"seeds": seeds, "noisySeeds": noisy_seeds, "exactTimeLimit":
                           exact_limit, "saTimeLimit": sa_limit, "layers": layers,
                           "shots": shots},
              "summary": totals, "sizes": size_table, "quantum": quantum,
              "pipeline": pipeline}
    out = Path(args.output) if args.output else RESULTS / (
        f"optimize-{'quick' if quick else 'full'}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
