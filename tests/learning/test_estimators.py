"""Robust estimators: forgetting, weighted median, the two-factor time fit, success scale."""

from __future__ import annotations

import math

import pytest

from qbackbone.core.learning.estimators import (
    TimeSample,
    clamp,
    decay_weight,
    fit_time,
    success_scale,
    weighted_median,
)


def test_decay_and_median_and_clamp() -> None:
    assert decay_weight(3600.0, 3600.0) == 0.5 and decay_weight(-5.0, 10.0) == 1.0
    assert weighted_median([1.0, 2.0, 100.0], [1.0, 1.0, 1.0]) == 2.0
    assert weighted_median([1.0, 2.0, 100.0], [0.1, 0.1, 5.0]) == 100.0
    with pytest.raises(ValueError):
        weighted_median([1.0], [0.0])
    assert clamp(10.0, 4.0) == 4.0 and clamp(0.1, 4.0) == 0.25 and clamp(2.0, 4.0) == 2.0


def test_two_factors_are_told_apart_when_shots_vary_and_an_outlier_is_ignored() -> None:
    samples = [TimeSample(1.0, s, 3.0 * 1.0 + 2.0 * s, 1.0) for s in (0.5, 1.0, 2.0, 4.0, 8.0)]
    samples.append(TimeSample(1.0, 1.0, 500.0, 1.0))  # one fragment stuck for minutes
    fit = fit_time(samples)
    assert fit.method == "least squares"
    assert fit.setup_factor == pytest.approx(3.0) and fit.shot_factor == pytest.approx(2.0)


def test_one_ratio_when_the_parts_move_together() -> None:
    samples = [TimeSample(1.0, 2.0, 6.0, 1.0), TimeSample(2.0, 4.0, 12.0, 1.0)]
    fit = fit_time(samples)
    assert fit.method == "ratio" and fit.setup_factor == fit.shot_factor == pytest.approx(2.0)
    with pytest.raises(ValueError):
        fit_time([])


def test_success_scale_is_the_ratio_of_error_exponents() -> None:
    assert success_scale(0.8, 0.64) == pytest.approx(2.0)
    assert success_scale(0.9, 0.9) == pytest.approx(1.0)
    assert success_scale(0.999, 0.5) is None  # too close to 1 to tell
    assert success_scale(0.5, 1.0) == pytest.approx(math.log(0.999) / math.log(0.5))
