"""Circuit families the mitigation benchmarks share (levels.py, pipeline.py)."""

from __future__ import annotations

import random
from typing import Any

import numpy as np


def _ghz(n: int) -> Any:
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n, name=f"ghz_n{n}")
    qc.h(0)
    for i in range(n - 1):
        qc.cx(i, i + 1)
    return qc


def _clifford_t(n: int, layers: int, seed: int) -> Any:
    from qiskit import QuantumCircuit

    rng = random.Random(seed)
    qc = QuantumCircuit(n, name=f"cliffT_n{n}_l{layers}")
    for _ in range(layers):
        for q in range(n):
            getattr(qc, rng.choice(["h", "s", "t", "x", "sdg", "tdg"]))(q)
        start = rng.randint(0, 1)
        for q in range(start, n - 1, 2):
            qc.cx(q, q + 1)
    return qc


def _qaoa_ring(n: int, p: int) -> Any:
    from qiskit import QuantumCircuit

    qc = QuantumCircuit(n, name=f"qaoa_ring_n{n}_p{p}")
    qc.h(range(n))
    for layer in range(p):
        gamma, beta = 0.4 + 0.2 * layer, 0.7 - 0.15 * layer
        for i in range(n):
            qc.rzz(2 * gamma, i, (i + 1) % n)
        qc.rx(2 * beta, range(n))
    return qc


def _hea(n: int, reps: int, seed: int) -> Any:
    from qiskit import QuantumCircuit

    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(n, name=f"hea_n{n}_r{reps}")
    for _ in range(reps):
        for q in range(n):
            qc.ry(float(rng.uniform(0, np.pi)), q)
            qc.rz(float(rng.uniform(0, np.pi)), q)
        for q in range(n - 1):
            qc.cx(q, q + 1)
    for q in range(n):
        qc.ry(float(rng.uniform(0, np.pi)), q)
    return qc
