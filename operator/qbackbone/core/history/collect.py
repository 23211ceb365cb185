"""A history record from a finished job's status (the same in ``qbackbone run`` and in the
operator, k8s/history.py), and the problem class a job belongs to."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from qbackbone.api.conditions import ConditionType
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus
from qbackbone.core.history.record import FragmentRecord, JobRecord
from qbackbone.core.qpus.descriptor import QPUDescriptor

LEARNED_PREFIX = "learned"  # decision rules that carry a learned value start with this
SUCCESS_SCALE_RULE = "learnedSuccessScale"

_WIDTHS = (4, 8, 16, 32)
_DEPTHS = (10, 50, 200)


def _bucket(value: float, bounds: tuple[int, ...]) -> str:
    for bound in bounds:
        if value <= bound:
            return f"<={bound}"
    return f">{bounds[-1]}"


def problem_class(features: Mapping[str, float], sampling: bool) -> str:
    """Jobs alike for the question "did the quantum path pay?": expectation or sampling,
    width and two-qubit depth in coarse buckets, e.g. ``expectation/q<=8/d<=50``."""
    kind = "sampling" if sampling else "expectation"
    return (f"{kind}/q{_bucket(features.get('qubits', 0), _WIDTHS)}"
            f"/d{_bucket(features.get('twoQubitDepth', 0), _DEPTHS)}")


def _condition(status: QuantumJobStatus, type_: str) -> bool | None:
    for c in status.conditions:
        if c.type == type_:
            return c.status == "True"
    return None


def _failure(status: QuantumJobStatus) -> str | None:
    for c in status.conditions:
        if c.type == ConditionType.FAILED and c.status == "True":
            return c.reason
    return None


def record_from_status(job: QuantumJob, status: QuantumJobStatus,
                       fleet: Mapping[str, QPUDescriptor], finished_at: datetime,
                       fragment_seconds: Mapping[str, float] | None = None,
                       fragment_waits: Mapping[str, float] | None = None) -> JobRecord:
    """The record of a finished job. ``fragment_seconds`` / ``fragment_waits`` are measured
    run times and queue waits per fragment name (the operator's pod times); without them
    the execute phase's time is shared over the fragments in proportion to their planned
    durations and waits are zero (one process runs them one after another)."""
    decision, result, plan, verification = (status.decision, status.result, status.plan,
                                            status.verification)
    features = dict(decision.features) if decision is not None else {}
    sampling = job.spec.circuit.sampling if job.spec.circuit is not None else False
    rules = decision.rules if decision is not None else []
    scale = {r.qpu: float(r.value) for r in rules
             if r.name == SUCCESS_SCALE_RULE and r.qpu and isinstance(r.value, int | float)}
    bases = int(features.get("measuredBases", 1)) if result and result.path == "SingleQPU" else 1
    multiplier: dict[str, float] = {}
    for report in (result.mitigation or []) if result is not None else []:
        for q in report.qpus:
            multiplier[q] = report.shot_multiplier
    fragments: list[FragmentRecord] = []
    planned = list(plan.fragments) if plan is not None and result is not None else []
    execute = status.timings.execute_seconds if status.timings is not None else None
    total_planned = sum(f.planned_end_seconds - f.planned_start_seconds for f in planned)
    for f in planned:
        d = fleet.get(f.qpu)
        if d is None:
            continue
        predicted = f.planned_end_seconds - f.planned_start_seconds
        if fragment_seconds is not None:
            actual = fragment_seconds.get(f.name)
        elif execute is not None and total_planned > 0:
            actual = execute * predicted / total_planned
        else:
            actual = None
        estimate = f.estimated_fidelity
        if estimate is not None and f.qpu in scale and 0 < estimate < 1 and scale[f.qpu] > 0:
            estimate = estimate ** (1.0 / scale[f.qpu])  # back to the nominal estimate
        fragments.append(FragmentRecord(
            qpu=f.qpu, shots=float(f.shots * bases * multiplier.get(f.qpu, 1.0)),
            setup_seconds=d.setup_time, shot_seconds=d.shot_time, predicted_seconds=predicted,
            actual_seconds=actual, predicted_wait_seconds=f.planned_start_seconds,
            actual_wait_seconds=0.0 if fragment_waits is None else fragment_waits.get(f.name),
            estimated_success=estimate, ideal=d.ideal))
    return JobRecord(
        name=job.metadata.name, namespace=job.metadata.namespace,
        finished_at=finished_at.timestamp(),
        policy=decision.policy if decision is not None else
        (job.spec.policy_ref.name if job.spec.policy_ref else "default"),
        policy_generation=decision.policy_generation if decision is not None else 0,
        problem_class=problem_class(features, sampling),
        path=result.path if result is not None else (decision.path if decision else None),
        reason=decision.reason if decision is not None else "",
        phase=str(status.phase), failure_reason=_failure(status),
        features={k: float(v) for k, v in features.items()},
        qpus=list(result.qpus) if result is not None and result.qpus else
        sorted({f.qpu for f in fragments}),
        fragments=fragments,
        mitigation=[m.level for m in (result.mitigation or [])] if result is not None else [],
        implied_success=verification.implied_success_probability if verification else None,
        verification_method=verification.method if verification is not None else None,
        verified=verification.passed if verification is not None else None,
        deadline_seconds=job.spec.deadline,
        deadline_met=_condition(status, ConditionType.DEADLINE_MET),
        total_seconds=status.timings.total_seconds if status.timings is not None else None,
        estimated_energy_joules=decision.estimated_energy_joules if decision else None,
        energy_joules=result.energy_joules if result is not None else None,
        learned=sorted({f"{r.name}:{r.qpu or ''}" for r in rules
                        if r.name.startswith(LEARNED_PREFIX)}),
    )
