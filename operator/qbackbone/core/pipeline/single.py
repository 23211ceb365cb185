"""The SingleQPU path: one fragment per QPU share, strata combined per observable, verified."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qiskit import QuantumCircuit

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.mitigation import MitigationReport
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
from qbackbone.core.execute.estimates import (
    combine_mitigated,
    estimate_on_qpu,
    estimates_mitigated,
    mitigation_report,
    prepare_estimator_work,
)
from qbackbone.core.execute.readout import (
    calibration_stamp,
    combine_distributions,
    m3_correct,
    readout_calibration,
)
from qbackbone.core.mitigation.plan import MitigationPlan
from qbackbone.core.mitigation.readout import CorrectedDistribution, measured_qubits
from qbackbone.core.mitigation.residual import residual_systematic
from qbackbone.core.mitigation.uncertainty import MitigatedValue
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


def _noise_profile(shares: Mapping[str, int], fidelity: Mapping[str, float],
                   mitigated: bool = False) -> NoiseProfile:
    total = sum(shares.values())
    return NoiseProfile(tuple((n / total, fidelity.get(q, 1.0)) for q, n in shares.items()),
                        systematic_reported=mitigated)


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


@dataclass
class ShareOutcomes:
    """What each QPU's share returned: counts (ideal QPUs, sampling jobs) or mitigated
    expectation values (noisy QPUs, expectation-value jobs)."""

    counts: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    estimates: dict[str, list[MitigatedValue]] = field(default_factory=dict)


def mitigation_plans(decided: DecidedJob) -> dict[str, MitigationPlan]:
    """The mitigation each QPU of the decision runs with (chosen when it was assessed)."""
    return {a.descriptor.name: a.mitigation for a in decided.assessments}


def execute_single_qpu(decided: DecidedJob) -> ShareOutcomes:
    """Plan the SingleQPU fragments and run each on its QPU in this process."""
    run, reduced = decided.run, decided.reduced
    by_name = {q.name: q for q in decided.fleet}
    plans = mitigation_plans(decided)
    outcomes = ShareOutcomes()
    work = plan_single_qpu(decided)
    target = reduced.policy.spec.mitigation.target_sigma
    with run.phase("execute_seconds"):
        for item in work:
            qpu = by_name[item.qpu]
            seed = derive_seed(decided.seed, item.qpu)
            if reduced.observables is not None and estimates_mitigated(qpu, True):
                plan = plans[item.qpu]
                run.progress.step("execute", f"{item.qpu} ({qpu.descriptor.backend_name}): "
                                  f"Estimator, {len(reduced.observables)} observable(s) x "
                                  f"{item.shots} shots, mitigation {plan.level}")

                def estimate(q: QPU = qpu, w: FragmentWork = item, p: MitigationPlan = plan,
                             s: int | None = seed) -> list[MitigatedValue]:
                    assert reduced.observables is not None
                    prepared = prepare_estimator_work(q, reduced.circuit, reduced.observables)
                    return estimate_on_qpu(q, prepared, w.shots, s, p, target)

                outcomes.estimates[item.qpu] = as_job_failure(run, Reason.EXECUTION_FAILED,
                                                              estimate)
                continue
            run.progress.step("execute", f"{item.qpu} ({qpu.descriptor.backend_name}): "
                              f"{len(item.circuits)} circuit(s) x {item.shots} shots")

            def execute(q: QPU = qpu, w: FragmentWork = item,
                        s: int | None = seed) -> list[dict[str, int]]:
                return q.executor.run(w.circuits, w.shots, s)

            outcomes.counts[item.qpu] = as_job_failure(run, Reason.EXECUTION_FAILED, execute)
    return outcomes


def finish_single_qpu(decided: DecidedJob, outcomes: ShareOutcomes) -> QuantumJobStatus:
    """Reconstruct from each QPU's counts (one entry per basis circuit) or mitigated values,
    and verify."""
    run, reduced, qip = decided.run, decided.reduced, decided.qip
    counts, estimates = outcomes.counts, outcomes.estimates
    missing = [s.qpu for s in qip.shares if s.qpu not in counts and s.qpu not in estimates]
    if missing:
        raise JobFailure(Reason.EXECUTION_FAILED, f"no results from {', '.join(missing)}")
    if reduced.observables is None and estimates:
        raise JobFailure(Reason.EXECUTION_FAILED, "a sampling job got expectation values")
    run.condition(ConditionType.EXECUTED, True, Reason.FRAGMENTS_COMPLETED,
                  f"{len(qip.shares)} fragment(s) completed")
    run.status.phase = Phase.RECONSTRUCTING
    by_name = {a.descriptor.name: a for a in decided.assessments}
    fidelity = {q: a.estimated_fidelity or 1.0 for q, a in by_name.items()}
    plans = mitigation_plans(decided)
    noisy = any(not by_name[s.qpu].descriptor.ideal for s in qip.shares)
    noise = _noise_profile({s.qpu: s.shots for s in qip.shares}, fidelity,
                           mitigated=noisy and reduced.observables is not None)
    bases = len(reduced.measured_circuits)
    total_shots = sum(round(s.shots * bases * (plans[s.qpu].shot_multiplier
                                               if s.qpu in estimates else 1.0))
                      for s in qip.shares)
    with run.phase("reconstruct_seconds"):
        result = Result(path="SingleQPU",
                        backends=[by_name[s.qpu].descriptor.backend_name for s in qip.shares],
                        qpus=[s.qpu for s in qip.shares], shots=total_shots,
                        ideal_simulator=all(by_name[s.qpu].descriptor.ideal
                                            for s in qip.shares))
        if reduced.observables is None:
            result.counts = merge_sampling_counts([counts[s.qpu] for s in qip.shares])
            if noisy:
                noise = _readout_mitigate(decided, result, noise, counts)
        else:
            result.expectation_values = [
                _estimate(i, obs, decided, outcomes, noisy)
                for i, obs in enumerate(reduced.observables)]
            if estimates:
                result.mitigation = _reports(decided, list(estimates))
    run.status.result = result
    return verify_and_finish(run, reduced, noise)


def _estimate(index: int, observable: str, decided: DecidedJob, outcomes: ShareOutcomes,
              noisy: bool) -> ExpectationValue:
    """One observable from every share: counts give shot-noise estimates (ideal QPUs, where
    there is nothing to mitigate), the Estimator mitigated ones."""
    basis = decided.reduced.basis_of[index]
    shares = decided.qip.shares
    if not noisy:  # all ideal: the exact stratified estimator
        combined = combine_strata([parity_estimate(outcomes.counts[s.qpu][basis], observable)
                                   for s in shares])
        return ExpectationValue(observable=observable, value=round(combined.value, 6),
                                std_error=round(combined.std_error, 6))
    assessed = {a.descriptor.name: a for a in decided.assessments}
    strata: list[tuple[str, int, MitigatedValue]] = []
    for share in shares:
        if share.qpu in outcomes.estimates:
            strata.append((share.qpu, share.shots, outcomes.estimates[share.qpu][index]))
            continue
        e: Estimate = parity_estimate(outcomes.counts[share.qpu][basis], observable)
        strata.append((share.qpu, share.shots, _counted_value(e, assessed[share.qpu])))
    return combine_mitigated(observable, strata)


def _readout_mitigate(decided: DecidedJob, result: Result, noise: NoiseProfile,
                      counts_by_qpu: Mapping[str, Sequence[Mapping[str, int]]]) -> NoiseProfile:
    """M3 on each noisy share's counts of a sampling job (when the plan says so and its
    measurements are final): the mixture goes to ``mitigated_probabilities`` and the noise
    profile keeps only the non-readout part of each share's error. Unchanged otherwise."""
    run, reduced, qip = decided.run, decided.reduced, decided.qip
    plans = mitigation_plans(decided)
    by_name = {q.name: q for q in decided.fleet}
    assessed = {a.descriptor.name: a for a in decided.assessments}
    policy = reduced.policy.spec.mitigation
    if reduced.dynamic or not all(plans[s.qpu].m3 or by_name[s.qpu].descriptor.ideal
                                  for s in qip.shares):
        return noise
    parts: list[tuple[int, CorrectedDistribution]] = []
    fidelity: dict[str, float] = {}
    calibrations: list[str] = []
    for share in qip.shares:
        qpu = by_name[share.qpu]
        (compiled,) = decided.compiled.circuits[share.qpu]
        (counts,) = counts_by_qpu[share.qpu]
        if qpu.descriptor.ideal:
            parts.append((share.shots, CorrectedDistribution(
                {k: n / share.shots for k, n in counts.items()}, 1.0)))
            fidelity[share.qpu] = 1.0
            continue
        cal = readout_calibration(qpu, run.now, policy.readout_calibration_max_age,
                                  policy.readout_calibration_shots, decided.seed)
        parts.append((share.shots, m3_correct(counts, compiled, cal)))
        read = cal.readout_fidelity(sorted(set(measured_qubits(compiled).values())))
        estimated = assessed[share.qpu].estimated_fidelity or 0.0
        fidelity[share.qpu] = min(1.0, estimated / max(read, 1e-9))
        calibrations.append(f"{share.qpu}: readout calibration of {cal.taken_at.isoformat()} "
                            f"({cal.shots} shots per preparation; {cal.qpu_calibration})")
    result.mitigated_probabilities, overhead = combine_distributions(parts)
    noisy_plans = {plans[s.qpu] for s in qip.shares if not by_name[s.qpu].descriptor.ideal}
    result.mitigation = [mitigation_report(p, [s.qpu for s in qip.shares if plans[s.qpu] == p],
                                           "; ".join(calibrations)) for p in noisy_plans]
    shares = {s.qpu: s.shots for s in qip.shares}
    total = sum(shares.values())
    return NoiseProfile(tuple((n / total, fidelity[q]) for q, n in shares.items()),
                        mitigation_overhead=overhead)


def _counted_value(e: Estimate, assessment: QPUAssessment) -> MitigatedValue:
    """A value from counts: exact on an ideal simulator; from a noisy QPU it is unmitigated,
    so its systematic error is the residual-bias model's."""
    if assessment.descriptor.ideal:
        return MitigatedValue(e.value, e.std_error, 0.0, "ideal simulator")
    fidelity = assessment.estimated_fidelity or 0.0
    return MitigatedValue(e.value, e.std_error, residual_systematic("None", fidelity, e.value),
                          "unmitigated counts; systematic from the residual-bias model")


def _reports(decided: DecidedJob, qpus: Sequence[str]) -> list[MitigationReport]:
    """One report per mitigation plan used, naming its QPUs and the calibration read."""
    plans = mitigation_plans(decided)
    by_name = {a.descriptor.name: a.descriptor for a in decided.assessments}
    groups: dict[MitigationPlan, list[str]] = {}
    for q in qpus:
        groups.setdefault(plans[q], []).append(q)
    reports = []
    for plan, names in groups.items():
        cals = "; ".join(f"{q}: {calibration_stamp(by_name[q])}" for q in names)
        trex = "; TREX readout calibration measured in the same call" if plan.readout else ""
        reports.append(mitigation_report(plan, names, cals + trex))
    return reports


