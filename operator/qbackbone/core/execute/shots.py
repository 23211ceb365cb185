"""Shots: derived from a target precision, and split over QPUs in proportion to their speed."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from qbackbone.core.qpus.descriptor import QPUDescriptor


def precision_shots(precision: float, limit: int) -> int:
    """Shots per basis so a +-1 observable's standard error is at most ``precision`` (worst
    case: 1/precision^2 + 1, since the sample's error divides by shots - 1); ValueError
    naming spec.precision when that is above ``limit``.

    The limit is checked before dividing, so a tiny precision (1e-300) never overflows.
    """
    finest = 1.0 / math.sqrt(max(limit - 1, 1))
    if not precision >= finest:
        exponent = -2.0 * math.log10(precision) if precision > 0 else math.inf
        raise ValueError(
            f"spec.precision {precision:g} needs about 1e{exponent:.0f} shots per measured basis "
            f"(1/precision^2), above the limit of {limit:,}: ask for a precision of at least "
            f"{finest:.3g}, or give spec.shots")
    return math.ceil(1.0 / (precision * precision)) + 1


@dataclass(frozen=True)
class ShotShare:
    """Shots for one QPU and when they would finish if started now."""

    qpu: str
    shots: int
    start: float
    end: float


def finish_time(q: QPUDescriptor, shots: int, circuits: int = 1) -> float:
    """Seconds a QPU needs for ``shots`` shots of each of ``circuits`` circuits in one call."""
    return q.setup_time + shots * circuits * q.shot_time


def split_shots(
    total: int, qpus: Sequence[QPUDescriptor], splitting: bool, circuits: int = 1
) -> list[ShotShare]:
    """Shares proportional to shot rate (1/shotTime, largest remainder); one QPU without splitting.

    Without splitting the QPU that finishes first (setup plus shots) takes every shot. Each
    QPU runs all ``circuits`` (measurement bases) with its share, in one backend call. Which
    QPUs may share a job (noise, deadline) is the caller's choice: ``core.qip.placement``.
    """
    if not qpus:
        return []
    if total <= 0:
        raise ValueError("total shots must be positive")

    def finish(q: QPUDescriptor, shots: int) -> float:
        return finish_time(q, shots, circuits)

    if not splitting:
        best = min(qpus, key=lambda q: (finish(q, total), q.name))
        return [ShotShare(best.name, total, 0.0, finish(best, total))]
    chosen = sorted(qpus, key=lambda q: (q.shot_time, q.name))
    speeds = [1.0 / q.shot_time for q in chosen]
    raw = [total * s / sum(speeds) for s in speeds]
    shots = [int(r) for r in raw]
    by_remainder = sorted(range(len(raw)), key=lambda i: raw[i] - shots[i], reverse=True)
    for i in by_remainder[: total - sum(shots)]:
        shots[i] += 1
    ends = [finish(q, n) for q, n in zip(chosen, shots, strict=True)]
    return [ShotShare(q.name, n, 0.0, e)
            for q, n, e in zip(chosen, shots, ends, strict=True) if n > 0]
