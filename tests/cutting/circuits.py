"""Small test circuits with known cut structure, and exact reference values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector


def blocks(
    spans: Sequence[tuple[int, int]], n: int, seed: int = 0, layers: int = 2
) -> QuantumCircuit:
    """Entangling blocks on qubit ranges [lo, hi) applied in order; overlaps are wires to cut."""
    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(n)
    for lo, hi in spans:
        for _ in range(layers):
            for q in range(lo, hi):
                qc.ry(rng.uniform(0, np.pi), q)
                qc.rz(rng.uniform(0, np.pi), q)
            for q in range(lo, hi - 1):
                qc.cx(q, q + 1)
    return qc


def exact(qc: QuantumCircuit, observables: Sequence[str]) -> list[float]:
    """Exact expectation values by statevector."""
    sv = Statevector(qc)
    return [float(sv.expectation_value(SparsePauliOp(o)).real) for o in observables]


def assert_close(values: Sequence[float], errors: Sequence[float], reference: Sequence[float],
                 max_se: float, z: float = 4.0) -> None:
    """Every value within ``z`` standard errors of exact, and errors small and positive."""
    for v, e, r in zip(values, errors, reference, strict=True):
        assert 0 < e < max_se, (v, e, r)
        assert abs(v - r) < z * e, f"value {v:.4f} vs exact {r:.4f}, SE {e:.4f}"
