"""A calibrated residual model for systematicError, checked leave-one-device-out (issue 15).

Reads benchmarks/results/mitigation-baseline.json (written by levels.py) and, per mitigation
level, models the bias left after mitigation as

    systematicError = c * (1 - F) * max(|value|, 0.1),
    F = (1 - e2q)^twoq * (1 - e1q)^(n * depth) * (1 - ero)^n

with the device's median two-qubit, one-qubit and readout errors from its calibration, twoq the
transpiled circuit's two-qubit gate count, n its qubits. c is fitted on all devices but one
(a quantile Q of |bias| / ((1 - F) max(|value|, 0.1)), Q = 0.5 and 0.7) and the coverage of
|value - exact| <= k * sqrt(std^2 + systematicError^2) is counted on the held-out device.

    .venv/bin/python benchmarks/mitigation/residual_model.py [results.json]
"""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results" / "mitigation-baseline.json"


def device_errors(name: str) -> tuple[float, float, float]:
    """Median 2q, 1q (sx) and readout error of a fake device."""
    from qiskit_ibm_runtime import fake_provider

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target = getattr(fake_provider, name)().target

    def med(op: str) -> float:
        if op not in target.operation_names:
            return 0.0
        errs = [p.error for p in target[op].values() if p is not None and p.error is not None]
        return float(median(errs)) if errs else 0.0

    two = max(med(g) for g in ("cx", "cz", "ecr"))
    return two, med("sx"), med("measure")


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else RESULTS
    doc = json.loads(path.read_text())
    rows: list[dict[str, Any]] = [
        {k: (float(v) if k in ("value", "std", "systematic") else v) for k, v in r.items()}
        for r in doc["rows"] if "value" in r]
    errs = {d: device_errors(d) for d in dict.fromkeys(r["device"] for r in rows)}

    def infidelity(r: dict[str, Any]) -> float:
        e2, e1, ero = errs[r["device"]]
        f = ((1 - e2) ** r["twoq"] * (1 - e1) ** (r["qubits"] * r["depth"])
             * (1 - ero) ** r["qubits"])
        # depolarizing noise shrinks a value towards 0: the bias scales with its size
        return max((1 - f) * max(abs(r["value"]), 0.1), 1e-6)

    out: dict[str, Any] = {}
    l1_sigma: dict[float, dict[tuple[Any, ...], float]] = {}

    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        return (r["device"], r["circuit"], r["seed"], r["observable"])
    print(f"{'level@Q':10} {'c (all)':>8} {'held-out <=1s':>13} {'<=2s':>6} {'<=3s':>6} "
          f"{'med sigma':>9} {'sigma<=0.08':>11}")
    for q, level in [(q, lv) for q in (0.5, 0.7)
                     for lv in ("L0", "L1", "L1+", "L2", "L2lin+sys")]:
        sel = [r for r in rows if r["level"] == level]
        if not sel:
            continue
        z_all: list[float] = []
        sig_all: list[float] = []
        for held in errs:
            train = [r for r in sel if r["device"] != held]
            test = [r for r in sel if r["device"] == held]
            if not train or not test:
                continue
            c = float(np.quantile([abs(r["value"] - r["exact"]) / infidelity(r) for r in train],
                                  q))
            for r in test:
                sys_err = min(c * infidelity(r), 1.0)
                sig = math.sqrt(r["std"] ** 2 + r.get("systematic", 0.0) ** 2 + sys_err ** 2)
                z_all.append(abs(r["value"] - r["exact"]) / sig)
                sig_all.append(sig)
        c_all = float(np.quantile([abs(r["value"] - r["exact"]) / infidelity(r) for r in sel],
                                  q))
        z = np.array(z_all)
        s = np.array(sig_all)
        res = {"c": round(c_all, 4), "n": len(z),
               "within_1sigma": round(float(np.mean(z <= 1)), 4),
               "within_2sigma": round(float(np.mean(z <= 2)), 4),
               "within_3sigma": round(float(np.mean(z <= 3)), 4),
               "median_sigma": round(float(np.median(s)), 4),
               "frac_sigma_le_0.08": round(float(np.mean(s <= 0.08)), 4)}
        out[f"{level}@q{q}"] = res
        if level == "L1":
            l1_sigma[q] = {}
            for held in errs:
                train = [r for r in sel if r["device"] != held]
                c = float(np.quantile([abs(r["value"] - r["exact"]) / infidelity(r)
                                       for r in train], q))
                for r in sel:
                    if r["device"] == held:
                        l1_sigma[q][key(r)] = math.hypot(r["std"], min(c * infidelity(r), 1.0))
        print(f"{level + '@' + str(q):10} {c_all:>8.3f} {res['within_1sigma']:>13.3f} "
              f"{res['within_2sigma']:>6.3f} {res['within_3sigma']:>6.3f} "
              f"{res['median_sigma']:>9.4f} {res['frac_sigma_le_0.08']:>11.3f}")
    # the combined rule: L2 (linear fit, spread as systematic) when its sigma is <= 0.08, else
    # L1 with the residual model (held-out c)
    by_level = {lv: {key(r): r for r in rows if r["level"] == lv} for lv in ("L1", "L2lin+sys")}
    for q, l1s in l1_sigma.items():
        zs, sigs, bias, picked_l2 = [], [], [], 0
        for k, r1 in by_level["L1"].items():
            r2 = by_level["L2lin+sys"].get(k)
            s2 = math.hypot(r2["std"], r2.get("systematic", 0.0)) if r2 else math.inf
            if r2 is not None and s2 <= 0.08:
                r, sig = r2, s2
                picked_l2 += 1
            else:
                r, sig = r1, l1s[k]
            zs.append(abs(r["value"] - r["exact"]) / sig)
            sigs.append(sig)
            bias.append(abs(r["value"] - r["exact"]))
        z, sg = np.array(zs), np.array(sigs)
        res = {"n": len(z), "picked_L2": picked_l2,
               "within_1sigma": round(float(np.mean(z <= 1)), 4),
               "within_2sigma": round(float(np.mean(z <= 2)), 4),
               "within_3sigma": round(float(np.mean(z <= 3)), 4),
               "mean_abs_bias": round(float(np.mean(bias)), 4),
               "median_sigma": round(float(np.median(sg)), 4),
               "frac_sigma_le_0.08": round(float(np.mean(sg <= 0.08)), 4)}
        out[f"L2lin-else-L1model@q{q}"] = res
        print(f"combined L2lin(sigma<=0.08) else L1+model@{q}: {res}")
    print("device median errors (2q, 1q, readout):",
          {d: tuple(round(x, 4) for x in e) for d, e in errs.items()})
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
