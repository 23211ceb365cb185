"""Calibrate the replay's noise model on a handful of real simulator runs (issue 20).

A few small circuits run on an offline fake device through the project's own fleet (Aer with
the device's calibrated noise, the executor ``qbackbone run`` uses). For each, the estimate
the QIP reads (``estimate_success_probability`` of the transpiled circuit) is compared with
the success probability the measured counts imply against the exact distribution
(``core/learning/implied.py``): k = ln(p_implied) / ln(p_estimated) is how many times the
estimate's error rates the (simulated) device delivered. The replay uses the median k as the
scale of an honest QPU and the spread of k as the scatter of a job's measured deviation.

    .venv/bin/python benchmarks/qip/calibrate.py      # prints the figures (about 15 s)
"""

from __future__ import annotations

import json
import math
import statistics
import time
from typing import Any

from qiskit import QuantumCircuit

from qbackbone.core.learning.implied import from_counts
from qbackbone.core.qpus.fidelity import estimate_success_probability
from qbackbone.core.qpus.fleet import build_fleet, default_fleet_nodes
from qbackbone.core.verify.exact import exact_distribution

DEVICE = "nairobi"  # fake_nairobi: 7 qubits, the default fleet's smallest noisy QPU
SHOTS = 4000


def circuits() -> list[QuantumCircuit]:
    """GHZ states of 3 to 5 qubits and a 4-qubit ring of CZ layers: peaked distributions."""
    out = []
    for n in (3, 4, 5):
        c = QuantumCircuit(n, n, name=f"ghz{n}")
        c.h(0)
        for q in range(n - 1):
            c.cx(q, q + 1)
        c.measure(range(n), range(n))
        out.append(c)
    ring = QuantumCircuit(4, 4, name="ring4")
    ring.h(0)
    for _ in range(3):
        for q in range(3):
            ring.cx(q, q + 1)
        for q in reversed(range(3)):
            ring.cx(q, q + 1)
    ring.measure(range(4), range(4))
    out.append(ring)
    return out


def calibrate(seed: int = 11) -> dict[str, Any]:
    """Run the circuits once each; the per-circuit figures and the median and spread of k."""
    node = next(n for n in default_fleet_nodes() if n.metadata.name == DEVICE)
    qpu = build_fleet([node])[0]
    cal = qpu.descriptor.calibration
    assert cal is not None
    rows = []
    for c in circuits():
        started = time.perf_counter()
        compiled = qpu.transpile([c])[0]
        estimated = estimate_success_probability(compiled, cal)
        counts = qpu.executor.run([compiled], SHOTS, seed)[0]
        implied = from_counts(counts, exact_distribution(c))
        k = None
        if implied is not None and 0 < estimated < 0.995:
            k = math.log(min(max(implied, 0.01), 0.999)) / math.log(estimated)
        rows.append({"circuit": c.name, "qubits": c.num_qubits, "shots": SHOTS,
                     "estimatedSuccess": round(estimated, 4),
                     "impliedSuccess": None if implied is None else round(implied, 4),
                     "k": None if k is None else round(k, 3),
                     "seconds": round(time.perf_counter() - started, 2)})
    ks = [r["k"] for r in rows if r["k"] is not None]
    logs = [math.log(k) for k in ks]
    return {"device": f"{DEVICE} (fake_nairobi, Aer with its calibrated noise)", "runs": rows,
            "kMedian": round(statistics.median(ks), 3),
            "kLogSpread": round(statistics.pstdev(logs), 3) if len(logs) > 1 else 0.0}


if __name__ == "__main__":
    print(json.dumps(calibrate(), indent=2))
