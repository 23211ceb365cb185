"""forecast jobs end to end in this process: method and why, intervals, holdout, failures."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.pipeline import run_job
from tests.predict.test_methods import seasonal


def csv_of(y: np.ndarray, name: str = "link") -> str:
    return "time," + name + "\n" + "".join(f"{k},{v:.6f}\n" for k, v in enumerate(y))


def forecast_job(telemetry: dict[str, Any], mode: str = "Auto", **spec: Any) -> QuantumJob:
    return QuantumJob.model_validate({"metadata": {"name": "f"}, "spec": {
        "execution": {"mode": mode},
        "problem": {"forecast": {"telemetry": telemetry, **spec}}}})


def failure(status: Any) -> tuple[str, str]:
    assert status.phase == "Failed"
    cond = next(c for c in status.conditions if c.type == "Failed")
    return cond.reason, cond.message


def test_auto_forecast_reports_every_method_and_beats_seasonal_naive() -> None:
    y = seasonal(24 * 14)
    status = run_job(forecast_job({"csv": csv_of(y)}, horizon=24, season=24, history=336),
                     [], {}, seed=2)
    assert status.phase == "Succeeded", status.conditions
    report = status.result.solution.forecast  # type: ignore[union-attr]
    assert {s.method for s in report.holdout} == {"seasonalNaive", "holtWinters",
                                                  "quantumReservoir"}
    chosen = next(s for s in report.holdout if s.method == report.method)
    assert chosen.mase < 1.0  # beats seasonal-naive's in-sample scale on the holdout
    assert status.result.solution.objective == chosen.mase  # type: ignore[union-attr]
    assert len(report.points) == 24 and report.target == "link"
    assert all(p.lower < p.value < p.upper for p in report.points)
    assert report.why and status.decision.message == report.why  # type: ignore[union-attr]


def test_named_and_classical_methods() -> None:
    y = seasonal(24 * 10)
    status = run_job(forecast_job({"csv": csv_of(y)}, method="SeasonalNaive", history=240),
                     [], {})
    report = status.result.solution.forecast  # type: ignore[union-attr]
    assert report.method == "seasonalNaive"
    assert [p.value for p in report.points] == pytest.approx(list(y[-24:]), abs=1e-6)
    status = run_job(forecast_job({"csv": csv_of(y)}, mode="Classical", history=240), [], {})
    report = status.result.solution.forecast  # type: ignore[union-attr]
    assert "quantumReservoir" not in {s.method for s in report.holdout}
    assert not next(r for r in status.decision.rules  # type: ignore[union-attr]
                    if r.name == "modeAllowsQuantum").passed


def test_hostile_forecasts_fail_with_a_reason() -> None:
    y = seasonal(60)
    reason, message = failure(run_job(forecast_job({"csv": csv_of(y)}), [], {}))
    assert reason == "InvalidProblem" and "at least 73 steps" in message
    reason, message = failure(run_job(forecast_job({"csv": csv_of(seasonal(200))},
                                                   target="nope"), [], {}))
    assert reason == "InvalidProblem" and "'nope'" in message
    reason, _ = failure(run_job(forecast_job({"csv": "link\n1\n2\n-inf\n3\n"}), [], {}))
    assert reason == "InvalidProblem"
    reason, _ = failure(run_job(forecast_job({"csv": csv_of(seasonal(200))}, mode="Classical",
                                             method="QuantumReservoir"), [], {}))
    assert reason == "InvalidProblem"
