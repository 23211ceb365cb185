"""Window features, PCA reduction, models and their scores, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from qbackbone.core.detect.features import FEATURES, build_windows, residuals, window_features
from qbackbone.core.detect.models import Scored, isolation_forest, rbf_svm, scores_of


def seasonal(steps: int, series: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None]
    base = 0.4 + 0.2 * np.cos(2 * np.pi * (t - 20) / 24) + 0.05 * np.arange(series)[None, :]
    return base * np.exp(0.03 * rng.normal(size=(steps, series)))


def test_residuals_of_a_seasonal_series_are_small_and_a_failure_is_deep() -> None:
    values = seasonal(24 * 8, 5)
    values[150:156, 2] = 0.0  # a failed link
    z = residuals(values, 96, 24)
    assert np.abs(np.median(z[:96], axis=0)).max() < 0.5
    assert z[150:156, 2].max() < -10
    assert np.abs(z[100:140]).max() < 6


def test_window_features_by_hand() -> None:
    z = np.array([[0.0, 1.0], [4.0, -1.0], [0.0, -5.0]])
    f = window_features(z)
    raw = np.array([5.0, np.mean([4 / 3, 7 / 3]), -5.0, 4.0, max(8 / 2, 6 / 2), 1.0,
                    max(4 / 3, 5 / 3), np.std([1.0, 4.0, 5.0]), max(0.0, 6.0), 0.5])
    assert len(FEATURES) == 10
    assert np.allclose(f, np.sign(raw) * np.log1p(np.abs(raw)))


def test_windows_split_label_and_reduce() -> None:
    values = seasonal(24 * 8, 6)
    labels = np.zeros(len(values), dtype=bool)
    labels[120:126] = True
    values[120:126, 1] *= 3
    ws = build_windows(values, labels, 6, 0.5, 24, 3)
    assert np.all(ws.starts % 3 == 0)
    assert np.all(ws.starts[ws.train] + 6 <= 96) and np.all(ws.starts[~ws.train] >= 96)
    assert ws.labels is not None
    assert set(ws.starts[ws.labels]) == {117, 120, 123}  # any labelled step
    assert ws.reduced.shape == (len(ws.starts), 3) and np.abs(ws.reduced).max() <= 3
    assert np.allclose(ws.reduced[ws.train].std(axis=0), 1.0, atol=0.2)
    assert 0 < ws.explained_variance <= 1
    assert ws.top_series[list(ws.starts).index(120)][0] == 1


def test_scores_against_hand_counts() -> None:
    y = np.array([True, True, False, False, True])
    scored = Scored("m", np.array([0.9, -0.2, 0.4, -1.0, 0.3]), 0.0, 0.0)
    s = scores_of(scored, y)  # flagged: 0, 2, 4; tp 2, fp 1, fn 1
    assert (s.precision, s.recall, s.f1, s.flagged) == (pytest.approx(2 / 3, abs=1e-4),
                                                        pytest.approx(2 / 3, abs=1e-4),
                                                        pytest.approx(2 / 3, abs=1e-4), 3)
    assert s.auc == pytest.approx(roc_auc_score(y, scored.scores), abs=1e-4)
    assert scores_of(scored, None).f1 is None


def test_classical_models_separate_an_obvious_anomaly() -> None:
    rng = np.random.default_rng(0)
    normal = rng.normal(0, 0.3, (60, 3))
    odd = rng.normal(2.5, 0.3, (20, 3))
    x = np.vstack([normal, odd])
    y = np.array([False] * 60 + [True] * 20)
    order = rng.permutation(80)
    x, y = x[order], y[order]
    for scored in (rbf_svm(x[:40], x[40:], y[:40]), isolation_forest(x[:40], x[40:], y[:40], 0)):
        result = scores_of(scored, y[40:])
        assert result.f1 >= 0.8 and result.auc >= 0.95, result
    # without labels: a one-class SVM on the normal windows ranks every anomaly first
    result = scores_of(rbf_svm(x[:40][~y[:40]], x[40:], None), y[40:])
    assert result.recall == 1.0 and result.auc >= 0.95, result
