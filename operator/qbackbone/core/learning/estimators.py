"""Robust weighted estimators: exponential forgetting, weighted medians, and a two-factor
fit of the time model (setup, per shot) with a ratio as fallback."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def decay_weight(age_seconds: float, half_life_seconds: float) -> float:
    """0.5 ** (age / half-life): a job one half-life old counts half."""
    if half_life_seconds <= 0:
        return 1.0
    return 0.5 ** (max(age_seconds, 0.0) / half_life_seconds)


def weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """The value where the cumulative weight reaches half (ValueError when empty)."""
    pairs = sorted((v, w) for v, w in zip(values, weights, strict=True) if w > 0)
    if not pairs:
        raise ValueError("no weighted values")
    half = sum(w for _, w in pairs) / 2.0
    cumulative = 0.0
    for value, weight in pairs:
        cumulative += weight
        if cumulative >= half:
            return value
    return pairs[-1][0]


def clamp(value: float, bound: float) -> float:
    """``value`` within [1/bound, bound]."""
    return min(max(value, 1.0 / bound), bound)


@dataclass(frozen=True)
class TimeSample:
    """One fragment: the nominal model's parts and the time it really took."""

    setup: float  # nominal setup (queue wait and hand-off land here too)
    shots: float  # nominal shots part: shots x shot time
    actual: float
    weight: float


@dataclass(frozen=True)
class TimeFit:
    """Factors on the nominal setup and per-shot time, and how they were found."""

    setup_factor: float
    shot_factor: float
    method: str  # "least squares" | "ratio"


def fit_time(samples: Sequence[TimeSample]) -> TimeFit:
    """Weighted least squares of actual = a * setup + b * shots, outliers (beyond 3 weighted
    median absolute deviations of the ratio) left out; when the two parts cannot be told
    apart (they move together) or a factor comes out non-positive, one ratio for both."""
    usable = [s for s in samples if s.setup + s.shots > 0 and s.actual >= 0 and s.weight > 0]
    if not usable:
        raise ValueError("no time samples")
    ratios = [s.actual / (s.setup + s.shots) for s in usable]
    weights = [s.weight for s in usable]
    median = weighted_median(ratios, weights)
    spread = weighted_median([abs(r - median) for r in ratios], weights)
    if spread > 0:
        kept = [s for s, r in zip(usable, ratios, strict=True) if abs(r - median) <= 3 * spread]
    else:
        kept = usable
    ratio = TimeFit(median, median, "ratio")
    saa = sum(s.weight * s.setup * s.setup for s in kept)
    sbb = sum(s.weight * s.shots * s.shots for s in kept)
    sab = sum(s.weight * s.setup * s.shots for s in kept)
    say = sum(s.weight * s.setup * s.actual for s in kept)
    sby = sum(s.weight * s.shots * s.actual for s in kept)
    det = saa * sbb - sab * sab
    if saa <= 0 or sbb <= 0 or det <= 1e-6 * saa * sbb:  # collinear: one ratio
        return ratio
    a = (say * sbb - sby * sab) / det
    b = (sby * saa - say * sab) / det
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        return ratio
    return TimeFit(a, b, "least squares")


def success_scale(estimated: float, implied: float) -> float | None:
    """k with implied = estimated ** k: how many times the calibration's error rates the QPU
    delivered (None when the estimate is too close to 1 to tell)."""
    if not 0.0 < estimated < 0.995:
        return None
    measured = min(max(implied, 0.01), 0.999)
    return math.log(measured) / math.log(estimated)
