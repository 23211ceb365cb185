"""Error-mitigation levels on offline fake devices: bias, honest sigma, time (issue 15).

Runs small circuits (QASMBench ones that fit, plus GHZ, random Clifford+T layers, QAOA rings
and a hardware-efficient ansatz) on noisy fake IBM devices through qiskit-ibm-runtime's
client-side, executor-based Estimator (``qiskit_ibm_runtime.executor_estimator``; not the
deprecated local-mode SamplerV2/EstimatorV2) at several mitigation levels, and compares every
value with the exact Statevector value:

  L0       resilience_level 0: no mitigation; sigma = shot noise (ensemble standard error)
  L1       resilience_level 1: TREX (twirled readout + measurement-noise calibration)
  L1+      L1 with Pauli gate twirling and XX dynamical decoupling
  L2       resilience_level 2: TREX + gate twirling + ZNE (gate folding, exponential/linear)
  L2+sys   L2 values; sigma = sqrt(stds^2 + systematic^2), systematic = the spread of the
           extrapolators at zero noise plus a floor (derived here, not an option of the API)

Prints the figures and writes benchmarks/results/mitigation-baseline.json.

    .venv/bin/python benchmarks/mitigation/levels.py            # full run, 900 s on 2 cores
    .venv/bin/python benchmarks/mitigation/levels.py --quick    # ~1-2 min, writes to $TMPDIR
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "mitigation-baseline.json"
QASMBENCH = Path(os.environ.get("QB_QASMBENCH", ROOT.parent / "shared" / "qasmbench"))

# device class name -> generation (processor_type of the fake backend)
DEVICES = {
    "FakeNairobiV2": "Falcon r5.11H (7q)",
    "FakeCasablancaV2": "Falcon r4H (7q)",
    "FakeManilaV2": "Falcon r5.11L (5q)",
    "FakeQuitoV2": "Falcon r4T (5q)",
    "FakeBogotaV2": "Falcon r4L (5q)",
    "FakeYorktownV2": "Canary r1 (5q)",
}
QUICK_DEVICES = ["FakeNairobiV2", "FakeQuitoV2"]
QASM_CIRCUITS = ["bell_n4", "cat_state_n4", "qft_n4", "qaoa_n6"]
SHOTS = 4000
SYS_FLOOR = 0.01  # systematic floor for L2+sys (model error of the extrapolation)


def _levels() -> dict[str, dict[str, Any]]:
    return {
        "L0": {"resilience_level": 0},
        "L1": {"resilience_level": 1},
        "L1+": {"resilience_level": 1, "twirling": {"enable_gates": True},
                "dynamical_decoupling": {"enable": True, "sequence_type": "XX"}},
        "L2": {"resilience_level": 2},
    }


# ---------------------------------------------------------------- circuits

from families import _clifford_t, _ghz, _hea, _qaoa_ring  # noqa: E402 (script directory)


def _qasmbench(name: str) -> Any:
    from qiskit import QuantumCircuit

    qc = QuantumCircuit.from_qasm_file(str(QASMBENCH / f"{name}.qasm"))
    qc.remove_final_measurements()
    qc.name = name
    return qc


def circuits(quick: bool) -> list[Any]:
    """Every benchmark circuit (no measurements), smallest first."""
    own = [
        _ghz(3), _ghz(5),
        _clifford_t(4, 2, 11), _clifford_t(4, 4, 12), _clifford_t(5, 3, 13),
        _qaoa_ring(4, 1), _qaoa_ring(5, 2),
        _hea(4, 1, 21), _hea(4, 2, 22), _hea(5, 2, 23),
    ]
    bench = [_qasmbench(n) for n in QASM_CIRCUITS if (QASMBENCH / f"{n}.qasm").exists()]
    every = bench + own
    if quick:
        keep = {"bell_n4", "qft_n4", "ghz_n5", "cliffT_n4_l4", "qaoa_ring_n4_p1", "hea_n4_r2"}
        every = [c for c in every if c.name in keep]
    return every


def observables(n: int) -> dict[str, str]:
    """Labels (qiskit order, qubit 0 rightmost) of the observables measured per circuit."""
    return {
        "Z0Z1": "I" * (n - 2) + "ZZ",
        "Zall": "Z" * n,
        "Z0": "I" * (n - 1) + "Z",
    }


# ---------------------------------------------------------------- one task

_BACKENDS: dict[str, Any] = {}


def _backend(name: str) -> Any:
    if name not in _BACKENDS:
        from qiskit_ibm_runtime import fake_provider

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _BACKENDS[name] = getattr(fake_provider, name)()
    return _BACKENDS[name]


def run_task(device: str, circuit: Any, seeds: list[int]) -> list[dict[str, Any]]:
    """All seeds and levels of one circuit on one device."""
    warnings.simplefilter("ignore")
    from qiskit.quantum_info import SparsePauliOp, Statevector
    from qiskit.transpiler.preset_passmanagers import generate_preset_pass_manager
    from qiskit_ibm_runtime.executor_estimator import Estimator

    backend = _backend(device)
    n = circuit.num_qubits
    obs = {k: SparsePauliOp(v) for k, v in observables(n).items()}
    sv = Statevector(circuit)
    exact = {k: float(np.real(sv.expectation_value(o))) for k, o in obs.items()}
    rows: list[dict[str, Any]] = []
    for seed in seeds:
        pm = generate_preset_pass_manager(backend=backend, optimization_level=1,
                                          seed_transpiler=seed)
        isa = pm.run(circuit)
        ops = dict(isa.count_ops())
        twoq = sum(v for k, v in ops.items() if k in ("cx", "cz", "ecr"))
        names = list(obs)
        iso = [obs[k].apply_layout(isa.layout) for k in names]
        for level, opts in _levels().items():
            est = Estimator(mode=backend)
            est.options.default_shots = SHOTS
            est.options.simulator.seed_simulator = seed
            est.options.resilience_level = opts["resilience_level"]
            if "twirling" in opts:
                est.options.twirling.enable_gates = True
            if "dynamical_decoupling" in opts:
                est.options.dynamical_decoupling.enable = True
                est.options.dynamical_decoupling.sequence_type = "XX"
            t0 = time.perf_counter()
            err = None
            try:
                res = est.run([(isa, iso)]).result()
            except Exception as exc:
                err = f"{type(exc).__name__}: {str(exc)[:300]}"
            wall = time.perf_counter() - t0
            base = {"device": device, "circuit": circuit.name, "qubits": n, "seed": seed,
                    "level": level, "depth": isa.depth(), "twoq": twoq,
                    "wall_s": round(wall, 4)}
            if err is not None:
                rows.append({**base, "error": err})
                continue
            data = res[0].data
            shots_used = res.metadata.get("shots")
            for j, k in enumerate(names):
                value = float(data.evs[j])
                std = float(data.stds[j])
                row = {**base, "observable": k, "exact": exact[k], "value": value,
                       "std": std, "shots": shots_used}
                if "ensemble_standard_error" in data:
                    row["ensemble_std"] = float(data.ensemble_standard_error[j])
                if "evs_noise_factors" in data:
                    row["evs_noise_factors"] = [float(x) for x in data.evs_noise_factors[j]]
                    row["stds_noise_factors"] = [float(x) for x in data.stds_noise_factors[j]]
                    ext = np.asarray(data.evs_extrapolated[j])  # (extrapolators, points)
                    row["evs_extrapolated"] = ext.tolist()
                    row["stds_extrapolated"] = np.asarray(data.stds_extrapolated[j]).tolist()
                    # zero-noise point of each extrapolator (first evaluation point is 0)
                    at_zero = ext[:, 0]
                    row["sys_spread"] = float(np.max(np.abs(at_zero - value)))
                rows.append(row)
    return rows


def _finite(x: float, fallback: float) -> float:
    return x if math.isfinite(x) else fallback


def derive(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The L2+sys and L2lin+sys rows, derived from the L2 rows (no extra runs).

    A Pauli expectation value lies in [-1, 1]: values are clipped, errors capped at 1. When
    the primitive's fit returns a non-finite sigma (a degenerate fit: seen on flat data), the
    statistical sigma falls back to twice the largest sigma of the noise factors.
    """
    out = [r for r in rows if r.get("level") not in ("L2+sys", "L2lin+sys")]
    for r in [x for x in out if x.get("level") == "L2" and "value" in x]:
        std_nf = r["stds_noise_factors"]
        fallback = 2 * max(std_nf)
        # statistical sigma: never smaller than the sigma at noise factor 1
        stat = max(_finite(r["std"], fallback), std_nf[0])
        spread = _finite(r["sys_spread"], 1.0)
        out.append({**r, "level": "L2+sys", "value": float(np.clip(r["value"], -1, 1)),
                    "std": min(stat, 1.0),
                    "systematic": min(math.hypot(spread, SYS_FLOOR), 1.0)})
        # linear extrapolation (index 1 of the default ("exponential", "linear")):
        # its own sigma; systematic = half its distance to the exponential fit
        lin = r["evs_extrapolated"][1][0]
        lin_std = _finite(r["stds_extrapolated"][1][0], fallback)
        half = _finite(0.5 * abs(r["evs_extrapolated"][0][0] - lin), 1.0)
        out.append({**r, "level": "L2lin+sys", "value": float(np.clip(lin, -1, 1)),
                    "std": min(max(lin_std, std_nf[0]), 1.0),
                    "systematic": min(math.hypot(half, SYS_FLOOR), 1.0)})
    return out


def write_results(path: Path, doc: dict[str, Any]) -> None:
    """Strict JSON: the header and summary indented, one compact line per row."""
    doc = _strict(doc)
    rows = doc.pop("rows")
    head = json.dumps(doc, indent=1, allow_nan=False)[:-2]
    bulky = ("evs_noise_factors", "stds_noise_factors", "evs_extrapolated", "stds_extrapolated",
             "sys_spread")
    body = ",\n".join(
        json.dumps(_rounded({k: v for k, v in r.items()
                             if r["level"] not in ("L2+sys", "L2lin+sys") or k not in bulky}),
                   separators=(",", ":"), allow_nan=False)
        for r in rows)
    path.write_text(f'{head},\n "rows": [\n{body}\n ]\n}}\n')


def _rounded(x: Any) -> Any:
    """Floats to 6 significant digits (the rows' precision far exceeds their shot noise)."""
    if isinstance(x, float):
        return float(f"{x:.6g}")
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return x


def _unstrict(x: Any) -> Any:
    """Read back what _strict wrote."""
    if isinstance(x, str) and x in ("inf", "-inf", "nan"):
        return float(x)
    if isinstance(x, dict):
        return {k: _unstrict(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_unstrict(v) for v in x]
    return x


def _strict(x: Any) -> Any:
    """Strict JSON: non-finite floats become strings ("inf", "nan")."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _strict(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_strict(v) for v in x]
    return x


# ---------------------------------------------------------------- summary

def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Coverage, bias and time per level (and per device for each level)."""
    ok = [r for r in rows if "value" in r]
    levels = list(dict.fromkeys(r["level"] for r in ok))

    def stats(sel: list[dict[str, Any]]) -> dict[str, Any]:
        if not sel:
            return {"n": 0}
        dev = np.array([abs(r["value"] - r["exact"]) for r in sel])
        sig = np.array([math.hypot(r["std"], r.get("systematic", 0.0)) for r in sel])
        finite = np.isfinite(sig)
        z = dev / np.maximum(sig, 1e-12)
        sig = sig[finite]
        return {
            "n": len(sel),
            "nonfinite_sigma": int(np.sum(~finite)),
            "within_1sigma": round(float(np.mean(z <= 1)), 4),
            "within_2sigma": round(float(np.mean(z <= 2)), 4),
            "within_3sigma": round(float(np.mean(z <= 3)), 4),
            "mean_abs_bias": round(float(np.mean(dev)), 4),
            "max_abs_bias": round(float(np.max(dev)), 4),
            "median_sigma": round(float(np.median(sig)), 4),
            "max_sigma": round(float(np.max(sig)), 4),
            "frac_sigma_le_0.08": round(float(np.mean(sig <= 0.08)), 4),
        }

    # time per (device, circuit, seed, level) once, not per observable
    runs: dict[tuple[str, str, int, str], float] = {}
    for r in rows:
        runs[(r["device"], r["circuit"], r["seed"], r["level"])] = r["wall_s"]
    t0 = {k[:3]: v for k, v in runs.items() if k[3] == "L0"}
    out: dict[str, Any] = {"levels": {}, "by_device": {}, "by_depth": {}}
    for lvl in levels:
        sel = [r for r in ok if r["level"] == lvl]
        s = stats(sel)
        times = [v for k, v in runs.items() if k[3] == lvl]
        ratios = [v / t0[k[:3]] for k, v in runs.items() if k[3] == lvl and k[:3] in t0]
        s["mean_wall_s"] = round(float(np.mean(times)), 3) if times else None
        s["time_overhead_vs_L0"] = round(float(np.median(ratios)), 2) if ratios else None
        shots = [r["shots"] for r in sel if r.get("shots")]
        s["shots_reported"] = int(np.median(shots)) if shots else None
        out["levels"][lvl] = s
        out["by_device"][lvl] = {d: stats([r for r in sel if r["device"] == d])
                                 for d in dict.fromkeys(r["device"] for r in sel)}
        out["by_depth"][lvl] = {
            name: stats([r for r in sel if lo <= r["twoq"] < hi])
            for name, lo, hi in (("twoq<=4", 0, 5), ("twoq5-15", 5, 16), ("twoq>15", 16, 10**9))
        }
    errors = [r for r in rows if "error" in r]
    out["errors"] = [{k: r[k] for k in ("device", "circuit", "seed", "level", "error")}
                     for r in errors[:20]]
    out["error_count"] = len(errors)
    return out


def print_table(summary: dict[str, Any]) -> None:
    head = (f"{'level':7} {'n':>5} {'<=1s':>6} {'<=2s':>6} {'<=3s':>6} {'bias':>7} "
            f"{'maxbias':>7} {'med s':>7} {'max s':>6} {'wall s':>7} {'t/L0':>6}")
    print(head)
    for lvl, s in summary["levels"].items():
        print(f"{lvl:7} {s['n']:>5} {s['within_1sigma']:>6.3f} {s['within_2sigma']:>6.3f} "
              f"{s['within_3sigma']:>6.3f} {s['mean_abs_bias']:>7.4f} {s['max_abs_bias']:>7.4f} "
              f"{s['median_sigma']:>7.4f} {s['max_sigma']:>6.3f} {s['mean_wall_s']:>7.2f} "
              f"{s['time_overhead_vs_L0']:>6.2f}")
    print("\nwithin 3 sigma / mean |bias| by device:")
    devs = list(next(iter(summary["by_device"].values())))
    print(f"{'device':18}" + "".join(f"{lvl:>16}" for lvl in summary["by_device"]))
    for d in devs:
        cells = []
        for lvl in summary["by_device"]:
            s = summary["by_device"][lvl].get(d, {"n": 0})
            cells.append(f"{s['within_3sigma']:.2f}/{s['mean_abs_bias']:.3f}" if s["n"] else "-")
        print(f"{d:18}" + "".join(f"{c:>16}" for c in cells))
    print("\nwithin 3 sigma / mean |bias| by two-qubit gate count:")
    for lvl, by in summary["by_depth"].items():
        print(f"{lvl:7} " + "  ".join(
            f"{k}: {s['within_3sigma']:.2f}/{s['mean_abs_bias']:.3f} (n={s['n']})"
            for k, s in by.items() if s["n"]))
    if summary["error_count"]:
        print(f"\n{summary['error_count']} runs failed; first: {summary['errors'][:3]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2 devices, 6 circuits, 1 seed")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None,
                    help=f"results file (default {RESULTS.relative_to(ROOT)}; with --quick a "
                         "file in the temp directory, so a quick run never replaces the baseline)")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--resummarise", type=Path, default=None, metavar="JSON",
                    help="re-derive and re-summarise the rows of a results file (no runs)")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.out is None:
        args.out = (Path(tempfile.gettempdir()) / "mitigation-quick.json" if args.quick
                    else RESULTS)
    if args.resummarise is not None:
        old = _unstrict(json.loads(args.resummarise.read_text()))
        old["rows"] = derive(old["rows"])
        old["summary"] = summarise(old["rows"])
        print_table(old["summary"])
        write_results(args.out, old)
        print(f"wrote {args.out}")
        return 0
    devices = QUICK_DEVICES if args.quick else list(DEVICES)
    seeds = list(range(1, 1 + (args.seeds or (1 if args.quick else 3))))
    circs = circuits(args.quick)
    tasks = []
    for d in devices:
        width = _backend(d).num_qubits
        for c in circs:
            if c.num_qubits <= width:
                tasks.append((d, c))
    print(f"{len(devices)} devices x {len(circs)} circuits ({len(tasks)} fitting pairs) x "
          f"{len(seeds)} seeds x {len(_levels())} levels, {SHOTS} shots; "
          f"{args.workers} workers", file=sys.stderr)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futs = {pool.submit(run_task, d, c, seeds): (d, c.name) for d, c in tasks}
        for i, fut in enumerate(as_completed(futs), 1):
            d, name = futs[fut]
            try:
                got = fut.result()
            except Exception as exc:
                got = [{"device": d, "circuit": name, "seed": 0, "level": "all",
                        "wall_s": 0.0, "error": f"{type(exc).__name__}: {exc}"[:300]}]
            rows.extend(got)
            print(f"[{i}/{len(tasks)}] {d} {name} {time.perf_counter() - start:.0f}s",
                  file=sys.stderr, flush=True)
    total = time.perf_counter() - start
    rows = derive(rows)
    summary = summarise(rows)
    print_table(summary)
    print(f"\ntotal wall time {total:.0f} s", flush=True)
    import qiskit
    import qiskit_aer
    import qiskit_ibm_runtime

    doc = {
        "benchmark": "benchmarks/mitigation/levels.py" + (" --quick" if args.quick else ""),
        "issue": 15,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "qiskit": qiskit.__version__, "qiskit_aer": qiskit_aer.__version__,
                    "qiskit_ibm_runtime": qiskit_ibm_runtime.__version__},
        "api": "qiskit_ibm_runtime.executor_estimator.Estimator(mode=<fake backend>)",
        "shots": SHOTS, "seeds": seeds,
        "devices": {d: DEVICES[d] for d in devices},
        "circuits": [{"name": c.name, "qubits": c.num_qubits} for c in circs],
        "observables": ["Z0Z1", "Zall (parity of all qubits)", "Z0"],
        "levels": {"L0": "resilience_level=0", "L1": "resilience_level=1 (TREX)",
                   "L1+": "L1 + twirling.enable_gates + dynamical_decoupling XX",
                   "L2": "resilience_level=2 (TREX + gate twirling + ZNE gate folding)",
                   "L2lin+sys": "L2's linear extrapolation; sigma=sqrt(max(std_lin, stds@nf1)^2 "
                                "+ (|lin-exp|/2)^2 + floor^2); values clipped to [-1, 1]",
                   "L2+sys": f"L2 values clipped to [-1, 1]; sigma=sqrt(max(stds, stds@nf1)^2 "
                             f"+ spread^2 + {SYS_FLOOR}^2), spread = max |extrapolator@0 - evs|"},
        "total_wall_s": round(total, 1),
        "summary": summary,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_results(args.out, doc)
    print(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
