"""The quantum kernel: feature-map circuits, the exact kernel, fidelity circuits and checks.

Feature map (IQP-style, ``REPS`` layers): H on every qubit, RZ(2 b x_i), then RZZ(2 b^2 x_i
x_{i+1}) along a chain; b is the bandwidth. k(x, y) = |<phi(x)|phi(y)>|^2, estimated on a QPU
as the all-zeros probability of U(x) U(y)^dagger (one fidelity circuit per entry; the
symmetric training block needs n(n-1)/2 of them, the diagonal is 1). The exact kernel comes
from statevectors. Checks: symmetry, the smallest eigenvalue and PSD repair (negative
eigenvalues clipped), concentration (spread of the off-diagonal entries against shot noise),
agreement with the exact kernel. On a noisy QPU, ``diagonal`` k(x, x) circuits (ideally 1)
measure a global depolarizing probability p, and the kernel is rescaled to undo it
(the simplest kernel mitigation: it assumes the noise damps every entry alike).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector
from qiskit.quantum_info import Statevector

REPS = 2
BANDWIDTH = 0.5
FEATURE_MAP = f"iqp(reps={REPS}, bandwidth={BANDWIDTH})"


def feature_map(qubits: int, name: str = "x") -> tuple[QuantumCircuit, ParameterVector]:
    """The parametrised feature-map circuit and its parameters."""
    x = ParameterVector(name, qubits)
    qc = QuantumCircuit(qubits)
    for _ in range(REPS):
        qc.h(range(qubits))
        for i in range(qubits):
            qc.rz(2 * BANDWIDTH * x[i], i)
        for i in range(qubits - 1):
            qc.rzz(2 * BANDWIDTH * BANDWIDTH * x[i] * x[i + 1], i, i + 1)
    return qc, x


def statevectors(points: np.ndarray) -> np.ndarray:
    """points x 2^qubits statevectors of the feature map."""
    qc, x = feature_map(points.shape[1])
    return np.array([Statevector(qc.assign_parameters(dict(zip(x, p, strict=True)))).data
                     for p in points])


def exact_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|<phi(a_i)|phi(b_j)>|^2 from statevectors."""
    sa, sb = statevectors(a), statevectors(b)
    return np.abs(sa.conj() @ sb.T) ** 2


def fidelity_template(qubits: int) -> tuple[QuantumCircuit, ParameterVector, ParameterVector]:
    """U(x) U(y)^dagger with measurements: P(all zeros) = k(x, y)."""
    ux, x = feature_map(qubits, "x")
    uy, y = feature_map(qubits, "y")
    qc = ux.compose(uy.inverse())
    qc.measure_all()
    return qc, x, y


def circuits_per_call(qubits: int) -> int:
    """Kernel circuits per backend call (one fragment pod in a cluster): as many as keep a
    fragment's table of values (2 x qubits numbers per circuit) near 0.5 MB."""
    return max(100, min(2000, 500_000 // (2 * qubits * 22 + 4)))


Runner = Callable[[Sequence[QuantumCircuit], int], list[dict[str, int]]]
"""(circuits, shots) -> counts per circuit; the QPU's executor with the job's seed."""


@dataclass(frozen=True)
class EstimatedKernel:
    """Kernel blocks estimated from fidelity circuits."""

    train: np.ndarray  # n x n, before symmetrisation
    test: np.ndarray  # m x n
    circuits: int
    shots: int
    diagonal: np.ndarray  # measured k(x, x) of the first training points (ideally 1)


def kernel_pairs(n: int, m: int, diagonal: int = 0) -> list[tuple[str, int, int]]:
    """The entries to estimate: training upper triangle, every test x train entry, then
    ``diagonal`` k(x, x) circuits (noise probes)."""
    return ([("train", i, j) for i in range(n) for j in range(i + 1, n)]
            + [("test", i, j) for i in range(m) for j in range(n)]
            + [("diag", i, i) for i in range(min(diagonal, n))])


def pair_rows(train: np.ndarray, test: np.ndarray,
              pairs: Sequence[tuple[str, int, int]]) -> np.ndarray:
    """The template's values for each pair: the left point (x), then the training point (y)."""
    if not pairs:
        return np.zeros((0, 2 * train.shape[1]))
    left = np.array([test[i] if block == "test" else train[i] for block, i, _ in pairs])
    return np.hstack([left, train[[j for _, _, j in pairs]]])


def kernel_from_counts(pairs: Sequence[tuple[str, int, int]],
                       counts: Sequence[dict[str, int]], n: int, m: int, qubits: int,
                       shots: int) -> EstimatedKernel:
    """The kernel blocks from the counts of the pairs' fidelity circuits (in their order):
    each entry is the all-zeros frequency."""
    if len(counts) != len(pairs):
        raise ValueError(f"{len(counts)} counts for {len(pairs)} kernel circuits")
    k_train, k_test = np.eye(n), np.zeros((m, n))
    diag = np.ones(sum(1 for block, _, _ in pairs if block == "diag"))
    zeros = "0" * qubits
    for (block, i, j), got in zip(pairs, counts, strict=True):
        p = got.get(zeros, 0) / max(1, sum(got.values()))
        if block == "train":
            k_train[i, j] = p
            k_train[j, i] = p
        elif block == "test":
            k_test[i, j] = p
        else:
            diag[i] = p
    return EstimatedKernel(k_train, k_test, len(pairs), shots, diag)


def estimate_kernel(train: np.ndarray, test: np.ndarray, compiled: QuantumCircuit,
                    params: tuple[ParameterVector, ParameterVector], run: Runner, shots: int,
                    batch: int = 1000, diagonal: int = 0) -> EstimatedKernel:
    """Fidelity circuits (``compiled``: the template compiled for the QPU) run in batches."""
    pairs = kernel_pairs(len(train), len(test), diagonal)
    order = [*params[0], *params[1]]
    counts: list[dict[str, int]] = []
    for lo in range(0, len(pairs), batch):
        rows = pair_rows(train, test, pairs[lo:lo + batch])
        counts += run([compiled.assign_parameters(dict(zip(order, row, strict=True)))
                       for row in rows], shots)
    return kernel_from_counts(pairs, counts, len(train), len(test), train.shape[1], shots)


def depolarizing_probability(diagonal: np.ndarray, qubits: int) -> float:
    """Global depolarizing p from measured k(x, x): their mean is (1 - p) + p / 2^qubits."""
    mean = float(np.mean(diagonal)) if diagonal.size else 1.0
    return float(np.clip((1.0 - mean) / (1.0 - 2.0 ** -qubits), 0.0, 0.95))


def mitigate(kernel: np.ndarray, p: float, qubits: int) -> np.ndarray:
    """Undo global depolarizing: k = (k_noisy - p / 2^qubits) / (1 - p), clipped to [0, 1]
    (off-diagonal entries only; the diagonal stays 1)."""
    fixed = np.clip((kernel - p * 2.0 ** -qubits) / (1.0 - p), 0.0, 1.0)
    if fixed.shape[0] == fixed.shape[1] and np.allclose(np.diag(kernel), 1.0):
        np.fill_diagonal(fixed, 1.0)
    return fixed


@dataclass(frozen=True)
class KernelCheck:
    """What verification found about a training kernel."""

    symmetry_error: float
    min_eigenvalue: float
    repaired: bool
    off_mean: float
    off_std: float


def check_and_repair(kernel: np.ndarray) -> tuple[np.ndarray, KernelCheck]:
    """Symmetrise, clip negative eigenvalues (PSD repair), and measure concentration."""
    asym = float(np.max(np.abs(kernel - kernel.T))) if kernel.size else 0.0
    sym = (kernel + kernel.T) / 2
    values, vectors = np.linalg.eigh(sym)
    low = float(values.min()) if values.size else 0.0
    repaired = low < -1e-10
    fixed = (vectors * np.maximum(values, 0.0)) @ vectors.T if repaired else sym
    off = sym[~np.eye(len(sym), dtype=bool)]
    return fixed, KernelCheck(asym, low, repaired, float(off.mean()) if off.size else 1.0,
                              float(off.std()) if off.size else 0.0)


def shot_sigma(shots: int) -> float:
    """Largest standard error of an entry estimated from ``shots`` (p = 1/2)."""
    return 0.5 / math.sqrt(shots)
