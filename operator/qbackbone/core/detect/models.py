"""Solve for detect: the models and their scores.

With labels, each model is supervised: an SVC (balanced classes) on the quantum kernel
(precomputed) or on an RBF kernel; IsolationForest is unsupervised and its threshold is the
one that maximises F1 on the training windows. Without labels: a one-class SVM (nu = 0.1) on
either kernel, and IsolationForest flagging its top 10 % of training scores. A score above
the threshold flags a window.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score  # type: ignore[import-untyped]
from sklearn.model_selection import StratifiedKFold  # type: ignore[import-untyped]
from sklearn.svm import SVC, OneClassSVM  # type: ignore[import-untyped]

from qbackbone.api.telemetry import ModelScores

NU = 0.1
C = 1.0


@dataclass(frozen=True)
class Scored:
    """Scores of the test windows (higher: more anomalous) and the threshold."""

    model: str
    scores: np.ndarray
    threshold: float
    seconds: float

    @property
    def flags(self) -> np.ndarray:
        """Windows flagged."""
        return self.scores > self.threshold


def _svm(k_train: np.ndarray, k_test: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    if y is not None and 0 < y.sum() < len(y):
        svc = SVC(kernel="precomputed", C=C, class_weight="balanced").fit(k_train, y)
        return np.asarray(svc.decision_function(k_test))
    one = OneClassSVM(kernel="precomputed", nu=NU).fit(k_train)
    return -np.asarray(one.decision_function(k_test))


def rbf_gram(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """exp(-gamma |a - b|^2)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.exp(-gamma * np.maximum(d, 0.0))


def rbf_gamma(x: np.ndarray) -> float:
    """sklearn's 'scale': 1 / (features x variance)."""
    var = float(x.var())
    return 1.0 / (x.shape[1] * var) if var > 0 else 1.0


def kernel_svm(name: str, k_train: np.ndarray, k_test: np.ndarray,
               y: np.ndarray | None) -> Scored:
    """An SVC (or one-class SVM) on a precomputed kernel; threshold 0."""
    start = time.perf_counter()
    scores = _svm(k_train, k_test, y)
    return Scored(name, scores, 0.0, time.perf_counter() - start)


def rbf_svm(x_train: np.ndarray, x_test: np.ndarray, y: np.ndarray | None) -> Scored:
    """The classical kernel baseline on the same reduced features."""
    gamma = rbf_gamma(x_train)
    start = time.perf_counter()
    scores = _svm(rbf_gram(x_train, x_train, gamma), rbf_gram(x_test, x_train, gamma), y)
    return Scored("rbfSvm", scores, 0.0, time.perf_counter() - start)


def isolation_forest(x_train: np.ndarray, x_test: np.ndarray, y: np.ndarray | None,
                     seed: int, trees: int = 200) -> Scored:
    """IsolationForest; threshold from the training windows."""
    start = time.perf_counter()
    forest = IsolationForest(n_estimators=trees, random_state=seed).fit(x_train)
    train_scores = -forest.score_samples(x_train)
    if y is not None and 0 < y.sum() < len(y):
        candidates = np.unique(train_scores)
        f1s = [f1_score(y, train_scores >= t, zero_division=0) for t in candidates]
        threshold = float(candidates[int(np.argmax(f1s))]) - 1e-12
    else:
        threshold = float(np.quantile(train_scores, 1 - NU))
    return Scored("isolationForest", -forest.score_samples(x_test), threshold,
                  time.perf_counter() - start)


def scores_of(scored: Scored, y: np.ndarray | None) -> ModelScores:
    """Precision, recall, F1 and AUC (when labels exist and both classes appear)."""
    flags = scored.flags
    out = ModelScores(model=scored.model, flagged=int(flags.sum()),
                      seconds=round(scored.seconds, 4))
    if y is None:
        return out
    out.precision = round(float(precision_score(y, flags, zero_division=0)), 4)
    out.recall = round(float(recall_score(y, flags, zero_division=0)), 4)
    out.f1 = round(float(f1_score(y, flags, zero_division=0)), 4)
    if 0 < y.sum() < len(y):
        out.auc = round(float(roc_auc_score(y, scored.scores)), 4)
    return out


GramFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def cross_validated_f1(x: np.ndarray, y: np.ndarray, gram: GramFn, folds: int = 3,
                       repeats: int = 3, seed: int = 0) -> float | None:
    """Mean F1 of a precomputed-kernel SVC over ``repeats`` shuffles of stratified folds of
    the training windows (None when a class has fewer windows than folds)."""
    splits = _splits(x, y, folds, repeats, seed)
    if splits is None:
        return None
    return float(np.mean([
        f1_score(y[held], _svm(gram(x[fit], x[fit]), gram(x[held], x[fit]), y[fit]) > 0,
                 zero_division=0) for fit, held in splits]))


def cross_validated_forest_f1(x: np.ndarray, y: np.ndarray, seed: int = 0, folds: int = 3,
                              repeats: int = 3) -> float | None:
    """IsolationForest's F1 over the same folds (its threshold chosen on each fit part)."""
    splits = _splits(x, y, folds, repeats, seed)
    if splits is None:
        return None
    return float(np.mean([
        f1_score(y[held], isolation_forest(x[fit], x[held], y[fit], seed, trees=100).flags,
                 zero_division=0) for fit, held in splits]))


def _splits(x: np.ndarray, y: np.ndarray, folds: int, repeats: int,
            seed: int) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """(fit, held) indices of ``repeats`` shuffles of stratified folds (seeds seed, seed+1,
    ...); None when a class has fewer windows than folds."""
    if y.sum() < folds or (len(y) - y.sum()) < folds:
        return None
    return [split for r in range(repeats) for split in
            StratifiedKFold(folds, shuffle=True, random_state=seed + r).split(x, y)]
