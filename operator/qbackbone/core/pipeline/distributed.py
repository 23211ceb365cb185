"""The Distributed path: cut the circuit, run subcircuits on the QPUs that fit, reconstruct."""

from __future__ import annotations

from collections.abc import Sequence

from qiskit import QuantumCircuit

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.mitigation import MitigationLevel
from qbackbone.api.policy import CuttingOptions, IdealSimulators
from qbackbone.api.quantumjob import (
    ExpectationValue,
    Plan,
    PlannedFragment,
    PlannedSubcircuit,
    QuantumJobStatus,
    Result,
)
from qbackbone.core.cutting import (
    CutPlan,
    CutPlanningError,
    QPUCapacity,
    execute_plan,
    plan_cuts,
)
from qbackbone.core.cutting import unitary_part as cut_ready
from qbackbone.core.errors import JobFailure
from qbackbone.core.execute.cut_readout import CutReadout
from qbackbone.core.mitigation.residual import cut_model_text, cut_residual_systematic
from qbackbone.core.pipeline.classical import finish_classical, run_classical_fallback
from qbackbone.core.pipeline.decide import DecidedJob
from qbackbone.core.pipeline.finish import verify_and_finish
from qbackbone.core.pipeline.fleet_runner import (
    DEFAULT_FIDELITY_GAP,
    FleetRunner,
    FragmentRecord,
)
from qbackbone.core.pipeline.jobrun import as_job_failure
from qbackbone.core.qpus.fleet import QPU
from qbackbone.core.verify.checks import NoiseProfile


def capacities(fleet: Sequence[QPU], usable: Sequence[str]) -> list[QPUCapacity]:
    """What the cut planner may target: the usable QPUs' width, feasible depth and median
    errors (for the fidelity of a placement)."""
    names = set(usable)
    out = []
    for q in fleet:
        if q.name not in names:
            continue
        d, cal = q.descriptor, q.descriptor.calibration
        errors = {} if cal is None else {
            "one_qubit_error": cal.median_error("1q") or 0.0,
            "two_qubit_error": cal.median_error("2q") or 0.0,
            "readout_error": cal.median_error("readout") or 0.0}
        out.append(QPUCapacity(q.name, d.qubits, d.max_depth, ideal=d.ideal, **errors))
    return out


def cut_plan_for(circuit: QuantumCircuit, observables: Sequence[str], fleet: Sequence[QPU],
                 usable: Sequence[str], cutting: CuttingOptions, shots: int,
                 seed: int | None, simulators: IdealSimulators = "Fallback",
                 gap: float = DEFAULT_FIDELITY_GAP) -> CutPlan:
    """The cut plan of least effective overhead (gamma^2 / fidelity^2) within the policy's
    limits, ideal simulators running a subcircuit as ``simulators`` (the policy's
    ``hardware.idealSimulators``) allows, each subcircuit eligible on its most faithful
    QPU's noise class (``gap``: ``scheduler.splitFidelityGap``); CutPlanningError when none
    fits."""
    return plan_cuts(cut_ready(circuit), observables, capacities(fleet, usable),
                     cutting.allowed_cut_kinds, cutting.max_sampling_overhead,
                     cutting.max_subcircuits, shots, seed=seed, simulators=simulators,
                     fidelity_gap=gap)


def plan_status(plan: CutPlan, records: Sequence[FragmentRecord]) -> Plan:
    """status.plan for a cut job: subcircuits with precedence, fragments as they ran."""
    return Plan(
        subcircuits=[PlannedSubcircuit(name=s.name, qubits=s.qubits, depth=s.two_qubit_depth,
                                       two_qubit_depth=s.two_qubit_depth, shots=s.shots,
                                       depends_on=list(s.depends_on))
                     for s in plan.subcircuits],
        fragments=[PlannedFragment(name=f"{r.subcircuit}-{r.qpu}-{i}", subcircuit=r.subcircuit,
                                   qpu=r.qpu, backend=r.backend, shots=r.shots,
                                   estimated_fidelity=round(r.fidelity, 4),
                                   planned_start_seconds=round(r.started, 4),
                                   planned_end_seconds=round(r.ended, 4))
                   for i, r in enumerate(records)],
        estimated_makespan_seconds=round(max((r.ended for r in records), default=0.0), 4),
        cut_kinds=plan.cut_kinds, gamma=round(plan.gamma, 6),
        sampling_overhead=round(plan.overhead, 6), qpd_terms=plan.qpd_terms,
        rejected_candidates=rejected_candidates(plan),
    )


MAX_LISTED_CANDIDATES = 10


def rejected_candidates(plan: CutPlan) -> list[str]:
    """One line per cut plan the planner found but did not use, with the reason."""
    lines = []
    for c in plan.candidates:
        if c.verdict == "chosen":
            continue
        overhead = f"{c.overhead:.4g}" if c.overhead >= 0 else "unbounded"
        lines.append(f"{c.method} ({'+'.join(c.kinds) or 'no cuts'}) at <= {c.width} qubits, "
                     f"{c.cuts} cut(s), overhead {overhead}, {c.qpd_terms} QPD term(s): "
                     f"{c.verdict}")
    if len(lines) > MAX_LISTED_CANDIDATES:
        more = len(lines) - MAX_LISTED_CANDIDATES
        lines = [*lines[:MAX_LISTED_CANDIDATES], f"and {more} more"]
    return lines


def finish_distributed(decided: DecidedJob, plan: CutPlan, values: Sequence[float],
                       std_errors: Sequence[float], records: Sequence[FragmentRecord],
                       readout: CutReadout | None = None) -> QuantumJobStatus:
    """The cut job's status from its reconstructed values and the fragments that ran: plan,
    result, verification against each value's stdError and systematicError (the residual
    model of what readout correction, ``readout``, left)."""
    run, reduced = decided.run, decided.reduced
    status = run.status
    assert reduced.observables is not None
    status.plan = plan_status(plan, records)
    run.condition(ConditionType.EXECUTED, True, Reason.FRAGMENTS_COMPLETED,
                  f"{len(records)} fragment(s) over {len(plan.subcircuits)} subcircuits")
    status.phase = Phase.RECONSTRUCTING
    total = sum(r.shots for r in records)
    noisy = joint_fidelity(records) < 1.0
    level: MitigationLevel = "Readout" if readout is not None and readout.used else "None"
    residual = joint_fidelity(records, residual=True)
    method = ("cut fragments, readout-corrected shot by shot" if level == "Readout"
              else "cut fragments, unmitigated")
    status.result = Result(
        path="Distributed", shots=total, qpus=sorted({r.qpu for r in records}),
        backends=sorted({r.backend for r in records}),
        expectation_values=[
            ExpectationValue(observable=o, value=round(v, 6), std_error=round(e, 6),
                             systematic_error=round(cut_residual_systematic(level, residual, v),
                                                    6) if noisy else 0.0,
                             method=f"{method}; systematic from the cut residual-bias model"
                             if noisy else None)
            for o, v, e in zip(reduced.observables, values, std_errors, strict=True)
        ],
        ideal_simulator=not noisy,
    )
    if noisy:
        noisy_qpus = sorted({r.qpu for r in records if r.fidelity < 1.0})
        report = (readout or CutReadout(reduced.policy.spec.mitigation, run.now)).report(
            noisy_qpus, residual, cut_model_text(level))
        status.result.mitigation = [report]
    noise = NoiseProfile(tuple((r.shots / total, r.residual_fidelity) for r in records),
                         amplification=plan.overhead ** 0.5, systematic_reported=noisy)
    return verify_and_finish(run, reduced, noise)


def joint_fidelity(records: Sequence[FragmentRecord], residual: bool = False) -> float:
    """Product over subcircuits of their shot-weighted estimated success probability: how
    much of a reconstructed value survives the noise of every QPU that ran a part of it
    (``residual``: the noise readout correction left)."""
    by_sub: dict[str, list[FragmentRecord]] = {}
    for r in records:
        by_sub.setdefault(r.subcircuit, []).append(r)
    joint = 1.0
    for parts in by_sub.values():
        shots = sum(r.shots for r in parts)
        fidelity = [r.residual_fidelity if residual else r.fidelity for r in parts]
        joint *= (sum(r.shots * f for r, f in zip(parts, fidelity, strict=True)) / shots
                  if shots else min(fidelity))
    return joint


def classical_instead(decided: DecidedJob, why: str) -> None:
    """Turn the Distributed decision into Classical when cutting cannot serve the job and the
    policy's fallback can in time; JobFailure(CutInfeasible, why) otherwise, and always when
    the job asked for execution.mode Distributed (a requested mode is honoured or fails)."""
    run, context = decided.run, decided.context
    fallback = decided.reduced.policy.spec.fallback
    if context.mode == "Distributed":
        raise JobFailure(Reason.CUT_INFEASIBLE, f"execution.mode Distributed was requested but "
                         f"{why}, so it cannot be honoured (mode Auto would allow the "
                         "classical fallback)")
    in_time = context.deadline_remaining is None or (
        context.classical_seconds or 0.0) <= context.deadline_remaining
    if not fallback.enabled or context.classical_method is None or not in_time:
        raise JobFailure(Reason.CUT_INFEASIBLE, why)
    decision = run.status.decision
    assert decision is not None
    decision.path = "Classical"
    decision.reason = Reason.CLASSICAL_SELECTED
    decision.message = f"{why}; running the classical fallback ({context.classical_method})"
    run.condition(ConditionType.DECIDED, True, Reason.CLASSICAL_SELECTED, decision.message)
    run.progress.step("decide", decision.message)


def _fall_back_to_classical(decided: DecidedJob, why: str) -> QuantumJobStatus:
    """When cutting cannot serve the job, the fallback may; otherwise the job fails with why."""
    classical_instead(decided, why)
    return finish_classical(decided, run_classical_fallback(decided))


def run_distributed(decided: DecidedJob) -> QuantumJobStatus:
    """Cut, run the subcircuits on the fleet and reconstruct; the fallback when none fits."""
    run, reduced, qip = decided.run, decided.reduced, decided.qip
    fleet, seed = decided.fleet, decided.seed
    progress = run.progress
    policy = reduced.policy.spec
    if reduced.observables is None:
        return _fall_back_to_classical(decided, "a sampling job cannot be cut (cut "
                                       "reconstruction gives expectation values): give "
                                       "observables")
    with run.phase("cut_seconds"):
        try:
            plan = cut_plan_for(reduced.circuit, reduced.observables, fleet, qip.eligible,
                                policy.cutting, reduced.shots, seed,
                                policy.hardware.ideal_simulators,
                                policy.scheduler.split_fidelity_gap)
        except CutPlanningError as err:
            return _fall_back_to_classical(decided, f"no cut plan fits: {err}")
    for line in plan.explanation:
        progress.step("cut", line)
    run.condition(ConditionType.SCHEDULED, True, Reason.PLANNED,
                  f"{len(plan.subcircuits)} subcircuits, sampling overhead {plan.overhead:.1f}")
    run.status.phase = Phase.RUNNING
    remaining = decided.context.deadline_remaining
    runner = FleetRunner(
        fleet, qip.eligible, policy.scheduler.shot_splitting_mode, progress, seed,
        simulators=policy.hardware.ideal_simulators, gap=policy.scheduler.split_fidelity_gap,
        budget=None if remaining is None
        else remaining - policy.operational.min_deadline_slack,
        planned={s.name: s.shots for s in plan.subcircuits},
        readout=CutReadout(policy.mitigation, run.now, seed))
    try:
        with run.phase("execute_seconds"):
            outcome = as_job_failure(run, Reason.EXECUTION_FAILED,
                                     lambda: execute_plan(plan, runner, seed=seed))
    except JobFailure as err:
        # A subcircuit whose logical depth fit but whose routed depth does not is found
        # only when it is compiled, before anything ran: the fallback may still serve it.
        if err.reason != Reason.CUT_INFEASIBLE or runner.records:
            raise
        return _fall_back_to_classical(decided, err.message)
    if run.status.decision is not None:
        run.status.decision.rules += runner.rules
    return finish_distributed(decided, plan, outcome.values, outcome.std_errors, runner.records,
                              runner.readout)
