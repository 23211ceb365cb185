"""Tune the QAOA template registry (operator/qbackbone/core/optimize/data/qaoa-templates.yaml).

For each problem class (qubo, trafficEngineering, sliceAdmission) and depth p = 1, 2, 3, one
shared set of angles (gammas, betas on the normalised cost Hamiltonian of qaoa.py) is chosen
to minimise the MEAN NORMALISED EXPECTED COST over a training set of random instances of the
class, computed exactly with qaoa.expected_cost (the numpy statevector simulator):

    normalised <C>_i = (<C>_i - C_min,i) / (C_max,i - C_min,i)     (0: optimal, 1: worst)
    approximation_i  = 1 - normalised <C>_i

Why the expected cost and not the probability of sampling an optimal / feasible assignment:
- it is what qaoa.optimise_angles (the per-instance COBYLA fallback of the pipeline) minimises,
  so a template and per-instance COBYLA are compared on the same scale;
- it is smooth and informative on every instance, whereas at 8-16 qubits the probability of
  the optimum is small (10^-3 .. 10^-1), flat for small angles and dominated by a few easy
  instances; feasibility of penalty QUBOs is not a function of the state's energy alone;
- the pipeline repairs and locally improves every sample, so what matters is weight on
  low-energy assignments (for penalty QUBOs: feasible or nearly feasible), which <C> measures.
Normalising per instance makes every instance weigh the same whatever its energy scale.

Optimisation: p=1 by a 16x16 grid (gamma in [0.05, 1.6], beta in [-1.5, 1.5]: beta has
period pi and (gamma, beta) -> (-gamma, -beta) leaves <C> unchanged, so every beta is covered)
then COBYLA; p=2,3 by COBYLA from the INTERP extension of the p-1 optimum (Zhou et al.,
PRX 10, 021067) and from two linear ramps; the best start wins.

Validation on held-out instances (other seeds, 8-16 variables): the template's approximation
against per-instance COBYLA from a linear ramp (qaoa.optimise_angles, what the pipeline runs
without a template), the linear ramp itself and random angles; also the probability of an
optimal bitstring. The YAML records the training and held-out figures.

    .venv/bin/python benchmarks/optimize/tune_qaoa_templates.py [--quick] [--no-write]

Runtime: about 8-10 minutes on the shared 2-core machine (--quick: fewer instances, not written).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from instances import QAOA_KINDS, qaoa_instances  # benchmarks/optimize/instances.py
from scipy.optimize import minimize

from qbackbone.core.optimize.problem import ReducedProblem
from qbackbone.core.optimize.qaoa import (
    CostHamiltonian,
    expected_cost,
    linear_ramp,
    optimise_angles,
    qaoa_state,
)

ROOT = Path(__file__).resolve().parents[2]
REGISTRY = ROOT / "operator" / "qbackbone" / "core" / "optimize" / "data" / "qaoa-templates.yaml"
RESULTS = ROOT / "benchmarks" / "results" / "optimize-templates.json"
LAYERS = (1, 2, 3)
TRAIN_SEED, HELD_OUT_SEED, HELD_OUT_LARGE_SEED = 1000, 5000, 9000
TRAIN_SIZES = (8, 14)
LARGE_SIZES = (15, 16)
RANDOM_BASELINE_DRAWS = 16


@dataclass(frozen=True)
class Instance:
    """A reduced problem with its normalised cost diagonal and energy range."""

    problem: ReducedProblem
    n: int
    diagonal: np.ndarray
    low: float
    high: float

    @staticmethod
    def of(problem: ReducedProblem) -> Instance:
        n = problem.qubo.size
        diagonal = CostHamiltonian.of(problem.qubo).diagonal(n)
        return Instance(problem, n, diagonal, float(diagonal.min()), float(diagonal.max()))

    def approximation(self, gammas: np.ndarray, betas: np.ndarray) -> float:
        """1 - normalised <C>: 1 when all weight is on optimal states."""
        cost = expected_cost(self.diagonal, self.n, gammas, betas)
        return (self.high - cost) / (self.high - self.low) if self.high > self.low else 1.0

    def p_optimal(self, gammas: np.ndarray, betas: np.ndarray) -> float:
        """Probability of sampling a minimum-energy bitstring."""
        state = qaoa_state(self.diagonal, self.n, gammas, betas)
        optimal = self.diagonal <= self.low + 1e-9 * max(1.0, abs(self.low))
        return float(np.sum(np.abs(state[optimal]) ** 2))


def mean_cost(instances: list[Instance], v: np.ndarray, layers: int) -> float:
    """Mean normalised <C> of shared angles v = (gammas, betas)."""
    g, b = v[:layers], v[layers:]
    return float(np.mean([1.0 - inst.approximation(g, b) for inst in instances]))


def interp(previous: np.ndarray, layers: int) -> np.ndarray:
    """INTERP: angles for p+1 layers from those of p (linear interpolation of the schedule)."""
    p = layers - 1
    out = []
    for half in (previous[:p], previous[p:]):
        padded = np.concatenate([[0.0], half, [0.0]])
        out.append([(i / p) * padded[i] + ((p - i) / p) * padded[i + 1] for i in range(p + 1)])
    return np.concatenate(out)


def tune(instances: list[Instance], layers: int, previous: np.ndarray | None,
         p1: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Shared angles minimising the mean normalised <C>; (angles, evaluations)."""
    evaluations = 0

    def f(v: np.ndarray) -> float:
        nonlocal evaluations
        evaluations += 1
        return mean_cost(instances, v, layers)

    starts: list[np.ndarray] = []
    if layers == 1:
        grid = [(g, b) for g in np.linspace(0.05, 1.6, 16) for b in np.linspace(-1.5, 1.5, 16)]
        scores = [f(np.array(gb)) for gb in grid]
        starts.append(np.array(grid[int(np.argmin(scores))]))
    else:
        assert previous is not None and p1 is not None
        starts.append(interp(previous, layers))
        ramp = linear_ramp(layers)
        starts.append(np.array(ramp.gammas + ramp.betas))
        t = (np.arange(layers) + 0.5) / layers  # a ramp reaching twice the p=1 optimum
        starts.append(np.concatenate([2 * p1[0] * t, 2 * p1[1] * (1 - t)]))
    best_v, best_f = starts[0], f(starts[0])
    for start in starts:
        found = minimize(f, start, method="COBYLA",
                         options={"maxiter": 40 + 40 * layers, "rhobeg": 0.1})
        if found.fun < best_f:
            best_v, best_f = np.asarray(found.x), float(found.fun)
    return best_v, evaluations


def validate(held_out: list[Instance], layers: int, v: np.ndarray,
             rng: np.random.Generator) -> dict[str, Any]:
    """Template vs per-instance COBYLA, linear ramp and random angles on held-out instances."""
    g, b = v[:layers], v[layers:]
    ramp = linear_ramp(layers)
    rows = []
    for inst in held_out:
        start = time.perf_counter()
        cobyla = optimise_angles(inst.problem.qubo, layers)
        cobyla_seconds = time.perf_counter() - start
        cg, cb = np.array(cobyla.gammas), np.array(cobyla.betas)
        random_draws = [inst.approximation(rng.uniform(0, np.pi, layers),
                                           rng.uniform(0, np.pi, layers))
                        for _ in range(RANDOM_BASELINE_DRAWS)]
        rows.append({
            "variables": inst.n,
            "template": inst.approximation(g, b),
            "cobyla": inst.approximation(cg, cb),
            "ramp": inst.approximation(np.array(ramp.gammas), np.array(ramp.betas)),
            "random": float(np.mean(random_draws)),
            "pOptTemplate": inst.p_optimal(g, b),
            "pOptCobyla": inst.p_optimal(cg, cb),
            "pOptUniform": inst.p_optimal(np.zeros(layers), np.zeros(layers)),
            "cobylaSeconds": cobyla_seconds,
        })

    def mean(key: str, rows: list[dict[str, Any]] = rows) -> float:
        return float(np.mean([r[key] for r in rows]))

    return {"rows": rows, **{k: mean(k) for k in
                             ("template", "cobyla", "ramp", "random", "pOptTemplate",
                              "pOptCobyla", "pOptUniform", "cobylaSeconds")},
            "templateWins": sum(r["template"] >= r["cobyla"] - 1e-9 for r in rows),
            "worstGap": float(max(r["cobyla"] - r["template"] for r in rows))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="6 training and 4 held-out instances; implies --no-write")
    parser.add_argument("--no-write", action="store_true", help="do not write the registry")
    args = parser.parse_args()
    write = not (args.no_write or args.quick)
    n_train, n_held, n_large = (6, 3, 1) if args.quick else (16, 6, 3)
    started = time.perf_counter()
    rng = np.random.default_rng(2026)
    entries: list[dict[str, Any]] = []
    report: list[dict[str, Any]] = []
    print(f"{'kind':<19} {'p':>2} {'train':>6} {'held-out:':>10} {'template':>9} {'COBYLA':>7} "
          f"{'ramp':>6} {'random':>7} {'P(opt) T':>9} {'P(opt) C':>9} {'wins':>5} {'s':>6}")
    for kind in QAOA_KINDS:
        lo = 6 if kind == "qubo" else TRAIN_SIZES[0]
        train = [Instance.of(p) for p in qaoa_instances(kind, n_train, TRAIN_SEED, lo,
                                                        TRAIN_SIZES[1])]
        held = [Instance.of(p) for p in
                qaoa_instances(kind, n_held, HELD_OUT_SEED, lo, TRAIN_SIZES[1])
                + qaoa_instances(kind, n_large, HELD_OUT_LARGE_SEED, *LARGE_SIZES)]
        previous: np.ndarray | None = None
        p1: np.ndarray | None = None
        for layers in LAYERS:
            t0 = time.perf_counter()
            v, evaluations = tune(train, layers, previous, p1)
            tune_seconds = time.perf_counter() - t0
            previous = v
            if layers == 1:
                p1 = v
            train_approx = 1.0 - mean_cost(train, v, layers)
            check = validate(held, layers, v, rng)
            seconds = time.perf_counter() - t0
            sizes_train = sorted(i.n for i in train)
            sizes_held = sorted(i.n for i in held)
            print(f"{kind:<19} {layers:>2} {train_approx:>6.3f} {'':>10} {check['template']:>9.3f} "
                  f"{check['cobyla']:>7.3f} {check['ramp']:>6.3f} {check['random']:>7.3f} "
                  f"{check['pOptTemplate']:>9.4f} {check['pOptCobyla']:>9.4f} "
                  f"{check['templateWins']:>2}/{len(held):<2} {seconds:>6.1f}", flush=True)
            entries.append({
                "kind": kind, "layers": layers,
                "minVariables": min(sizes_train + sizes_held),
                "maxVariables": max(sizes_train + sizes_held),
                "gammas": [round(float(x), 5) for x in v[:layers]],
                "betas": [round(float(x), 5) for x in v[layers:]],
                "tunedOn": (f"{len(train)} random {kind} instances of {sizes_train[0]}-"
                            f"{sizes_train[-1]} variables (instances.qaoa_instances, seed "
                            f"{TRAIN_SEED}); shared angles minimising the mean normalised "
                            "expected cost on the exact simulator (qaoa.expected_cost); "
                            f"validated on {len(held)} held-out instances of {sizes_held[0]}-"
                            f"{sizes_held[-1]} variables"),
                "objective": "meanNormalisedExpectedCost",
                "meanApproximation": round(train_approx, 4),
                "heldOutApproximation": round(check["template"], 4),
                "heldOutCobylaApproximation": round(check["cobyla"], 4),
                "heldOutRampApproximation": round(check["ramp"], 4),
                "heldOutRandomAnglesApproximation": round(check["random"], 4),
                "heldOutOptimumProbability": round(check["pOptTemplate"], 5),
                "heldOutCobylaOptimumProbability": round(check["pOptCobyla"], 5),
            })
            report.append({"kind": kind, "layers": layers, "evaluations": evaluations,
                           "seconds": round(seconds, 2), "tuneSeconds": round(tune_seconds, 2),
                           "trainSizes": sizes_train,
                           "trainApproximation": train_approx, "validation": check,
                           "gammas": entries[-1]["gammas"], "betas": entries[-1]["betas"]})
    wall = time.perf_counter() - started
    print("\napproximation = 1 - normalised <C> (1: all weight on optimal bitstrings); held-out "
          "figures are means\nover instances; 'wins' counts held-out instances where the shared "
          "template is at least as good\nas per-instance COBYLA (qaoa.optimise_angles, "
          f"{statistics.mean(r['validation']['cobylaSeconds'] for r in report):.2f} s per "
          "instance on average).")
    print(f"wall time {wall:.0f} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    out = RESULTS.with_name("optimize-templates-quick.json") if args.quick else RESULTS
    out.write_text(json.dumps({"benchmark": "qaoa-templates", "quick": args.quick,
                               "wallSeconds": round(wall, 1), "results": report},
                              indent=2) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    if write:
        header = ("# QAOA angle templates: one shared (gammas, betas) per problem class and\n"
                  "# depth, on the normalised cost Hamiltonian of qaoa.py. Generated by\n"
                  "#   .venv/bin/python benchmarks/optimize/tune_qaoa_templates.py\n"
                  "# Do not edit by hand; see docs/optimize-benchmark.md.\n")
        REGISTRY.write_text(header + yaml.safe_dump({"templates": entries}, sort_keys=False,
                                                    width=100))
        print(f"wrote {REGISTRY}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
