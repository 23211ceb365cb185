"""Forecasting methods: seasonal-naive and Holt-Winters (statsmodels), one interface.

Every method fits on a history and returns point forecasts for steps 1..horizon with a
standard deviation per step (for the prediction interval) and one-step-ahead forecasts over
a continuation it is not refitted on (rolling origin, for the one-step MASE).

Interval widths: seasonal-naive, the sd of its in-sample seasonal errors times
sqrt(ceil(k / season)); Holt-Winters, the in-sample residual sd times
sqrt(1 + (k - 1) alpha^2) (the level's share of the ETS(A,N,A) variance; conservative
enough at these horizons). Both assume roughly normal errors.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Forecast:
    """Point forecasts and their standard deviations, steps 1..horizon."""

    values: np.ndarray
    sd: np.ndarray


class Method(Protocol):
    """A forecasting method."""

    @property
    def name(self) -> str:
        """The method's name in results."""
        ...

    def forecast(self, history: np.ndarray, horizon: int) -> Forecast:
        """Fit on ``history`` and forecast ``horizon`` steps."""
        ...

    def one_step(self, history: np.ndarray, future: np.ndarray) -> np.ndarray:
        """Forecasts of future[k] from history + future[:k], fitted on ``history`` only."""
        ...


@dataclass(frozen=True)
class SeasonalNaive:
    """y(t + k) = y(t + k - season * ceil(k / season))."""

    season: int
    name: str = "seasonalNaive"

    def forecast(self, history: np.ndarray, horizon: int) -> Forecast:
        s = self.season
        k = np.arange(1, horizon + 1)
        values = history[len(history) - s + (k - 1) % s]
        errors = history[s:] - history[:-s]
        sd = float(errors.std()) if len(errors) > 1 else 0.0
        return Forecast(values, sd * np.sqrt(np.ceil(k / s)))

    def one_step(self, history: np.ndarray, future: np.ndarray) -> np.ndarray:
        series = np.concatenate([history, future])
        start = len(history)
        return series[start - self.season:start - self.season + len(future)]


@dataclass
class HoltWinters:
    """Additive Holt-Winters (ETS(A,Ad,A)): damped trend, additive seasonality."""

    season: int
    name: str = "holtWinters"

    def _fit(self, history: np.ndarray) -> object:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing  # type: ignore[import-untyped]

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ExponentialSmoothing(history, trend="add", damped_trend=True,
                                         seasonal="add", seasonal_periods=self.season,
                                         initialization_method="estimated")
            return model.fit()

    def forecast(self, history: np.ndarray, horizon: int) -> Forecast:
        with warnings.catch_warnings():  # statsmodels' information criteria on a perfect fit
            warnings.simplefilter("ignore")
            return self._forecast(history, horizon)

    def _forecast(self, history: np.ndarray, horizon: int) -> Forecast:
        fitted = self._fit(history)
        values = np.asarray(fitted.forecast(horizon))  # type: ignore[attr-defined]
        resid = np.asarray(fitted.resid)  # type: ignore[attr-defined]
        alpha = float(fitted.params["smoothing_level"])  # type: ignore[attr-defined]
        sd = float(resid.std())
        k = np.arange(1, horizon + 1)
        return Forecast(values, sd * np.sqrt(1 + (k - 1) * alpha * alpha))

    def one_step(self, history: np.ndarray, future: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self._one_step(history, future)

    def _one_step(self, history: np.ndarray, future: np.ndarray) -> np.ndarray:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        fitted = self._fit(history)
        params = dict(fitted.params)  # type: ignore[attr-defined]
        series = np.concatenate([history, future])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ExponentialSmoothing(series, trend="add", damped_trend=True,
                                         seasonal="add", seasonal_periods=self.season,
                                         initialization_method="known",
                                         initial_level=params["initial_level"],
                                         initial_trend=params["initial_trend"],
                                         initial_seasonal=params["initial_seasons"])
            rerun = model.fit(smoothing_level=params["smoothing_level"],
                              smoothing_trend=params["smoothing_trend"],
                              smoothing_seasonal=params["smoothing_seasonal"],
                              damping_trend=params["damping_trend"], optimized=False)
        return np.asarray(rerun.fittedvalues)[len(history):]


def mase_scale(history: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal-naive forecast (MASE's denominator)."""
    errors = np.abs(history[season:] - history[:-season])
    scale = float(errors.mean()) if len(errors) else 0.0
    return scale if scale > 0 and math.isfinite(scale) else 1.0
