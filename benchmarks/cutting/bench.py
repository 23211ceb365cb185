"""Cutting benchmark: accuracy, LOCC vs LO spread, cost, QASMBench planning.

    .venv/bin/python benchmarks/cutting/bench.py --quick   # under a minute
    .venv/bin/python benchmarks/cutting/bench.py           # full
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
from qiskit import QuantumCircuit, qasm2
from qiskit.circuit.library import efficient_su2
from qiskit.quantum_info import SparsePauliOp, Statevector

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


def accuracy(sizes: list[tuple[int, int]], reps: int, shots: int) -> dict[str, Any]:
    rows, inside, total = [], 0, 0
    for fam, make in FAMILIES.items():
        for n, width in sizes:
            rng = np.random.default_rng(n)
            qc, obs = make(n, rng), observables(n)
            ref = exact(qc, obs)
            t0 = time.perf_counter()
            try:
                plan = plan_cuts(qc, obs, [QPUCapacity("q", width, None)], ALL_KINDS, 1e4, 6,
                                 shots, seed=1)
            except CutPlanningError as err:
                rows.append({"family": fam, "n": n, "qpu": width, "refused": str(err)[:120]})
                continue
            t_plan = time.perf_counter() - t0
            ok = 0
            timings: dict[str, float] = {}
            for rep in range(reps):
                res = execute_plan(plan, AerRunner(seed=rep), seed=rep)
                for v, s, r in zip(res.values, res.std_errors, ref, strict=True):
                    ok += abs(v - r) <= 3 * s
                timings = res.timings
            inside += ok
            total += reps * len(obs)
            rows.append({"family": fam, "n": n, "qpu": width, "method": plan.method,
                         "cuts": len(plan.cuts), "overhead": plan.overhead,
                         "within_3se": ok / (reps * len(obs)), "plan_s": t_plan, **timings})
    return {"rows": rows, "share_within_3se": inside / max(total, 1)}


def locc_vs_lo(reps: int, total: int) -> list[dict[str, Any]]:
    cases = {1: ([(0, 4), (3, 7)], 7, 4), 2: ([(0, 4), (2, 6)], 6, 4), 3: ([(0, 6), (3, 9)], 9, 6)}
    out = []
    for wires, (spans, n, width) in cases.items():
        qc = blocks(spans, n, layers=3 if wires == 3 else 2)
        obs = ["Z" * n]
        spread = {}
        for kind in ("loccWire", "loWire"):
            probe = plan_cuts(qc, obs, [QPUCapacity("q", width, None)], [kind], 1e6, 4, 1, seed=1)
            shots = max(1, int(total / probe.overhead))
            plan = plan_cuts(qc, obs, [QPUCapacity("q", width, None)], [kind], 1e6, 4, shots,
                             seed=1)
            vals = [execute_plan(plan, AerRunner(seed=1000 + r), seed=r).values[0]
                    for r in range(reps)]
            spread[kind] = np.array(vals)
        ratio = float(np.std(spread["loccWire"], ddof=1) / np.std(spread["loWire"], ddof=1))
        boot = np.random.default_rng(0)
        samples = []
        for _ in range(500):
            a = boot.choice(spread["loccWire"], reps)
            b = boot.choice(spread["loWire"], reps)
            samples.append(np.std(a, ddof=1) / max(np.std(b, ddof=1), 1e-12))
        lo_q, hi_q = np.percentile(samples, [5, 95])
        expected = (2 ** (wires + 1) - 1) / 4**wires
        out.append({"wires": wires, "ratio": ratio, "ci90": [float(lo_q), float(hi_q)],
                    "expected": expected, "reps": reps, "samples_per_run": total})
    return out


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
    args = parser.parse_args()
    t0 = time.perf_counter()
    if args.quick:
        acc = accuracy([(8, 5)], reps=2, shots=200)
        cmp = locc_vs_lo(reps=10, total=20_000)
    else:
        acc = accuracy([(8, 5), (12, 7), (16, 8)], reps=5, shots=500)
        cmp = locc_vs_lo(reps=40, total=200_000)
    qb = qasmbench(args.quick)
    report = {"mode": "quick" if args.quick else "full", "accuracy": acc, "locc_vs_lo": cmp,
              "qasmbench": qb, "wall_s": time.perf_counter() - t0}
    out = ROOT / "benchmarks" / "results" / f"cutting-{report['mode']}.json"
    out.write_text(json.dumps(report, indent=1, default=float))
    print(f"(a) accuracy: share within 3 SE = {acc['share_within_3se']:.3f}")
    print(f"{'family':10} {'n':>3} {'qpu':>3} {'method':6} {'cuts':>4} {'ovh':>7} {'in3SE':>5} "
          f"{'plan_s':>6} {'gen_s':>6} {'exec_s':>6} {'rec_s':>6}")
    for r in acc["rows"]:
        if "refused" in r:
            print(f"{r['family']:10} {r['n']:>3} {r['qpu']:>3} refused: {r['refused']}")
            continue
        print(f"{r['family']:10} {r['n']:>3} {r['qpu']:>3} {r['method']:6} {r['cuts']:>4} "
              f"{r['overhead']:>7.0f} {r['within_3se']:>5.2f} {r['plan_s']:>6.2f} "
              f"{r['generation_s']:>6.2f} {r['execution_s']:>6.2f} {r['reconstruction_s']:>6.2f}")
    print("(b) LOCC vs LO std ratio at equal total shots")
    for r in cmp:
        print(f"  {r['wires']} wire(s): {r['ratio']:.2f} (90% CI {r['ci90'][0]:.2f}-"
              f"{r['ci90'][1]:.2f}), expected {r['expected']:.2f}, {r['reps']} reps")
    print("(d) QASMBench onto 7/16/20-qubit QPUs, maxSamplingOverhead 1000")
    for r in qb:
        print(f"  {r['circuit']:14} " + (f"refused: {r['refused']}" if "refused" in r else
              f"{r['method']} cuts={r['cuts']} overhead={r['overhead']:.0f} "
              f"parts={r['subcircuits']} plan {r['plan_s']:.2f}s"))
    print(f"wall {report['wall_s']:.1f}s -> {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
