"""detect jobs end to end in this process: the path chosen and why, scores, hostile input."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.core.telemetry import csvinput
from qbackbone.core.telemetry import generate as generate_module
from qbackbone.core.telemetry.csvinput import to_csv
from qbackbone.core.telemetry.generate import GeneratorOptions, generate
from tests.conftest import make_qpu
from tests.telemetry.test_generate import ZOO, abilene

IDEAL = build_fleet([make_qpu("ideal", qubits=8)])
ABILENE = (ZOO / "Abilene.graphml").read_text()


def generated(days: int = 6, seed: int = 4) -> dict[str, Any]:
    return {"generated": {"topology": {"format": "graphml", "document": ABILENE,
                                       "nodeAttribute": "label"},
                          "seed": seed, "days": days, "anomalies": 6}}


def detect_job(telemetry: dict[str, Any], mode: str = "Auto", **detect: Any) -> QuantumJob:
    return QuantumJob.model_validate({"metadata": {"name": "d"}, "spec": {
        "execution": {"mode": mode},
        "problem": {"anomalyDetection": {"telemetry": telemetry, **detect}}}})


def rule(status: Any, name: str) -> Any:
    return next(r for r in status.decision.rules if r.name == name)


def test_quantum_kernel_runs_its_fidelity_circuits_and_is_verified() -> None:
    status = run_job(detect_job(generated(), model="QuantumKernel", maxTrainWindows=16,
                                kernelShots=1000), IDEAL, {}, seed=3)
    assert status.phase == "Succeeded", status.conditions
    assert status.decision is not None and status.decision.path == "SingleQPU"
    assert rule(status, "kernelTimeFits").passed
    report = status.result.solution.detection  # type: ignore[union-attr]
    kernel = report.kernel
    n, m = report.train_windows, report.test_windows
    assert n == 16 and kernel.circuits == n * (n - 1) // 2 + m * n
    assert kernel.total_shots == kernel.circuits * 1000 == status.result.shots
    assert kernel.exact_agrees and kernel.exact_max_deviation <= 6 * kernel.shot_noise_sigma
    assert kernel.symmetry_error == 0.0
    assert status.verification.method == "ExactStatevector" and status.verification.passed
    assert report.model == "quantumKernelSvc"
    assert {b.model for b in report.baselines} == {"rbfSvm", "isolationForest"}
    assert status.result.solution.objective == report.scores.f1
    # forced on a small kernel (16 training windows): it ranks well, it need not win
    assert report.scores.f1 >= 0.6 and report.scores.auc >= 0.8
    assert all(w.flagged and w.links for w in report.flagged)
    assert report.injected and report.qubits == 4


def test_auto_records_every_rule_and_reports_baselines() -> None:
    status = run_job(detect_job(generated(days=8), maxTrainWindows=16), IDEAL, {}, seed=1)
    assert status.phase == "Succeeded", status.conditions
    names = [r.name for r in status.decision.rules]  # type: ignore[union-attr]
    assert names[:4] == ["modeAllowsQuantum", "modelAllowsQuantum", "kernelCircuitsAtMost",
                         "kernelSpreadAtLeast"]
    report = status.result.solution.detection  # type: ignore[union-attr]
    assert report.scores.f1 is not None and report.scores.auc is not None
    chosen = report.scores.f1
    assert chosen >= max(b.f1 for b in report.baselines) - 0.05 or report.model not in (
        "rbfSvm", "isolationForest")
    assert status.decision.path in ("SingleQPU", "Classical")


def test_classical_mode_and_too_many_circuits_go_classical() -> None:
    status = run_job(detect_job(generated(), mode="Classical"), IDEAL, {}, seed=1)
    assert status.phase == "Succeeded" and status.decision.path == "Classical"
    assert not rule(status, "modeAllowsQuantum").passed
    assert status.result.solution.detection.model == "rbfSvm"  # type: ignore[union-attr]
    status = run_job(detect_job(generated(), maxKernelCircuits=10), IDEAL, {}, seed=1)
    assert status.decision.path == "Classical"
    assert not rule(status, "kernelCircuitsAtMost").passed
    assert "maxKernelCircuits" in status.decision.message


def test_unlabelled_csv_uses_one_class_models() -> None:
    tel = generate(abilene(), GeneratorOptions(seed=2, days=6, anomalies=4))
    text = to_csv(tel, with_labels=False)
    status = run_job(detect_job({"csv": text}, mode="Classical"), IDEAL, {}, seed=1)
    assert status.phase == "Succeeded", status.conditions
    report = status.result.solution.detection  # type: ignore[union-attr]
    assert report.model == "isolationForest" and report.scores.f1 is None
    assert status.result.solution.objective == pytest.approx(  # type: ignore[union-attr]
        report.scores.flagged / report.test_windows)
    assert all(w.labelled is None for w in report.flagged)


def failed(status: Any) -> tuple[str, str]:
    assert status.phase == "Failed"
    cond = next(c for c in status.conditions if c.type == "Failed")
    return cond.reason, cond.message


def test_hostile_telemetry_fails_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    huge = "a\n" + "1\n" * (csvinput.MAX_CSV_CHARS // 2 + 1)
    assert failed(run_job(detect_job({"csv": huge}), IDEAL, {}))[0] == "InputTooLarge"
    reason, message = failed(run_job(detect_job({"csv": "a\n1\nnan\n1\n1\n"}), IDEAL, {}))
    assert reason == "InvalidProblem" and "finite" in message
    short = "a,b\n" + "".join(f"{k},{k}\n" for k in range(10))
    reason, message = failed(run_job(detect_job({"csv": short}), IDEAL, {}))
    assert reason == "InvalidProblem" and "at least 24" in message
    reason, message = failed(run_job(detect_job({"configMapRef": {"name": "x", "key": "y"}}),
                                     IDEAL, {}))
    assert reason == "InvalidProblem" and "configMapRef" in message
    monkeypatch.setattr(generate_module, "MAX_STEPS", 100)

    def no_work(*_: object) -> None:
        raise AssertionError("demands built before the size check")

    monkeypatch.setattr(generate_module, "build_demands", no_work)
    reason, message = failed(run_job(detect_job(generated()), IDEAL, {}))
    assert reason == "InputTooLarge" and "144 steps, above the limit of 100" in message


def test_manifest_rules() -> None:
    with pytest.raises(ValidationError, match="exactly one of generated"):
        detect_job({"csv": "a\n1", **generated()})
    with pytest.raises(ValidationError, match="exactly one of qubo"):
        QuantumJob.model_validate({"metadata": {"name": "d"}, "spec": {"problem": {
            "anomalyDetection": {"telemetry": {"csv": "a"}},
            "forecast": {"telemetry": {"csv": "a"}}}}})
    with pytest.raises(ValidationError):
        detect_job({"csv": "a"}, qubits=40)
