"""Energy of what a job ran: its plan's fragments under each QPU's power model, or the
classical path's CPU time; ``decide`` hands ``result_joules`` to the run and
``finish.verify_and_finish`` writes it to ``status.result.energyJoules`` (every path, in one
process or stepwise in the operator)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from qbackbone.api.quantumjob import QuantumJobStatus
from qbackbone.core.energy.model import PowerModel, classical_joules, power_model
from qbackbone.core.qip.inputs import QPUAssessment
from qbackbone.core.qpus.fleet import QPU


def fleet_power(fleet: Sequence[QPU]) -> dict[str, PowerModel]:
    """Each QPU's power model: its QPUNode's ``spec.energy`` over the technology defaults."""
    return {q.name: power_model(q.descriptor.ideal, q.spec.energy if q.spec else None)
            for q in fleet}


def result_joules(status: QuantumJobStatus, power: Mapping[str, PowerModel],
                  assessments: Sequence[QPUAssessment] = (),
                  bases: int = 1) -> float | None:
    """The estimate for the finished job: Classical, CPU seconds of execution times one
    core's power; quantum, each fragment's planned busy time and shots (times the
    mitigation's shot multiplier) under its QPU's model. None when nothing ran."""
    result, timings, plan = status.result, status.timings, status.plan
    if result is None:
        return None
    if result.path == "Classical":
        seconds = (timings.execute_seconds if timings is not None else None) or 0.0
        return round(classical_joules(seconds), 3)
    if plan is None or not plan.fragments:
        return None
    multiplier = {a.descriptor.name: a.mitigation.shot_multiplier for a in assessments}
    per_basis = bases if result.path == "SingleQPU" else 1
    total = 0.0
    for fragment in plan.fragments:
        model = power.get(fragment.qpu)
        if model is None:
            return None
        busy = fragment.planned_end_seconds - fragment.planned_start_seconds
        shots = fragment.shots * per_basis * multiplier.get(fragment.qpu, 1.0)
        total += model.joules(busy, shots)
    return round(total, 3)
