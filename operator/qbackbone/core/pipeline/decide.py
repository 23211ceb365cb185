"""Reduce, assess every QPU and let the QIP decide: the DecidedJob every path starts from."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial

from qiskit import QuantumCircuit

from qbackbone.api.conditions import ConditionType, Phase
from qbackbone.api.mitigation import MitigationLevel
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import Decision
from qbackbone.core.classical.fallback import choose_method, estimate_seconds
from qbackbone.core.energy.model import classical_joules
from qbackbone.core.errors import JobFailure
from qbackbone.core.history.collect import problem_class
from qbackbone.core.learning import LearnedModel, LearnedView, apply_learning
from qbackbone.core.mitigation.cost import simulated_seconds
from qbackbone.core.mitigation.plan import MitigationPlan, choose_mitigation
from qbackbone.core.pipeline.assess import CompiledJob, Selection, assess_fleet
from qbackbone.core.pipeline.energy import fleet_power, result_joules
from qbackbone.core.pipeline.jobrun import JobRun
from qbackbone.core.pipeline.reduce import ReducedJob, reduce_job
from qbackbone.core.qip.engine import QIPDecision, decide
from qbackbone.core.qip.inputs import JobInputs, OperationalContext, QPUAssessment
from qbackbone.core.qip.network import network_urgency
from qbackbone.core.qpus.descriptor import QPUDescriptor
from qbackbone.core.qpus.fleet import QPU


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


def _decision_model(qip: QIPDecision, reduced: ReducedJob) -> Decision:
    return Decision(
        path=qip.path,
        policy=reduced.policy.metadata.name,
        policy_generation=reduced.policy.metadata.generation,
        reason=qip.reason, message=qip.message, eligible_qpus=qip.eligible,
        features=reduced.features.as_dict(), rules=qip.rules,
        estimated_energy_joules=qip.energy_joules,
    )


def mitigation_chooser(reduced: ReducedJob
                       ) -> Callable[[QPUDescriptor, Sequence[QuantumCircuit]], MitigationPlan]:
    """The mitigation a share of this job would get on a QPU: the strongest level the policy
    allows whose shot multiplier fits the deadline (the QPU alone) and the shot budget, and,
    on a simulated QPU, whose simulation fits the deadline and a third of maxRunSeconds."""
    policy, f = reduced.policy.spec, reduced.features
    slack, remaining = policy.operational.min_deadline_slack, reduced.deadline_remaining
    run_budget = policy.limits.max_run_seconds / 3.0

    def choose(d: QPUDescriptor, compiled: Sequence[QuantumCircuit]) -> MitigationPlan:
        operations = max((c.size() for c in compiled), default=0)

        def fits(level: MitigationLevel, multiplier: float) -> bool:
            if f.total_shots * multiplier > policy.hardware.shot_budget:
                return False
            seconds = d.setup_time + f.total_shots * multiplier * d.shot_time
            if d.provider != "ibm-runtime":  # simulated: the local run is what takes time
                simulated = simulated_seconds(level, f.qubits, operations, len(compiled),
                                              f.shots_per_basis)
                if simulated > run_budget:
                    return False
                seconds = max(seconds, simulated)
            return remaining is None or seconds + slack <= remaining

        return choose_mitigation(policy.mitigation, ideal=d.ideal,
                                 expectation=reduced.observables is not None, fits=fits)

    return choose


def decide_job(run: JobRun, fleet: Sequence[QPU], policies: Mapping[str, InvocationPolicy],
               seed: int | None = None, learned: LearnedModel | None = None) -> DecidedJob:
    """Reduce, assess every QPU, and let the QIP decide; JobFailure when refused."""
    run.status.phase = Phase.DECIDING
    with run.phase("reduce_seconds"):
        reduced = reduce_job(run.job, policies, run.now)
    f = reduced.features
    run.progress.step("reduce", f"{f.qubits} qubits, depth {f.depth}, {f.two_qubit_gates} "
                      f"two-qubit gates, {f.measured_bases} basis circuit(s) x {reduced.shots} "
                      "shots")
    return decide_reduced(run, reduced, fleet, seed, learned)


def decide_reduced(run: JobRun, reduced: ReducedJob, fleet: Sequence[QPU],
                   seed: int | None = None, learned: LearnedModel | None = None) -> DecidedJob:
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
        selection = Selection.of(job.spec.execution.qpu_selector, policy.hardware.qpu_selector)
        assessments = assess_fleet(reduced.measured_circuits, f.qubits, fleet,
                                   selection, run.now, compiled,
                                   mitigation_chooser(reduced))
        power = fleet_power(fleet)
        assessments = [replace(a, power=power.get(a.descriptor.name)) for a in assessments]
        view = LearnedView(assessments)
        if learned is not None and policy.learning.enabled:  # issue 20: corrected, with rules
            view = apply_learning(assessments, learned,
                                  problem_class(f.as_dict(), reduced.observables is None))
            assessments = view.assessments
        method = choose_method(f.qubits, policy.fallback, reduced.circuit,
                               policy.limits.statevector_qubits(copies=2))
        sampled = reduced.shots if reduced.observables is None else 0
        classical_seconds = estimate_seconds(method, f.qubits, f.size, sampled)
        urgency = network_urgency(policy.network_state, job.metadata.annotations, run.now)
        deadline = reduced.deadline_remaining  # an urgent job is decided with less of it
        if deadline is not None:
            deadline *= urgency.factor
        context = OperationalContext(
            mode=job.spec.execution.mode, deadline_remaining=deadline,
            classical_seconds=classical_seconds,
            classical_method=method, needs_control_flow=reduced.dynamic,
            classical_joules=None if classical_seconds is None
            else classical_joules(classical_seconds),
            quantum_pays=view.quantum_pays, quantum_pays_why=view.why)
        qip = decide(JobInputs(f, context, tuple(assessments)), policy)
        qip.rules[:0] = view.rules + urgency.rules
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
    run.energy_of = partial(result_joules, power=power, assessments=assessments,
                            bases=f.measured_bases)
    return DecidedJob(run, reduced, qip, assessments, compiled, context, fleet, seed)
