"""The quantum kernel against independent exact computations, and its checks."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.quantum_info import Operator, Statevector
from qiskit_machine_learning.kernels import FidelityQuantumKernel

from qbackbone.core.detect.kernel import (
    check_and_repair,
    estimate_kernel,
    exact_kernel,
    feature_map,
    fidelity_template,
    kernel_pairs,
    shot_sigma,
)
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import make_qpu

RNG = np.random.default_rng(3)
POINTS = RNG.uniform(-2, 2, (6, 3))


def test_exact_kernel_matches_qiskit_machine_learning() -> None:
    qc, _ = feature_map(3)
    reference = FidelityQuantumKernel(feature_map=qc).evaluate(POINTS)
    assert np.allclose(exact_kernel(POINTS, POINTS), reference, atol=1e-9)


def test_exact_kernel_from_the_operator_by_hand() -> None:
    qc, x = feature_map(3)
    a, b = POINTS[0], POINTS[1]
    ua = Operator(qc.assign_parameters(dict(zip(x, a, strict=True)))).data
    ub = Operator(qc.assign_parameters(dict(zip(x, b, strict=True)))).data
    zero = np.zeros(8)
    zero[0] = 1
    expected = abs(np.vdot(ua @ zero, ub @ zero)) ** 2
    assert exact_kernel(a[None], b[None])[0, 0] == pytest.approx(expected, abs=1e-12)
    # the origin maps to |0>: H twice with nothing between
    assert exact_kernel(np.zeros((1, 3)), np.zeros((1, 3)))[0, 0] == pytest.approx(1.0)
    assert np.allclose(Statevector(qc.assign_parameters(dict.fromkeys(x, 0.0))).data, zero)


def test_fidelity_circuit_all_zeros_probability_is_the_kernel() -> None:
    qc, x, y = fidelity_template(3)
    bound = qc.remove_final_measurements(inplace=False).assign_parameters(
        dict(zip(x, POINTS[2], strict=True)) | dict(zip(y, POINTS[4], strict=True)))
    p0 = abs(Statevector(bound).data[0]) ** 2
    assert p0 == pytest.approx(exact_kernel(POINTS[2:3], POINTS[4:5])[0, 0], abs=1e-12)


def test_estimate_with_exact_counts_reproduces_the_kernel() -> None:
    train, test = POINTS[:4], POINTS[4:]
    shots = 1_000_000
    qc, x, y = fidelity_template(3)

    def exact_runner(circuits: list, s: int) -> list[dict[str, int]]:
        out = []
        for c in circuits:
            p0 = abs(Statevector(c.remove_final_measurements(inplace=False)).data[0]) ** 2
            out.append({"000": round(p0 * s), "111": s - round(p0 * s)})
        return out

    est = estimate_kernel(train, test, qc, (x, y), exact_runner, shots, batch=3)
    assert est.circuits == len(kernel_pairs(4, 2)) == 6 + 8
    assert np.allclose(est.train, exact_kernel(train, train), atol=1e-6)
    assert np.allclose(est.test, exact_kernel(test, train), atol=1e-6)


def test_sampled_on_the_ideal_simulator_within_shot_noise() -> None:
    qpu = build_fleet([make_qpu("ideal", qubits=8)])[0]
    qc, x, y = fidelity_template(3)
    compiled = qpu.transpile([qc])[0]
    shots = 4000
    est = estimate_kernel(POINTS[:4], POINTS[4:], compiled, (x, y),
                          lambda c, s: qpu.executor.run(c, s, 11), shots)
    deviation = max(np.abs(est.train - exact_kernel(POINTS[:4], POINTS[:4])).max(),
                    np.abs(est.test - exact_kernel(POINTS[4:], POINTS[:4])).max())
    assert 0 < deviation <= 5 * shot_sigma(shots)


def test_psd_repair_and_symmetry() -> None:
    bad = np.array([[1.0, 0.9, 0.1], [0.95, 1.0, 0.9], [0.1, 0.9, 1.0]])
    fixed, check = check_and_repair(bad)
    assert check.symmetry_error == pytest.approx(0.05)
    assert check.min_eigenvalue < 0 and check.repaired
    assert np.allclose(fixed, fixed.T) and np.linalg.eigvalsh(fixed).min() >= -1e-12
    good = exact_kernel(POINTS, POINTS)
    same, check = check_and_repair(good)
    assert not check.repaired and np.allclose(same, good)
    off = good[~np.eye(6, dtype=bool)]
    assert check.off_mean == pytest.approx(off.mean()) and check.off_std == pytest.approx(off.std())
