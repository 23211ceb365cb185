"""Cutting benchmark: accuracy, LOCC vs LO spread, cost, QASMBench planning.

    .venv/bin/python benchmarks/cutting/bench.py --quick   # under a minute
    .venv/bin/python benchmarks/cutting/bench.py           # full (~17 min on 2 cores)
    .venv/bin/python benchmarks/cutting/bench.py --ratio 1 --reps 150   # one ratio, more reps
Writes benchmarks/results/cutting-<mode>.json and prints tables.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from exact import lo_variance, locc_variance, worst_case  # benchmarks/cutting/exact.py
from qiskit import QuantumCircuit, qasm2
from qiskit.circuit.library import efficient_su2
from qiskit.quantum_info import SparsePauliOp, Statevector
from scipy import stats

from qbackbone.core.cutting import (
    AerRunner,
    CutPlanningError,
    QPUCapacity,
    execute_plan,
    plan_cuts,
    unitary_part,
)

ROOT = Path(__file__).resolve().parents[2]
QASMBENCH = ROOT.parent / "shared" / "qasmbench"
ALL_KINDS = ["gate", "loWire", "loccWire"]


def qaoa_ring(n: int, rng: np.random.Generator) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    qc.h(range(n))
    for q in range(n):
        qc.rzz(rng.uniform(0, np.pi), q, (q + 1) % n)
    qc.rx(rng.uniform(0, np.pi), range(n))
    return qc


def hea(n: int, rng: np.random.Generator) -> QuantumCircuit:
    qc = efficient_su2(n, entanglement="linear", reps=1).decompose()
    return qc.assign_parameters(rng.uniform(0, np.pi, qc.num_parameters))


def ghz(n: int, rng: np.random.Generator) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    qc.ry(rng.uniform(0, 0.5), range(n))
    return qc


def ising(n: int, rng: np.random.Generator) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    for _ in range(2):
        for q in range(n - 1):
            qc.rzz(0.3, q, q + 1)
        qc.rx(0.4 + 0.1 * rng.uniform(), range(n))
    return qc


def random_local(n: int, rng: np.random.Generator) -> QuantumCircuit:
    qc = QuantumCircuit(n)
    for layer in range(3):
        for q in range(n):
            qc.u(*rng.uniform(0, np.pi, 3), q)
        for q in range(layer % 2, n - 1, 2):
            qc.cx(q, q + 1)
    return qc


def blocks(spans: list[tuple[int, int]], n: int, layers: int = 2) -> QuantumCircuit:
    """Entangling blocks on qubit ranges applied in order; the overlaps are the wires to cut."""
    rng = np.random.default_rng(0)
    qc = QuantumCircuit(n)
    for lo, hi in spans:
        for _ in range(layers):
            for q in range(lo, hi):
                qc.ry(rng.uniform(0, np.pi), q)
                qc.rz(rng.uniform(0, np.pi), q)
            for q in range(lo, hi - 1):
                qc.cx(q, q + 1)
    return qc


FAMILIES: dict[str, Callable[[int, np.random.Generator], QuantumCircuit]] = {
    "qaoa_ring": qaoa_ring, "hea": hea, "ghz": ghz, "ising": ising, "random": random_local,
}


def observables(n: int) -> list[str]:
    return ["Z" * n, "I" * (n - 2) + "ZZ", "ZZ" + "I" * (n - 2), "X" + "I" * (n - 1)]


def exact(qc: QuantumCircuit, obs: list[str]) -> list[float]:
    sv = Statevector(qc)
    return [float(sv.expectation_value(SparsePauliOp(o)).real) for o in obs]


def accuracy(sizes: list[tuple[int, int]], reps: int, samples: float) -> dict[str, Any]:
    """Cut every family onto one QPU; base shots chosen so each subcircuit runs ~``samples``."""
    rows, inside, total = [], 0, 0
    for fam, make in FAMILIES.items():
        for n, width in sizes:
            rng = np.random.default_rng(n)
            qc, obs = make(n, rng), observables(n)
            ref = exact(qc, obs)
            qpus = [QPUCapacity("q", width, None)]
            t0 = time.perf_counter()
            try:
                probe = plan_cuts(qc, obs, qpus, ALL_KINDS, 1e4, 6, 1, seed=1)
                t_plan = time.perf_counter() - t0
                shots = max(20, int(samples / probe.overhead))
                plan = plan_cuts(qc, obs, qpus, ALL_KINDS, 1e4, 6, shots, seed=1)
            except CutPlanningError as err:
                rows.append({"family": fam, "n": n, "qpu": width, "refused": str(err)[:200]})
                print(f"  accuracy {fam} n={n} qpu={width}: refused", flush=True)
                continue
            ok = 0
            timings: dict[str, float] = {}
            for rep in range(reps):
                res = execute_plan(plan, AerRunner(seed=rep), seed=rep)
                for v, s, r in zip(res.values, res.std_errors, ref, strict=True):
                    ok += abs(v - r) <= 3 * s
                for key, val in res.timings.items():
                    timings[key] = timings.get(key, 0.0) + val / reps
            inside += ok
            total += reps * len(obs)
            print(f"  accuracy {fam} n={n} qpu={width}: {plan.method} overhead "
                  f"{plan.overhead:.0f}, {ok}/{reps * len(obs)} within 3 SE, "
                  f"{time.perf_counter() - t0:.1f}s", flush=True)
            rows.append({"family": fam, "n": n, "qpu": width, "method": plan.method,
                         "cuts": len(plan.cuts), "subcircuits": len(plan.subcircuits),
                         "overhead": plan.overhead, "base_shots": shots,
                         "total_shots": plan.total_shots,
                         "within_3se": ok / (reps * len(obs)), "plan_s": t_plan, **timings})
    return {"rows": rows, "share_within_3se": inside / max(total, 1), "values": total}


RATIO_CASES = {1: ([(0, 4), (3, 7)], 7, 4), 2: ([(0, 4), (2, 6)], 6, 4),
               3: ([(0, 6), (3, 9)], 9, 6)}


def _std_ci(values: np.ndarray, level: float = 0.9) -> list[float]:
    """Chi-square confidence interval of a normal sample's standard deviation."""
    k = len(values) - 1
    s = float(np.std(values, ddof=1))
    lo_q, hi_q = stats.chi2.ppf([(1 + level) / 2, (1 - level) / 2], k)
    return [s * float(np.sqrt(k / lo_q)), s * float(np.sqrt(k / hi_q))]


def locc_vs_lo(reps: int, total: int, wires_run_lo: set[int],
               only: set[int] | None = None) -> list[dict[str, Any]]:
    """LOCC vs LO std at equal samples: measured (reps), exact prediction, worst-case bound.

    Both plans cut the same wires at the same places (checked) and every subcircuit runs
    ``~total`` samples. The prediction comes from exact per-term values (``exact.py``); the
    bound is ``gamma_LOCC / gamma_LO``. The LO run is skipped for wire counts not in
    ``wires_run_lo`` (the ratio is then measured LOCC over predicted LO and marked so).
    """
    out = []
    for wires, (spans, n, width) in RATIO_CASES.items():
        if only is not None and wires not in only:
            continue
        qc = blocks(spans, n, layers=3 if wires == 3 else 2)
        obs = ["Z" * n]
        ref = exact(qc, obs)[0]
        row: dict[str, Any] = {"wires": wires, "reps": reps, "exact_value": ref}
        plans = {}
        for kind in ("loccWire", "loWire"):
            qpus = [QPUCapacity("q", width, None)]
            probe = plan_cuts(qc, obs, qpus, [kind], 1e6, 4, 1, seed=1)
            plans[kind] = plan_cuts(qc, obs, qpus, [kind], 1e6, 4,
                                    max(1, int(total / probe.overhead)), seed=1)
        where = {k: sorted((c.qubits[0], c.position) for c in p.cuts) for k, p in plans.items()}
        if where["loccWire"] != where["loWire"] or len(where["loWire"]) != wires:
            raise RuntimeError(f"LOCC and LO cut different wires: {where}")
        row["cuts_qubit_position"] = where["loWire"]
        preds = {"loccWire": locc_variance(plans["loccWire"]),
                 "loWire": lo_variance(plans["loWire"])}
        measured: dict[str, np.ndarray] = {}
        for kind, plan in plans.items():
            pred = preds[kind]
            entry: dict[str, Any] = {
                "gamma": plan.gamma, "overhead": plan.overhead,
                "samples_per_subcircuit": pred["samples"], "total_shots": plan.total_shots,
                "predicted_std": float(np.sqrt(pred["variance"])),
                "bound_std": float(np.sqrt(worst_case(pred["gamma"], pred["samples"]))),
                "exact_prediction_bias": pred["value"] - ref,
            }
            if kind == "loWire" and wires not in wires_run_lo:
                entry["measured"] = "not run (prediction only)"
            else:
                t0 = time.perf_counter()
                runs = [execute_plan(plan, AerRunner(seed=10_000 * wires + 100 * r), seed=r)
                        for r in range(reps)]
                vals = np.array([r.values[0] for r in runs])
                measured[kind] = vals
                entry.update(measured_std=float(np.std(vals, ddof=1)),
                             measured_std_ci90=_std_ci(vals),
                             mean_reported_se=float(np.mean([r.std_errors[0] for r in runs])),
                             mean_minus_exact=float(vals.mean() - ref),
                             seconds_per_run=(time.perf_counter() - t0) / reps)
            row[kind] = entry
        # Equal samples: compare per-sample variances (the two sample counts differ by < 1%).
        per = {k: preds[k]["variance"] * preds[k]["samples"] for k in preds}
        row["predicted_ratio"] = float(np.sqrt(per["loccWire"] / per["loWire"]))
        row["predicted_ratio_large_samples"] = float(np.sqrt(
            preds["loccWire"]["per_sample_variance_limit"]
            / preds["loWire"]["per_sample_variance_limit"]))
        row["bound_ratio"] = (2 ** (wires + 1) - 1) / 4**wires
        scale = {k: np.sqrt(preds[k]["samples"]) for k in preds}
        if "loWire" in measured:
            a, b = measured["loccWire"] * scale["loccWire"], measured["loWire"] * scale["loWire"]
            row["measured_ratio"] = float(np.std(a, ddof=1) / np.std(b, ddof=1))
            k1, k2 = len(a) - 1, len(b) - 1
            f_hi, f_lo = stats.f.ppf([0.95, 0.05], k2, k1)
            row["measured_ratio_ci90"] = [row["measured_ratio"] / float(np.sqrt(f_hi)),
                                          row["measured_ratio"] / float(np.sqrt(f_lo))]
            boot = np.random.default_rng(0)
            samples = [np.std(boot.choice(a, len(a)), ddof=1)
                       / max(float(np.std(boot.choice(b, len(b)), ddof=1)), 1e-12)
                       for _ in range(2000)]
            row["measured_ratio_boot90"] = [float(x) for x in np.percentile(samples, [5, 95])]
            row["ratio_kind"] = "measured LOCC / measured LO"
        else:
            a = measured["loccWire"] * scale["loccWire"]
            lo_std = row["loWire"]["predicted_std"] * scale["loWire"]
            row["measured_ratio"] = float(np.std(a, ddof=1) / lo_std)
            row["measured_ratio_ci90"] = [x * scale["loccWire"] / lo_std
                                          for x in _std_ci(measured["loccWire"])]
            row["ratio_kind"] = "measured LOCC / predicted LO (LO not run)"
        out.append(row)
    return out


def chain(cuts: int) -> tuple[QuantumCircuit, int]:
    """``cuts + 1`` overlapping 3-qubit blocks: ``cuts`` single-wire cuts onto 3-qubit QPUs."""
    spans = [(2 * i, 2 * i + 3) for i in range(cuts + 1)]
    return blocks(spans, 2 * cuts + 3), 3


def cost_growth(max_cuts: dict[str, int], base_shots: int) -> list[dict[str, Any]]:
    """Wall time per phase against the number of cuts (fixed base shots, so samples grow as
    the overhead does)."""
    rows = []
    for kind, top in max_cuts.items():
        for k in range(1, top + 1):
            qc, width = chain(k)
            obs = ["Z" * qc.num_qubits]
            t0 = time.perf_counter()
            try:
                plan = plan_cuts(qc, obs, [QPUCapacity("q", width, None)], [kind], 1e7, 8,
                                 base_shots, seed=1)
            except CutPlanningError as err:
                rows.append({"kind": kind, "cuts_asked": k, "refused": str(err)[:200]})
                continue
            plan_s = time.perf_counter() - t0
            res = execute_plan(plan, AerRunner(seed=k), seed=k)
            ref = exact(qc, obs)[0]
            rows.append({"kind": kind, "cuts_asked": k, "cuts": len(plan.cuts),
                         "method": plan.method, "overhead": plan.overhead,
                         "subcircuits": len(plan.subcircuits),
                         "circuits": sum(r.circuits for r in res.records),
                         "total_shots": plan.total_shots, "plan_s": plan_s, **res.timings,
                         "error_in_se": abs(res.values[0] - ref) / res.std_errors[0]})
    return rows


def qasmbench(quick: bool) -> list[dict[str, Any]]:
    fleet = [QPUCapacity("q7", 7, None), QPUCapacity("q16", 16, None), QPUCapacity("q20", 20, None)]
    names = ["sat_n11", "seca_n11", "cc_n12", "multiply_n13", "bv_n14", "dnn_n16", "qft_n18",
             "cat_state_n22"] + ([] if quick else ["ising_n26"])  # ising_n26: ~30 s to plan
    rows = []
    for name in names:
        row: dict[str, Any] = {"circuit": name}
        try:
            qc = unitary_part(qasm2.load(str(QASMBENCH / f"{name}.qasm"),
                                         custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS))
            t0 = time.perf_counter()
            plan = plan_cuts(qc, ["Z" * qc.num_qubits], fleet, ALL_KINDS, 1e3, 4, 1000, seed=1)
            row.update(method=plan.method, cuts=len(plan.cuts), overhead=plan.overhead,
                       subcircuits=[(s.qubits, s.two_qubit_depth) for s in plan.subcircuits],
                       plan_s=time.perf_counter() - t0, why=plan.explanation[-1][:160])
        except CutPlanningError as err:
            row["refused"] = str(err)[:300]
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--ratio", type=int, choices=[1, 2, 3],
                        help="only the LOCC/LO ratio for this many wires (with --reps)")
    parser.add_argument("--reps", type=int, default=150)
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.ratio:
        rows = locc_vs_lo(args.reps, 20_000, {args.ratio}, only={args.ratio})
        out = ROOT / "benchmarks" / "results" / f"cutting-ratio-{args.ratio}w.json"
        out.write_text(json.dumps({"mode": f"ratio {args.ratio} wire(s)", "locc_vs_lo": rows,
                                   "wall_s": time.perf_counter() - t0}, indent=1, default=float))
        print(json.dumps(rows, indent=1, default=float))
        return
    section: dict[str, float] = {}

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        value = fn()
        section[name] = time.perf_counter() - start
        print(f"[{name} done in {section[name]:.1f}s]", flush=True)
        return value

    if args.quick:
        acc = timed("accuracy", lambda: accuracy([(8, 5)], reps=1, samples=2_000))
        cmp = timed("locc_vs_lo", lambda: locc_vs_lo(reps=6, total=10_000, wires_run_lo={1, 2}))
        cost = timed("cost", lambda: cost_growth({"loccWire": 2, "loWire": 2}, base_shots=20))
    else:
        acc = timed("accuracy", lambda: accuracy([(8, 4), (8, 5), (12, 6), (16, 8), (20, 8)],
                                                 reps=5, samples=40_000))
        cmp = timed("locc_vs_lo", lambda: locc_vs_lo(reps=40, total=20_000,
                                                     wires_run_lo={1, 2, 3}))
        cost = timed("cost", lambda: cost_growth({"loccWire": 4, "loWire": 3}, base_shots=20))
    qb = timed("qasmbench", lambda: qasmbench(args.quick))
    report = {"mode": "quick" if args.quick else "full", "accuracy": acc, "locc_vs_lo": cmp,
              "cost_growth": cost, "qasmbench": qb, "section_s": section,
              "wall_s": time.perf_counter() - t0}
    out = ROOT / "benchmarks" / "results" / f"cutting-{report['mode']}.json"
    out.write_text(json.dumps(report, indent=1, default=float))
    print(f"(a) accuracy: share within 3 SE = {acc['share_within_3se']:.3f} "
          f"over {acc['values']} values")
    print(f"{'family':10} {'n':>3} {'qpu':>3} {'method':6} {'cuts':>4} {'ovh':>7} {'in3SE':>5} "
          f"{'plan_s':>6} {'gen_s':>6} {'exec_s':>6} {'rec_s':>6}")
    for r in acc["rows"]:
        if "refused" in r:
            print(f"{r['family']:10} {r['n']:>3} {r['qpu']:>3} refused: {r['refused']}")
            continue
        print(f"{r['family']:10} {r['n']:>3} {r['qpu']:>3} {r['method']:6} {r['cuts']:>4} "
              f"{r['overhead']:>7.0f} {r['within_3se']:>5.2f} {r['plan_s']:>6.2f} "
              f"{r['generation_s']:>6.2f} {r['execution_s']:>6.2f} {r['reconstruction_s']:>6.2f}")
    print("(b) LOCC vs LO std ratio at equal samples: measured [90% CI] / exact prediction / "
          "worst-case bound")
    for r in cmp:
        ci = r["measured_ratio_ci90"]
        print(f"  {r['wires']} wire(s): {r['measured_ratio']:.2f} [{ci[0]:.2f}-{ci[1]:.2f}] / "
              f"{r['predicted_ratio']:.2f} / {r['bound_ratio']:.2f}  ({r['ratio_kind']}, "
              f"{r['reps']} reps; predicted for many samples per term "
              f"{r['predicted_ratio_large_samples']:.2f})")
        for kind in ("loccWire", "loWire"):
            e = r[kind]
            meas = (f"measured {e['measured_std']:.4f} [{e['measured_std_ci90'][0]:.4f}-"
                    f"{e['measured_std_ci90'][1]:.4f}]" if "measured_std" in e else "not run")
            print(f"     {kind:8} gamma {e['gamma']:>4.0f} std {meas}, predicted "
                  f"{e['predicted_std']:.4f}, bound {e['bound_std']:.4f}")
    print("(c) cost against the number of cuts (base shots 20)")
    for r in cost:
        if "refused" in r:
            print(f"  {r['kind']:8} {r['cuts_asked']} refused: {r['refused']}")
            continue
        print(f"  {r['kind']:8} cuts={r['cuts']} overhead={r['overhead']:>7.0f} "
              f"circuits={r['circuits']:>5} shots={r['total_shots']:>8} plan {r['plan_s']:.2f}s "
              f"gen {r['generation_s']:.2f}s exec {r['execution_s']:.2f}s "
              f"rec {r['reconstruction_s']:.2f}s")
    print("(d) QASMBench onto 7/16/20-qubit QPUs, maxSamplingOverhead 1000")
    for r in qb:
        print(f"  {r['circuit']:14} " + (f"refused: {r['refused']}" if "refused" in r else
              f"{r['method']} cuts={r['cuts']} overhead={r['overhead']:.0f} "
              f"parts={r['subcircuits']} plan {r['plan_s']:.2f}s"))
    print(f"wall {report['wall_s']:.1f}s -> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
