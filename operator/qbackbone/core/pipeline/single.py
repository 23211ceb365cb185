"""The SingleQPU path: one fragment per QPU share, strata combined per observable, verified."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qiskit import QuantumCircuit

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.quantumjob import (
    ExpectationValue,
    Plan,
    PlannedFragment,
    PlannedSubcircuit,
    QuantumJobStatus,
    Result,
)
from qbackbone.core.circuits.observables import Estimate, combine_strata, parity_estimate
from qbackbone.core.errors import JobFailure
from qbackbone.core.pipeline.decide import DecidedJob
from qbackbone.core.pipeline.finish import merge_sampling_counts, verify_and_finish
from qbackbone.core.pipeline.jobrun import as_job_failure
from qbackbone.core.pipeline.reduce import ReducedJob
from qbackbone.core.qip.engine import QIPDecision
from qbackbone.core.qip.inputs import QPUAssessment
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.core.qpus.fleet import QPU
from qbackbone.core.verify.checks import NoiseProfile


@dataclass(frozen=True)
class FragmentWork:
    """Shots of the whole (uncut) job on one QPU: the circuits run in one backend call."""

    qpu: str
    shots: int
    circuits: list[QuantumCircuit]


def _noise_profile(shares: Mapping[str, int], fidelity: Mapping[str, float]) -> NoiseProfile:
    total = sum(shares.values())
    return NoiseProfile(tuple((n / total, fidelity.get(q, 1.0)) for q, n in shares.items()))


def _plan(reduced: ReducedJob, qip: QIPDecision,
          assessments: Sequence[QPUAssessment]) -> Plan:
    fid = {a.descriptor.name: a.estimated_fidelity for a in assessments}
    backend = {a.descriptor.name: a.descriptor.backend_name for a in assessments}
    f = reduced.features
    return Plan(
        subcircuits=[PlannedSubcircuit(name="main", qubits=f.qubits, depth=f.depth,
                                       two_qubit_depth=f.two_qubit_depth, shots=reduced.shots)],
        fragments=[
            PlannedFragment(name=f"main-{s.qpu}", subcircuit="main", qpu=s.qpu,
                            backend=backend[s.qpu], shots=s.shots,
                            estimated_fidelity=None if fid[s.qpu] is None
                            else round(fid[s.qpu] or 0.0, 4),
                            planned_start_seconds=round(s.start, 4),
                            planned_end_seconds=round(s.end, 4))
            for s in qip.shares
        ],
        estimated_makespan_seconds=round(max(s.end for s in qip.shares), 4),
    )


def plan_single_qpu(decided: DecidedJob) -> list[FragmentWork]:
    """Write the plan (one fragment per QPU share) and return the work to run."""
    run, qip = decided.run, decided.qip
    with run.phase("schedule_seconds"):
        run.status.plan = _plan(decided.reduced, qip, decided.assessments)
    run.condition(ConditionType.SCHEDULED, True, Reason.PLANNED,
                  f"{len(qip.shares)} fragment(s) on {', '.join(s.qpu for s in qip.shares)}")
    run.status.phase = Phase.RUNNING
    return [FragmentWork(s.qpu, s.shots, decided.compiled.circuits[s.qpu]) for s in qip.shares]


def execute_single_qpu(decided: DecidedJob) -> dict[str, list[dict[str, int]]]:
    """Plan the SingleQPU fragments and run each on its QPU in this process: counts by QPU."""
    run = decided.run
    by_name = {q.name: q for q in decided.fleet}
    counts: dict[str, list[dict[str, int]]] = {}
    work = plan_single_qpu(decided)
    with run.phase("execute_seconds"):
        for item in work:
            qpu = by_name[item.qpu]
            run.progress.step("execute", f"{item.qpu} ({qpu.descriptor.backend_name}): "
                              f"{len(item.circuits)} circuit(s) x {item.shots} shots")

            def execute(q: QPU = qpu, w: FragmentWork = item) -> list[dict[str, int]]:
                return q.executor.run(w.circuits, w.shots,
                                      derive_seed(decided.seed, w.qpu))

            counts[item.qpu] = as_job_failure(run, Reason.EXECUTION_FAILED, execute)
    return counts


def finish_single_qpu(decided: DecidedJob,
                      counts: Mapping[str, Sequence[Mapping[str, int]]]) -> QuantumJobStatus:
    """Reconstruct from each QPU's counts (one entry per basis circuit) and verify."""
    run, reduced, qip = decided.run, decided.reduced, decided.qip
    missing = [s.qpu for s in qip.shares if s.qpu not in counts]
    if missing:
        raise JobFailure(Reason.EXECUTION_FAILED, f"no counts from {', '.join(missing)}")
    run.condition(ConditionType.EXECUTED, True, Reason.FRAGMENTS_COMPLETED,
                  f"{len(counts)} fragment(s) completed")
    run.status.phase = Phase.RECONSTRUCTING
    fidelity = {a.descriptor.name: a.estimated_fidelity or 1.0 for a in decided.assessments}
    backend = {a.descriptor.name: a.descriptor.backend_name for a in decided.assessments}
    noise = _noise_profile({s.qpu: s.shots for s in qip.shares}, fidelity)
    total_shots = sum(s.shots for s in qip.shares) * len(reduced.measured_circuits)
    per_qpu = [counts[s.qpu] for s in qip.shares]
    with run.phase("reconstruct_seconds"):
        result = Result(path="SingleQPU", backends=[backend[s.qpu] for s in qip.shares],
                        qpus=[s.qpu for s in qip.shares], shots=total_shots)
        if reduced.observables is None:
            result.counts = merge_sampling_counts(per_qpu)
        else:
            result.expectation_values = [
                _estimate(obs, [c[reduced.basis_of[i]] for c in per_qpu])
                for i, obs in enumerate(reduced.observables)
            ]
    run.status.result = result
    return verify_and_finish(run, reduced, noise)


def _estimate(observable: str, per_qpu_counts: Sequence[Mapping[str, int]]) -> ExpectationValue:
    strata: list[Estimate] = [parity_estimate(c, observable) for c in per_qpu_counts]
    combined = combine_strata(strata)
    return ExpectationValue(observable=observable, value=round(combined.value, 6),
                            std_error=round(combined.std_error, 6))
