"""Kernel mitigation on a noisy QPU: the depolarizing correction exactly, and a noisy job."""

from __future__ import annotations

import numpy as np
import pytest

from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.detect.kernel import depolarizing_probability, exact_kernel, mitigate
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.core.telemetry.csvinput import to_csv
from qbackbone.core.telemetry.generate import GeneratorOptions, generate
from tests.conftest import make_qpu
from tests.telemetry.test_generate import abilene


def test_global_depolarizing_is_undone_exactly() -> None:
    points = np.random.default_rng(0).uniform(-2, 2, (5, 3))
    k = exact_kernel(points, points)
    p = 0.23
    noisy = (1 - p) * k + p / 8
    measured_diagonal = np.diag(noisy)
    assert depolarizing_probability(measured_diagonal, 3) == pytest.approx(p)
    off = ~np.eye(5, dtype=bool)
    assert np.allclose(mitigate(noisy, p, 3)[off], k[off])
    assert depolarizing_probability(np.ones(4), 3) == 0.0


@pytest.mark.slow
def test_noisy_qpu_kernel_is_mitigated_and_verified() -> None:
    fleet = build_fleet([make_qpu("torino", provider="fake", backend="fake_torino", qubits=7)])
    tel = generate(abilene(), GeneratorOptions(seed=6, days=3, anomalies=3))
    job = QuantumJob.model_validate({"metadata": {"name": "n"}, "spec": {
        "deadline": 600, "problem": {"anomalyDetection": {
            "telemetry": {"csv": to_csv(tel)}, "model": "QuantumKernel",
            "maxTrainWindows": 8, "kernelShots": 500, "window": 6}}}})
    status = run_job(job, fleet, {}, seed=2)
    assert status.phase == "Succeeded", status.conditions
    kernel = status.result.solution.detection.kernel  # type: ignore[union-attr]
    assert kernel.backend == "torino" and kernel.mitigation == "globalDepolarizing"
    assert 0 < kernel.depolarizing < 0.5
    n, m = 8, status.result.solution.detection.test_windows  # type: ignore[union-attr]
    assert kernel.circuits == n * (n - 1) // 2 + m * n + 8  # + the k(x, x) probes
    assert status.verification.noisy and status.verification.passed  # type: ignore[union-attr]
    assert kernel.exact_max_deviation <= 6 * kernel.shot_noise_sigma + 0.15
