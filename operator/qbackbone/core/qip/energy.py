"""Energy in the QIP: a QPU's estimate for the whole job, a placement's, and the budget rule."""

from __future__ import annotations

from collections.abc import Sequence

from qbackbone.core.execute.shots import ShotShare, finish_time
from qbackbone.core.qip.inputs import QPUAssessment


def qpu_joules(q: QPUAssessment, shots_per_basis: int, bases: int) -> float | None:
    """Energy of the whole job alone on the QPU (mitigation's extra shots included); None
    without a power model."""
    if q.power is None:
        return None
    multiplier = q.mitigation.shot_multiplier
    busy = q.descriptor.setup_time + shots_per_basis * bases * multiplier * q.descriptor.shot_time
    return q.power.joules(busy, shots_per_basis * bases * multiplier)


def placement_joules(shares: Sequence[ShotShare], assessments: Sequence[QPUAssessment],
                     bases: int) -> float | None:
    """Energy of a placement: each share's busy time and shots under its QPU's model."""
    by_name = {q.descriptor.name: q for q in assessments}
    total = 0.0
    for s in shares:
        q = by_name.get(s.qpu)
        if q is None or q.power is None:
            return None
        multiplier = q.mitigation.shot_multiplier
        shots = s.shots * bases * multiplier
        busy = finish_time(q.descriptor, s.shots, bases) if multiplier == 1.0 else (
            q.descriptor.setup_time + shots * q.descriptor.shot_time)
        total += q.power.joules(busy, shots)
    return round(total, 3)


def within_budget(joules: float | None, budget: float | None) -> bool:
    """No budget, or no estimate, or the estimate within it."""
    return budget is None or joules is None or joules <= budget
