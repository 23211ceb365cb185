"""Forecasting methods against exact expectations; the quantum reservoir's readout by hand."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp, Statevector

from qbackbone.core.predict.evaluate import choose, evaluate
from qbackbone.core.predict.methods import HoltWinters, SeasonalNaive, mase_scale
from qbackbone.core.predict.reservoir import QuantumReservoir


def seasonal(steps: int, season: int = 24, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    return (10 + 3 * np.sin(2 * np.pi * t / season) + 0.002 * t
            + noise * np.cumsum(rng.normal(size=steps)) * 0.2 + noise * rng.normal(size=steps))


def test_seasonal_naive_repeats_the_last_season() -> None:
    y = np.arange(48.0)
    f = SeasonalNaive(24).forecast(y, 30)
    assert f.values.tolist() == [float(v) for v in list(range(24, 48)) + list(range(24, 30))]
    assert np.all(f.sd[:24] == f.sd[0]) and f.sd[24] == pytest.approx(f.sd[0] * np.sqrt(2))
    assert SeasonalNaive(24).one_step(y, np.arange(48.0, 52.0)).tolist() == [24, 25, 26, 27]


def test_mase_scale_by_hand() -> None:
    y = np.array([1.0, 2.0, 4.0, 3.0, 5.0])
    assert mase_scale(y, 2) == pytest.approx((3 + 1 + 1) / 3)
    assert mase_scale(np.ones(5), 2) == 1.0  # a flat series: no scale, MASE in raw units


def test_holt_winters_beats_seasonal_naive_on_a_seasonal_series() -> None:
    y = seasonal(24 * 14)
    scores = {e.score.method: e.score for e in evaluate(
        [SeasonalNaive(24), HoltWinters(24)], y, 24, 24, 0.9)}
    assert scores["holtWinters"].mase < 1.0
    assert scores["holtWinters"].mase < scores["seasonalNaive"].mase
    assert scores["holtWinters"].mase_one_step < 1.0
    assert 0.5 <= scores["holtWinters"].coverage <= 1.0


def test_holt_winters_one_step_uses_the_fitted_parameters() -> None:
    y = seasonal(24 * 8)
    hw = HoltWinters(24)
    one = hw.one_step(y[:-5], y[-5:])
    first = hw.forecast(y[:-5], 1).values[0]
    assert one[0] == pytest.approx(first, rel=1e-6)  # the first one-step is the forecast


def test_reservoir_readout_matches_qiskit_statevector() -> None:
    reservoir = QuantumReservoir(24, qubits=3, seed=4)
    lags = np.array([[0.3, -1.2, 2.0]])
    angles = np.pi / 2 * np.tanh(lags[0])
    qc = QuantumCircuit(3)
    for i, a in enumerate(angles):
        qc.ry(float(a), i)
    qc.compose(reservoir.circuit, inplace=True)
    state = Statevector(qc)
    expected = [state.expectation_value(SparsePauliOp(p)).real
                for p in ("IIZ", "IZI", "ZII", "IZZ", "ZZI", "ZIZ")]
    assert np.allclose(reservoir.features(lags)[0], expected, atol=1e-10)


def test_reservoir_forecasts_and_auto_needs_a_margin() -> None:
    y = seasonal(24 * 14)
    evaluated = evaluate([SeasonalNaive(24), HoltWinters(24), QuantumReservoir(24, 4)], y, 24,
                         24, 0.9)
    reservoir = next(e for e in evaluated if e.score.method == "quantumReservoir")
    assert reservoir.score.mase is not None and np.isfinite(reservoir.score.mase)
    chosen, why = choose(evaluated, "quantumReservoir")
    best = min(e.score.mase for e in evaluated if e.score.method != "quantumReservoir")
    if chosen.score.method == "quantumReservoir":
        assert reservoir.score.mase < 0.95 * best and "beats" in why
    else:
        assert chosen.score.mase == best
