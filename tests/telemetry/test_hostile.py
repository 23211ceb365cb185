"""Hostile telemetry and detect/forecast specs: a clean ProblemError or a Failed status with a
known reason, never a crash or InternalError."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.optimize.problem import ProblemError
from qbackbone.core.pipeline import run_job
from qbackbone.core.telemetry.csvinput import read_csv

CELLS = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr),
                  st.integers(-10**30, 10**30).map(str), st.sampled_from(
                      ["", " ", "nan", "-inf", "1e999", "0x10", "1_000", "١٢", "\x00", '"',
                       '"1,2"', "1" * 80, "\ufeff1", "NaN", "1e-400", "+.5"]),
                  st.text(max_size=6))
ROWS = st.lists(st.lists(CELLS, min_size=1, max_size=5), min_size=0, max_size=12)
HEADER = st.lists(st.sampled_from(["time", "anomaly", "a", "b", "a", "", "c" * 300, "x y"]),
                  min_size=0, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=HEADER, rows=ROWS, sep=st.sampled_from([",", ";", "\n", "\r\n"]))
def test_read_csv_accepts_or_refuses_cleanly(header: list[str], rows: list[list[str]],
                                             sep: str) -> None:
    text = "\n".join([",".join(header)] + [sep.join(r) for r in rows])
    try:
        tel = read_csv(text, 60)
    except ProblemError as err:
        assert str(err)
        return
    assert tel.link_values.ndim == 2 and np.all(np.isfinite(tel.link_values))
    assert tel.link_values.shape[0] >= 4 and tel.links


KNOWN = {"InvalidProblem", "InputTooLarge", "InvalidShots", "NoEligibleQPU",
         "DeadlineInfeasible", "VerificationFailed", "ExecutionFailed"}


def _series(draw: st.DrawFn) -> str:
    steps = draw(st.integers(0, 120))
    cols = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["seasonal", "constant", "zeros", "negative", "spiky"]))
    t = np.arange(steps)[:, None]
    values = {"seasonal": 1 + np.sin(2 * np.pi * t / 24) + 0 * np.arange(cols),
              "constant": np.full((steps, cols), 5.0), "zeros": np.zeros((steps, cols)),
              "negative": -1 - np.cos(t / 3.0) + 0 * np.arange(cols),
              "spiky": np.where(t % 7 == 0, 1e12, 1e-12) + 0 * np.arange(cols)}[kind]
    labels = draw(st.booleans())
    head = ",".join(["time"] + [f"s{k}" for k in range(cols)] + (["anomaly"] if labels else []))
    lines = [",".join([str(k)] + [repr(float(v)) for v in row]
                      + ([str(int(k % 11 == 0))] if labels else []))
             for k, row in enumerate(values)]
    return "\n".join([head, *lines])


@st.composite
def jobs(draw: st.DrawFn) -> dict[str, Any]:
    telemetry = {"csv": _series(draw)}
    if draw(st.booleans()):
        spec = {"anomalyDetection": {
            "telemetry": telemetry, "window": draw(st.integers(2, 12)),
            "qubits": draw(st.integers(1, 12)), "trainFraction": draw(st.floats(0.2, 0.8)),
            "model": draw(st.sampled_from(["Auto", "RbfSvm", "IsolationForest"]))}}
    else:
        spec = {"forecast": {
            "telemetry": telemetry, "horizon": draw(st.integers(1, 30)),
            "season": draw(st.integers(2, 40)), "history": draw(st.integers(8, 200)),
            "method": draw(st.sampled_from(["Auto", "SeasonalNaive", "HoltWinters"])),
            "target": draw(st.sampled_from([None, "s0", "nope"]))}}
    return {"metadata": {"name": "h"}, "spec": {"execution": {"mode": "Classical"},
                                                "problem": spec}}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=jobs())
def test_hostile_jobs_end_in_a_clean_status(body: dict[str, Any]) -> None:
    status = run_job(QuantumJob.model_validate(body), [], {}, seed=1)
    if status.phase == "Failed":
        reason = next(c.reason for c in status.conditions if c.type == "Failed")
        assert reason in KNOWN, status.conditions
    else:
        assert status.phase == "Succeeded" and status.result is not None
        assert status.result.solution is not None
