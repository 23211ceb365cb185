"""Reduce for detect: telemetry to window features, compressed to the qubit budget (PCA).

1. Residuals: log(value / daily-slot median of the training steps), minus the median over
   series at each step (removes what moves every series at once: weekends, growth), in
   units of each series' robust spread (MAD) on the training steps.
2. Windows of ``window`` steps, stride window/2; a window is labelled anomalous when any
   of its steps is (an anomaly inside a window makes it one to flag).
3. Ten summary features per window (largest |z|, deepest drop, flap index, sustained
   shift, trend, share of series beyond 3 sigma, ...), signed log1p.
4. Standardised on the training windows; PCA (fit on training windows) to ``qubits``
   components; each component scaled to unit spread and clipped to [-3, 3].
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.decomposition import PCA  # type: ignore[import-untyped]

EPS = 1e-3
MIN_SCALE = 0.02
FEATURES = ("maxAbsZ", "topSeriesMeanAbsZ", "minZ", "maxZ", "flapIndex", "shareBeyond3",
            "maxSustainedShift", "spreadOfStepMax", "maxTrend", "shareDropped")


@dataclass(frozen=True)
class WindowSet:
    """The windows of one telemetry set, split in time into training and test."""

    starts: np.ndarray  # first step of each window
    window: int
    raw: np.ndarray  # windows x FEATURES
    reduced: np.ndarray  # windows x qubits, unit spread, clipped
    labels: np.ndarray | None  # windows, bool
    train: np.ndarray  # bool mask of training windows
    top_series: list[list[int]]  # per window, the series deviating most
    explained_variance: float


def residuals(values: np.ndarray, train_steps: int, steps_per_day: int) -> np.ndarray:
    """Robust z-scores of log deviations from the daily-slot training median."""
    logs = np.log(np.maximum(values, 0.0) + EPS)
    slot = np.arange(len(values)) % steps_per_day
    baseline = np.zeros_like(logs)
    for s in range(steps_per_day):
        train = logs[:train_steps][slot[:train_steps] == s]
        ref = np.median(train, axis=0) if len(train) else np.median(logs[:train_steps], axis=0)
        baseline[slot == s] = ref
    r = logs - baseline
    r -= np.median(r, axis=1, keepdims=True)
    mad = np.median(np.abs(r[:train_steps] - np.median(r[:train_steps], axis=0)), axis=0)
    return r / np.maximum(1.4826 * mad, MIN_SCALE)


def window_features(z: np.ndarray) -> np.ndarray:
    """The FEATURES of one window (steps x series of z-scores)."""
    absz = np.abs(z)
    per_series = absz.mean(axis=0)
    top = np.sort(per_series)[-min(3, len(per_series)):]
    flap = np.abs(np.diff(z, axis=0)).mean(axis=0).max() if len(z) > 1 else 0.0
    step_max = absz.max(axis=1)
    f = np.array([absz.max(), top.mean(), z.min(), z.max(), flap,
                  (absz.max(axis=0) > 3).mean(), np.abs(z.mean(axis=0)).max(),
                  step_max.std(), np.abs(z[-1] - z[0]).max(), (z.min(axis=0) < -3).mean()])
    return np.sign(f) * np.log1p(np.abs(f))


def build_windows(values: np.ndarray, step_labels: np.ndarray | None, window: int,
                  train_fraction: float, steps_per_day: int, qubits: int) -> WindowSet:
    """Windows, their features, and the PCA reduction to ``qubits`` components."""
    steps = len(values)
    train_steps = int(steps * train_fraction)
    z = residuals(values, train_steps, steps_per_day)
    stride = max(1, window // 2)
    starts = np.arange(0, steps - window + 1, stride)
    # a window straddling the split would see test steps during training: drop it
    starts = starts[(starts + window <= train_steps) | (starts >= train_steps)]
    raw = np.array([window_features(z[s:s + window]) for s in starts])
    train = starts + window <= train_steps
    labels = None
    if step_labels is not None:
        labels = np.array([bool(step_labels[s:s + window].any()) for s in starts])
    top = []
    for s in starts:
        peak = np.abs(z[s:s + window]).max(axis=0)
        order = np.argsort(-peak)[:3]
        top.append([int(k) for k in order if peak[k] > 3] or [int(order[0])])
    mean, std = raw[train].mean(axis=0), raw[train].std(axis=0)
    standard = (raw - mean) / np.where(std > 1e-12, std, 1.0)
    keep = min(qubits, standard.shape[1], int(train.sum()))
    with warnings.catch_warnings():  # identical training windows: nothing to explain
        warnings.simplefilter("ignore", RuntimeWarning)
        pca = PCA(n_components=keep, svd_solver="full").fit(standard[train])
    ratio = np.asarray(pca.explained_variance_ratio_)
    explained = float(ratio.sum()) if np.all(np.isfinite(ratio)) else 0.0
    comps = pca.transform(standard)
    spread = comps[train].std(axis=0)
    reduced = np.clip(comps / np.where(spread > 1e-12, spread, 1.0), -3.0, 3.0)
    return WindowSet(starts, window, raw, reduced, labels, train, top, explained)


def training_windows(windows: WindowSet, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` training windows: every labelled one (up to half the
    limit, the most recent), then the most recent others; in time order."""
    train = np.flatnonzero(windows.train)
    if windows.labels is None or len(train) <= limit:
        return train[-limit:]
    odd = train[windows.labels[train]][-(limit // 2):]
    normal = train[~windows.labels[train]][-(limit - len(odd)):]
    return np.sort(np.concatenate([odd, normal]))
