"""Run one QuantumJob through reduce, decide, plan, execute, reconstruct and verify."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from qiskit import QuantumCircuit

from qbackbone.api.conditions import ConditionType, Phase, Reason, set_condition
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import (
    Decision,
    ExpectationValue,
    Plan,
    PlannedFragment,
    PlannedSubcircuit,
    QuantumJob,
    QuantumJobStatus,
    Result,
    Timings,
    Verification,
)
from qbackbone.core.circuits.observables import Estimate, combine_strata, parity_estimate
from qbackbone.core.classical.fallback import (
    ClassicalOutcome,
    choose_method,
    estimate_seconds,
    run_classical,
)
from qbackbone.core.errors import JobFailure
from qbackbone.core.pipeline.assess import CompiledJob, assess_fleet
from qbackbone.core.pipeline.progress import Progress, SilentProgress
from qbackbone.core.pipeline.reduce import ReducedJob, reduce_job
from qbackbone.core.qip.engine import QIPDecision, decide
from qbackbone.core.qip.inputs import JobInputs, OperationalContext, QPUAssessment
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.core.qpus.fleet import QPU
from qbackbone.core.verify.checks import NoiseProfile, verify_counts, verify_expectations
from qbackbone.core.verify.exact import exact_distribution, exact_expectations, no_exact_reason

T = TypeVar("T")


class JobRun:
    """State of one run: the status being built and the clock of each phase."""

    def __init__(self, job: QuantumJob, progress: Progress, now: datetime) -> None:
        self.job = job
        self.progress = progress
        self.now = now
        self.status = QuantumJobStatus(observed_generation=job.metadata.generation,
                                       timings=Timings())
        self.started = time.perf_counter()

    def condition(self, type_: ConditionType, ok: bool, reason: Reason, message: str) -> None:
        set_condition(self.status.conditions, type_, ok, reason, message,
                      self.job.metadata.generation, datetime.now(UTC))

    @contextmanager
    def phase(self, timing_field: str) -> Iterator[None]:
        """Time a block; blocks of the same phase add up (a problem job decides twice)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            assert self.status.timings is not None
            before = getattr(self.status.timings, timing_field) or 0.0
            setattr(self.status.timings, timing_field,
                    round(before + time.perf_counter() - start, 4))

    def fail(self, reason: Reason, message: str) -> QuantumJobStatus:
        self.status.phase = Phase.FAILED
        self.condition(ConditionType.SUCCEEDED, False, reason, message)
        self.condition(ConditionType.FAILED, True, reason, message)
        self.progress.step("failed", f"{reason}: {message}")
        return self.finish()

    def finish(self) -> QuantumJobStatus:
        assert self.status.timings is not None
        self.status.timings.total_seconds = round(time.perf_counter() - self.started, 4)
        return self.status


def _noise_profile(shares: Mapping[str, int], fidelity: Mapping[str, float]) -> NoiseProfile:
    total = sum(shares.values())
    return NoiseProfile(tuple((n / total, fidelity.get(q, 1.0)) for q, n in shares.items()))


def _decision_model(qip: QIPDecision, reduced: ReducedJob) -> Decision:
    return Decision(
        path=qip.path,
        policy=reduced.policy.metadata.name,
        policy_generation=reduced.policy.metadata.generation,
        reason=qip.reason, message=qip.message, eligible_qpus=qip.eligible,
        features=reduced.features.as_dict(), rules=qip.rules,
    )


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


def _guard(run: JobRun, reason: Reason, action: Callable[[], T]) -> T:
    """Turn an unexpected exception of a backend or simulator into a JobFailure."""
    try:
        return action()
    except JobFailure:
        raise
    except Exception as err:
        raise JobFailure(reason, f"{type(err).__name__}: {err}") from err


@dataclass
class DecidedJob:
    """A job after reduce, assess and decide: what the execution steps need."""

    run: JobRun
    reduced: ReducedJob
    qip: QIPDecision
    assessments: list[QPUAssessment]
    compiled: CompiledJob
    context: OperationalContext
    fleet: Sequence[QPU]
    seed: int | None


@dataclass(frozen=True)
class FragmentWork:
    """Shots of the whole (uncut) job on one QPU: the circuits run in one backend call."""

    qpu: str
    shots: int
    circuits: list[QuantumCircuit]


def start_job(job: QuantumJob, progress: Progress | None = None,
              now: datetime | None = None) -> JobRun:
    """A fresh run of the job: an empty status and the clock."""
    return JobRun(job, progress or SilentProgress(), now or datetime.now(UTC))


def decide_job(run: JobRun, fleet: Sequence[QPU], policies: Mapping[str, InvocationPolicy],
               seed: int | None = None) -> DecidedJob:
    """Reduce, assess every QPU, and let the QIP decide; JobFailure when refused."""
    run.status.phase = Phase.DECIDING
    with run.phase("reduce_seconds"):
        reduced = reduce_job(run.job, policies, run.now)
    f = reduced.features
    run.progress.step("reduce", f"{f.qubits} qubits, depth {f.depth}, {f.two_qubit_gates} "
                      f"two-qubit gates, {f.measured_bases} basis circuit(s) x {reduced.shots} "
                      "shots")
    return decide_reduced(run, reduced, fleet, seed)


def decide_reduced(run: JobRun, reduced: ReducedJob, fleet: Sequence[QPU],
                   seed: int | None = None) -> DecidedJob:
    """Assess every QPU for a reduced circuit and let the QIP decide; JobFailure when refused.

    A decision already in the status (a problem job's) keeps its rules and features; the
    circuit's are added to them.
    """
    job, status, progress = run.job, run.status, run.progress
    f = reduced.features
    policy = reduced.policy.spec
    seed = seed if seed is not None else policy.scheduler.seed
    compiled = CompiledJob()
    with run.phase("decide_seconds"):
        assessments = assess_fleet(reduced.measured_circuits, f.qubits, fleet,
                                   job.spec.execution.qpu_selector, run.now, compiled)
        method = choose_method(f.qubits, policy.fallback, reduced.circuit,
                               policy.limits.statevector_qubits(copies=2))
        sampled = reduced.shots if reduced.observables is None else 0
        context = OperationalContext(
            mode=job.spec.execution.mode, deadline_remaining=reduced.deadline_remaining,
            classical_seconds=estimate_seconds(method, f.qubits, f.size, sampled),
            classical_method=method, needs_control_flow=reduced.dynamic)
        qip = decide(JobInputs(f, context, tuple(assessments)), policy)
    earlier = status.decision
    status.decision = _decision_model(qip, reduced)
    if earlier is not None:
        status.decision.rules = earlier.rules + status.decision.rules
        status.decision.features = {**earlier.features, **status.decision.features}
    progress.step("decide", f"{qip.path or 'refused'}: {qip.message}")
    if qip.refused:
        run.condition(ConditionType.DECIDED, False, qip.reason, qip.message)
        raise JobFailure(qip.reason, qip.message)
    run.condition(ConditionType.DECIDED, True, qip.reason, qip.message)
    return DecidedJob(run, reduced, qip, assessments, compiled, context, fleet, seed)


def run_job(job: QuantumJob, fleet: Sequence[QPU], policies: Mapping[str, InvocationPolicy],
            progress: Progress | None = None, seed: int | None = None,
            now: datetime | None = None,
            read_config_map: Callable[[str, str], str] | None = None) -> QuantumJobStatus:
    """The status the operator would write for this job, computed in this process.

    `read_config_map(name, key)` resolves ConfigMaps a problem job refers to.
    """
    run = start_job(job, progress, now)
    if job.spec.problem is not None:
        from qbackbone.core.pipeline.optimize import run_problem_job  # imports this module

        return guarded(run, lambda: run_problem_job(run, fleet, policies, seed,
                                                    read_config_map))
    return guarded(run, lambda: _run_in_process(decide_job(run, fleet, policies, seed)))


def guarded(run: JobRun, step: Callable[[], QuantumJobStatus]) -> QuantumJobStatus:
    """Run a step; a JobFailure or any bug ends in a Failed status, never an exception."""
    try:
        return step()
    except JobFailure as failure:
        return run.fail(failure.reason, failure.message)
    except Exception as err:  # a bug must fail this job, never the process that runs it
        return run.fail(Reason.INTERNAL_ERROR,
                        f"unexpected {type(err).__name__}: {err} (please report this)")


def _run_in_process(decided: DecidedJob) -> QuantumJobStatus:
    qip = decided.qip
    if qip.path == "Distributed":
        return _run_distributed(decided)
    if qip.path == "Classical":
        return finish_classical(decided, run_classical_fallback(decided))
    return finish_single_qpu(decided, execute_single_qpu(decided))


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

            counts[item.qpu] = _guard(run, Reason.EXECUTION_FAILED, execute)
    return counts


def _classical_instead(decided: DecidedJob, why: str) -> QuantumJobStatus:
    """When cutting cannot serve the job, the fallback may; otherwise the job fails with why."""
    from qbackbone.core.pipeline.distributed import classical_instead

    classical_instead(decided, why)
    return finish_classical(decided, run_classical_fallback(decided))


def _run_distributed(decided: DecidedJob) -> QuantumJobStatus:
    from qbackbone.core.cutting import CutPlanningError, execute_plan
    from qbackbone.core.pipeline.distributed import FleetRunner, cut_plan_for, finish_distributed

    run, reduced, qip = decided.run, decided.reduced, decided.qip
    fleet, seed = decided.fleet, decided.seed
    progress = run.progress
    policy = reduced.policy.spec
    if reduced.observables is None:
        return _classical_instead(decided, "a sampling job cannot be cut (cut reconstruction "
                                  "gives expectation values): give observables")
    with run.phase("cut_seconds"):
        try:
            plan = cut_plan_for(reduced.circuit, reduced.observables, fleet, qip.eligible,
                                policy.cutting, reduced.shots, seed)
        except CutPlanningError as err:
            return _classical_instead(decided, f"no cut plan fits: {err}")
    for line in plan.explanation:
        progress.step("cut", line)
    run.condition(ConditionType.SCHEDULED, True, Reason.PLANNED,
                  f"{len(plan.subcircuits)} subcircuits, sampling overhead {plan.overhead:.1f}")
    run.status.phase = Phase.RUNNING
    runner = FleetRunner(fleet, qip.eligible, policy.scheduler.shot_splitting, progress, seed)
    with run.phase("execute_seconds"):
        outcome = _guard(run, Reason.EXECUTION_FAILED,
                         lambda: execute_plan(plan, runner, seed=seed))
    return finish_distributed(decided, plan, outcome.values, outcome.std_errors, runner.records)


def plan_single_qpu(decided: DecidedJob) -> list[FragmentWork]:
    """Write the plan (one fragment per QPU share) and return the work to run."""
    run, qip = decided.run, decided.qip
    with run.phase("schedule_seconds"):
        run.status.plan = _plan(decided.reduced, qip, decided.assessments)
    run.condition(ConditionType.SCHEDULED, True, Reason.PLANNED,
                  f"{len(qip.shares)} fragment(s) on {', '.join(s.qpu for s in qip.shares)}")
    run.status.phase = Phase.RUNNING
    return [FragmentWork(s.qpu, s.shots, decided.compiled.circuits[s.qpu]) for s in qip.shares]


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


def merge_sampling_counts(per_qpu: Iterable[Sequence[Mapping[str, int]]]) -> dict[str, int]:
    """One histogram from each QPU's counts of a sampling job (its single circuit), sorted."""
    merged: dict[str, int] = {}
    for basis_counts in per_qpu:
        for key, n in basis_counts[0].items():
            merged[key] = merged.get(key, 0) + n
    return dict(sorted(merged.items()))


def _estimate(observable: str, per_qpu_counts: Sequence[Mapping[str, int]]) -> ExpectationValue:
    strata: list[Estimate] = [parity_estimate(c, observable) for c in per_qpu_counts]
    combined = combine_strata(strata)
    return ExpectationValue(observable=observable, value=round(combined.value, 6),
                            std_error=round(combined.std_error, 6))


def run_classical_fallback(decided: DecidedJob) -> ClassicalOutcome:
    """Run the fallback the QIP chose (statevector or MPS)."""
    run, reduced = decided.run, decided.reduced
    method = decided.context.classical_method or "statevector"
    run.status.phase = Phase.RUNNING
    run.progress.step("execute", f"classical fallback: {method} on "
                      f"{reduced.features.qubits} qubits")
    with run.phase("execute_seconds"):
        return _guard(run, Reason.EXECUTION_FAILED, lambda: run_classical(
            reduced.circuit, reduced.observables, reduced.shots, method, decided.seed))


def finish_classical(decided: DecidedJob, outcome: ClassicalOutcome) -> QuantumJobStatus:
    """The classical result in the same shape as the quantum one, verified."""
    run, reduced = decided.run, decided.reduced
    run.condition(ConditionType.EXECUTED, True, Reason.CLASSICAL_COMPLETED,
                  f"classical fallback ({outcome.method}) completed")
    result = Result(path="Classical", backends=[f"aer_{outcome.method}"],
                    shots=0 if outcome.values else reduced.shots, method=outcome.method)
    if outcome.values is not None and reduced.observables is not None:
        result.expectation_values = [ExpectationValue(observable=o, value=round(v, 9),
                                                      std_error=0.0)
                                     for o, v in zip(reduced.observables, outcome.values,
                                                     strict=True)]
    else:
        result.counts = dict(sorted((outcome.counts or {}).items()))
    run.status.result = result
    return verify_and_finish(run, reduced, NoiseProfile(((1.0, 1.0),)),
                             self_check=outcome.method == "statevector")


def verify_and_finish(run: JobRun, reduced: ReducedJob, noise: NoiseProfile,
                      self_check: bool = False) -> QuantumJobStatus:
    """Check the result against exact values (or physical bounds) with the noise allowance;
    Succeeded, or Failed with VerificationFailed. ``self_check``: the result came from the
    same exact simulation as the reference, so an exact comparison is labelled SelfCheck."""
    status = run.status
    result = status.result
    assert result is not None
    policy = reduced.policy.spec.verification
    no_exact = no_exact_reason(reduced.features.qubits, policy.exact_max_qubits, reduced.dynamic,
                               reduced.policy.spec.limits.statevector_qubits(copies=3))
    with run.phase("verify_seconds"):
        verification: Verification
        if result.expectation_values is not None and reduced.observables is not None:
            exact = (exact_expectations(reduced.circuit, reduced.observables)
                     if no_exact is None else None)
            verification = verify_expectations(result.expectation_values, exact, noise,
                                               policy.max_deviation_sigma, no_exact)
        else:
            dist = exact_distribution(reduced.circuit) if no_exact is None else None
            verification = verify_counts(result.counts or {}, dist, noise,
                                         policy.max_deviation_sigma, no_exact)
    if self_check and verification.method in ("ExactStatevector", "ExactDistribution"):
        verification.method = "SelfCheck"
        verification.details = ("self-check, no independent verification: the statevector "
                                "fallback computed the result by the same exact simulation as "
                                f"the reference; {verification.details}")
    status.verification = verification
    run.progress.step("verify", f"{verification.method}: "
                      f"{'passed' if verification.passed else 'FAILED'} ({verification.details})")
    if not verification.passed:
        run.condition(ConditionType.VERIFIED, False, Reason.DEVIATES, verification.details)
        return run.fail(Reason.VERIFICATION_FAILED,
                        f"the result did not pass {verification.method}: {verification.details}")
    reason = {"ExactStatevector": Reason.MATCHES_EXACT,
              "ExactDistribution": Reason.MATCHES_EXACT,
              "SelfCheck": Reason.SELF_CHECK}.get(verification.method,
                                                  Reason.WITHIN_PHYSICAL_BOUNDS)
    if verification.noisy and verification.method != "PhysicalBounds":
        reason = Reason.WITHIN_NOISE_BUDGET
    run.condition(ConditionType.VERIFIED, True, reason, verification.details)
    return conclude(run, reduced.deadline_remaining)


def conclude(run: JobRun, remaining: float | None) -> QuantumJobStatus:
    """A verified result: the deadline condition, then Succeeded."""
    status, result, verification = run.status, run.status.result, run.status.verification
    assert result is not None and verification is not None
    elapsed = time.perf_counter() - run.started
    if remaining is not None:
        met = elapsed <= remaining
        run.condition(ConditionType.DEADLINE_MET, met,
                      Reason.FINISHED_IN_TIME if met else Reason.DEADLINE_MISSED,
                      f"finished {elapsed:.2f}s after start with {remaining:.2f}s available")
    status.phase = Phase.SUCCEEDED
    run.condition(ConditionType.SUCCEEDED, True, Reason.COMPLETED,
                  f"{result.path} result verified by {verification.method}")
    return run.finish()
