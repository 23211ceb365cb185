"""Holdout evaluation and the choice of method.

Each candidate is fitted on the history without its last ``horizon`` steps and scored there:
MASE over the horizon (one origin), one-step MASE (rolling origin, not refitted), and the
interval's coverage. The MASE scale is the in-sample seasonal-naive MAE of the fitting part.
Auto picks the lowest horizon MASE, but the quantum reservoir only when it beats the best
classical method by ``QUANTUM_MARGIN`` (it costs circuits; a tie does not pay).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from qbackbone.api.telemetry import MethodScore
from qbackbone.core.predict.methods import Method, mase_scale

QUANTUM_MARGIN = 0.05  # relative MASE improvement the reservoir must show


@dataclass(frozen=True)
class Evaluated:
    """One method's holdout scores."""

    method: Method
    score: MethodScore


def evaluate(methods: Sequence[Method], history: np.ndarray, horizon: int, season: int,
             interval: float) -> list[Evaluated]:
    """Holdout scores of each method (failures reported, not raised)."""
    fit, held = history[:-horizon], history[-horizon:]
    scale = mase_scale(fit, season)
    z = float(norm.ppf(0.5 + interval / 2))
    out = []
    for method in methods:
        start = time.perf_counter()
        try:
            forecast = method.forecast(fit, horizon)
            one = method.one_step(fit, held)
        except (ValueError, np.linalg.LinAlgError, ArithmeticError) as err:
            out.append(Evaluated(method, MethodScore(method=method.name, mase=None,
                                                     note=f"failed: {err}"[:200])))
            continue
        inside = np.abs(held - forecast.values) <= z * forecast.sd
        out.append(Evaluated(method, MethodScore(
            method=method.name,
            mase=round(float(np.abs(held - forecast.values).mean() / scale), 4),
            mase_one_step=round(float(np.abs(held - one).mean() / scale), 4),
            coverage=round(float(inside.mean()), 4),
            seconds=round(time.perf_counter() - start, 4))))
    return out


def choose(evaluated: Sequence[Evaluated], quantum_name: str) -> tuple[Evaluated, str]:
    """The method Auto uses, and why."""
    usable = [e for e in evaluated if e.score.mase is not None]
    if not usable:
        raise ValueError("no method could be fitted")
    classical = [e for e in usable if e.method.name != quantum_name]
    best = min(classical or usable, key=lambda e: e.score.mase or 0.0)
    quantum = next((e for e in usable if e.method.name == quantum_name), None)
    if quantum is not None and best is not quantum:
        qm, cm = quantum.score.mase or 0.0, best.score.mase or 0.0
        if qm < (1 - QUANTUM_MARGIN) * cm:
            return quantum, (f"{quantum_name}: holdout MASE {qm:.3f} beats {best.method.name} "
                             f"({cm:.3f}) by more than {QUANTUM_MARGIN:.0%}")
        return best, (f"{best.method.name}: lowest classical holdout MASE {cm:.3f}; "
                      f"{quantum_name} ({qm:.3f}) does not beat it by {QUANTUM_MARGIN:.0%}")
    return best, f"{best.method.name}: lowest holdout MASE {best.score.mase:.3f}"
