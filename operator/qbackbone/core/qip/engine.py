"""The QIP as a pure function: (features, context, QPU states, policy) -> decision."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from qbackbone.api.conditions import Reason
from qbackbone.api.policy import InvocationPolicySpec
from qbackbone.api.quantumjob import RuleOutcome
from qbackbone.core.classical.fallback import describe_limits
from qbackbone.core.execute.shots import ShotShare
from qbackbone.core.qip.energy import placement_joules, qpu_joules, within_budget
from qbackbone.core.qip.inputs import JobInputs, QPUAssessment
from qbackbone.core.qip.placement import (
    Candidate,
    Demand,
    Placement,
    place,
    record_placement_rules,
    record_simulator_rules,
    simulator_pools,
)
from qbackbone.core.qpus.descriptor import QPUDescriptor


@dataclass
class QIPDecision:
    """The QIP's answer: a path (or a refusal reason), the QPUs, and every rule evaluated."""

    path: str | None
    reason: Reason
    message: str
    eligible: list[str] = field(default_factory=list)
    shares: list[ShotShare] = field(default_factory=list)
    rules: list[RuleOutcome] = field(default_factory=list)
    energy_joules: float | None = None  # estimate of the chosen path (None: not known yet)

    @property
    def refused(self) -> bool:
        """True when no path was chosen."""
        return self.path is None


def record_rule(rules: list[RuleOutcome], name: str, value: float | str | bool | None,
                threshold: float | str | bool | None, passed: bool,
                qpu: str | None = None) -> bool:
    """Append one evaluated rule to ``rules``; returns whether it passed."""
    rules.append(RuleOutcome(name=name, value=value, threshold=threshold, passed=passed, qpu=qpu))
    return passed


def _feature_rules(inputs: JobInputs, policy: InvocationPolicySpec,
                   rules: list[RuleOutcome]) -> list[str]:
    """Job-level rules; returns the names of those that failed."""
    f, b = inputs.features, policy.features
    checks = [
        ("qubitsAtLeast", f.qubits, b.min_qubits, f.qubits >= b.min_qubits),
        ("qubitsAtMost", f.qubits, b.max_qubits, f.qubits <= b.max_qubits),
        ("twoQubitGatesAtMost", f.two_qubit_gates, b.max_two_qubit_gates,
         f.two_qubit_gates <= b.max_two_qubit_gates),
        ("depthAtMost", f.depth, b.max_depth, f.depth <= b.max_depth),
        ("shotBudget", f.total_shots, policy.hardware.shot_budget,
         f.total_shots <= policy.hardware.shot_budget),
    ]
    return [name for name, value, bound, ok in checks
            if not record_rule(rules, name, value, bound, ok)]


def _qpu_rules(q: QPUAssessment, inputs: JobInputs, policy: InvocationPolicySpec,
               rules: list[RuleOutcome]) -> tuple[bool, bool]:
    """Per-QPU rules; returns (eligible, too_small) where too_small means width or depth."""
    d = q.descriptor
    ok = record_rule(rules, "selected", q.selected, True, q.selected, d.name)
    ok &= record_rule(rules, "ready", q.ready and not d.cordoned, True, q.ready and not d.cordoned,
                      d.name)
    fits = record_rule(rules, "qubitsFit", inputs.features.qubits, d.qubits,
                       inputs.features.qubits <= d.qubits, d.name)
    ok &= fits
    if not fits:
        return False, True
    if q.compile_error is not None:
        record_rule(rules, "compiles", q.compile_error, True, False, d.name)
        return False, False
    depth_ok = d.max_depth is None or (q.two_qubit_depth or 0) <= d.max_depth
    ok &= record_rule(rules, "twoQubitDepthFits", q.two_qubit_depth, d.max_depth, depth_ok, d.name)
    fid = q.estimated_fidelity if q.estimated_fidelity is not None else 1.0
    target = policy.operational.min_estimated_fidelity
    fid_ok = record_rule(rules, "estimatedFidelity", round(fid, 4), target, fid >= target, d.name)
    ok &= fid_ok
    queue_ok = d.queue_depth <= policy.hardware.max_queue_depth
    ok &= record_rule(rules, "queueDepth", d.queue_depth, policy.hardware.max_queue_depth, queue_ok,
                      d.name)
    max_age = policy.hardware.max_calibration_age
    if max_age is not None and q.calibration_age_seconds is not None:
        ok &= record_rule(rules, "calibrationAge", round(q.calibration_age_seconds), max_age,
                          q.calibration_age_seconds <= max_age, d.name)
    if inputs.context.needs_control_flow:
        ok &= record_rule(rules, "supportsControlFlow", d.supports_control_flow, True,
                          d.supports_control_flow, d.name)
    budget = policy.operational.energy_budget_joules
    joules = qpu_joules(q, inputs.features.shots_per_basis, inputs.features.measured_bases)
    if budget is not None and joules is not None:
        ok &= record_rule(rules, "energyBudget", round(joules, 3), budget,
                          within_budget(joules, budget), d.name)
    return ok, not depth_ok or not fid_ok


def decide(inputs: JobInputs, policy: InvocationPolicySpec) -> QIPDecision:
    """Choose SingleQPU, Distributed or Classical, or refuse, recording every rule."""
    rules: list[RuleOutcome] = []
    ctx = inputs.context
    failed_features = _feature_rules(inputs, policy, rules)
    forbidden = [q for q in inputs.qpus
                 if q.descriptor.ideal and policy.hardware.ideal_simulators == "Forbidden"]
    for q in forbidden:  # as if absent: they neither run the job nor stop it being cut
        record_rule(rules, "idealSimulator", "hardware.idealSimulators Forbidden", "never",
                    False, q.descriptor.name)
    assessed = [(q, *_qpu_rules(q, inputs, policy, rules)) for q in inputs.qpus
                if q not in forbidden]
    eligible = [q for q, ok, _ in assessed if ok]
    slack = policy.operational.min_deadline_slack
    classical_ok = policy.fallback.enabled and ctx.classical_seconds is not None
    budget = policy.operational.energy_budget_joules
    if classical_ok and budget is not None and ctx.classical_joules is not None:
        classical_ok = record_rule(rules, "classicalEnergyBudget",
                                   round(ctx.classical_joules, 3), budget,
                                   within_budget(ctx.classical_joules, budget))
    classical_in_time = classical_ok and (
        ctx.deadline_remaining is None or (ctx.classical_seconds or 0.0) <= ctx.deadline_remaining
    )
    record_rule(rules, "classicalFeasible", ctx.classical_method or "none", "fallback enabled",
                classical_ok)

    def classical(reason_text: str, refusal: Reason = Reason.NO_ELIGIBLE_QPU) -> QIPDecision:
        if classical_in_time:
            return QIPDecision("Classical", Reason.CLASSICAL_SELECTED,
                               f"{reason_text}; running the classical fallback "
                               f"({ctx.classical_method})", rules=rules,
                               energy_joules=ctx.classical_joules)
        if classical_ok:
            return QIPDecision(None, Reason.DEADLINE_INFEASIBLE,
                               f"{reason_text}, and the classical fallback needs about "
                               f"{ctx.classical_seconds:.1f}s but only "
                               f"{ctx.deadline_remaining:.1f}s remain", rules=rules)
        why = ("the policy disables the fallback" if not policy.fallback.enabled
               else describe_limits(inputs.features.qubits, policy.fallback,
                                    policy.limits.statevector_qubits(copies=2)))
        return QIPDecision(None, refusal, f"{reason_text}, and {why}", rules=rules)

    def instead(reason_text: str, refusal: Reason = Reason.NO_ELIGIBLE_QPU) -> QIPDecision:
        """The fallback for Auto; a requested quantum mode is refused rather than replaced."""
        if ctx.mode in REQUESTED_QUANTUM_MODES:
            return honour_or_refuse(ctx.mode, reason_text, refusal, rules)
        return classical(reason_text, refusal)

    if ctx.mode == "Classical":
        return classical("the job asks for execution.mode Classical", Reason.CLASSICAL_INFEASIBLE)
    if failed_features:
        return instead(f"the job is outside the policy's quantum region "
                       f"({', '.join(failed_features)})", Reason.CLASSICAL_INFEASIBLE)
    if ctx.quantum_pays is False and ctx.mode == "Auto" and classical_in_time:
        return classical(f"learning: the quantum path did not pay for this problem class "
                         f"({ctx.quantum_pays_why})")
    if eligible and ctx.mode in ("Auto", "SingleQPU"):
        for q in eligible:
            record_rule(rules, "mitigation", q.mitigation.level,
                        f"x{q.mitigation.shot_multiplier:g} shots", True, q.descriptor.name)
        placement, ideal_note = _place_single(inputs, policy, eligible, rules)
        makespan = placement.makespan
        record_rule(rules, "deadlineSlack",
                    None if ctx.deadline_remaining is None
                    else round(ctx.deadline_remaining - makespan, 3),
                    slack, placement.in_time)
        if placement.in_time:
            return QIPDecision(
                "SingleQPU", Reason.QUANTUM_SELECTED,
                f"{placement.why}{ideal_note}; estimated {makespan:.2f}s",
                eligible=placement.peers, shares=placement.shares, rules=rules,
                energy_joules=placement_joules(placement.shares, eligible,
                                               inputs.features.measured_bases))
        late = (f"the QPUs need about {makespan:.1f}s plus {slack:.1f}s slack, more than the "
                f"{ctx.deadline_remaining:.1f}s left before the deadline ({placement.why})")
        if ctx.mode == "SingleQPU":
            return honour_or_refuse(ctx.mode, late, Reason.DEADLINE_INFEASIBLE, rules)
        return classical(late)
    # Only the QPUs the job may use decide whether cutting helps: one the job's qpuSelector
    # leaves out, or that is not Ready, neither runs a part nor stops the job being cut.
    usable_assessed = [(q, ok, small) for q, ok, small in assessed if q.selected and q.ready]
    too_small_everywhere = bool(usable_assessed) and all(
        small for _, ok, small in usable_assessed if not ok)
    if policy.cutting.enabled and too_small_everywhere and ctx.mode in ("Auto", "Distributed"):
        usable = [q.descriptor for q, _, _ in usable_assessed]
        rule = policy.hardware.ideal_simulators
        for d in usable:
            if d.ideal:
                record_rule(rules, "idealSimulator", f"hardware.idealSimulators {rule}",
                            CUT_SIMULATOR_USE[rule], True, d.name)
        return QIPDecision(
            "Distributed", Reason.QUANTUM_SELECTED,
            "no single QPU can take the circuit (width, depth or fidelity); cutting is allowed",
            eligible=[d.name for d in usable], rules=rules)
    if not assessed:
        return instead("the fleet has no QPUs" + (
            " the policy lets it use (hardware.idealSimulators Forbidden excludes "
            f"{', '.join(q.descriptor.name for q in forbidden)})" if forbidden else ""))
    if ctx.mode == "SingleQPU":
        return instead(f"no single QPU is eligible ({failed_qpu_rules(rules)})")
    if ctx.mode == "Distributed":
        if not policy.cutting.enabled:
            return instead("the policy forbids cutting", Reason.CUT_INFEASIBLE)
        return instead(f"some QPUs fail rules that cutting cannot fix ({failed_qpu_rules(rules)})")
    why = "no QPU is eligible"
    if not policy.cutting.enabled:
        why += " and the policy forbids cutting"
    return classical(why)


REQUESTED_QUANTUM_MODES = ("SingleQPU", "Distributed")

CUT_SIMULATOR_USE = {
    "Fallback": "runs a subcircuit only when no noisy QPU fits it",
    "Allowed": "competes with noisy QPUs for every subcircuit",
}


def _place_single(inputs: JobInputs, policy: InvocationPolicySpec,
                  eligible: list[QPUAssessment], rules: list[RuleOutcome],
                  ) -> tuple[Placement, str]:
    """The placement over the eligible QPUs (not empty; forbidden simulators already left
    out): noisy QPUs first, ideal simulators as the policy allows; rules recorded."""
    ctx, f = inputs.context, inputs.features
    slack = policy.operational.min_deadline_slack
    job = Demand(shots=f.shots_per_basis, bases=f.measured_bases,
                 deadline=None if ctx.deadline_remaining is None
                 else ctx.deadline_remaining - slack,
                 splitting=policy.scheduler.shot_splitting_mode,
                 gap=policy.scheduler.split_fidelity_gap)
    candidates = [Candidate(mitigated_time(q), 1.0 if q.descriptor.ideal
                            else (q.estimated_fidelity if q.estimated_fidelity is not None
                                  else 1.0))
                  for q in eligible]
    rule = policy.hardware.ideal_simulators
    pools = simulator_pools(candidates, rule)
    pool, why = pools[0]
    placement = place(pool, job)
    if not placement.in_time and len(pools) > 1:  # the noisy QPUs are all too late
        record_placement_rules(rules, pool, placement, job, final=False)
        pool, why = pools[1]
        placement = place(pool, job)
    record_simulator_rules(rules, candidates, rule, pool)
    record_placement_rules(rules, pool, placement, job)
    used = [c for c in pool if c.ideal and c.name in {s.qpu for s in placement.shares}]
    note = ""
    if used:
        names = ", ".join(c.name for c in used)
        note = (f" (ideal simulator {names}: no noise, the result is labelled idealSimulator; "
                + (f"hardware.idealSimulators Fallback and {why})" if why
                   else f"hardware.idealSimulators {rule})"))
    return placement, note


def mitigated_time(q: QPUAssessment) -> QPUDescriptor:
    """The QPU as the time model sees it: each requested shot costs the mitigation's
    multiplier in shots run."""
    d = q.descriptor
    multiplier = q.mitigation.shot_multiplier
    return d if multiplier == 1.0 else replace(d, shot_time=d.shot_time * multiplier)


def failed_qpu_rules(rules: list[RuleOutcome]) -> str:
    """The QPU rules that failed, per QPU: 'a: qubitsFit 6 > 3; b: ready'."""
    failed: dict[str, list[str]] = {}
    for r in rules:
        if r.qpu is not None and not r.passed:
            plain = r.value is None or isinstance(r.value, bool)
            failed.setdefault(r.qpu, []).append(
                r.name if plain else f"{r.name} {r.value} vs {r.threshold}")
    listed = "; ".join(f"{q}: {', '.join(names)}" for q, names in failed.items())
    return listed or "no QPU rule failed"


def honour_or_refuse(mode: str, why: str, reason: Reason,
                     rules: list[RuleOutcome]) -> QIPDecision:
    """A job that asked for a quantum mode no plan can honour fails with the reason; the
    classical fallback serves only Auto (and Classical) jobs."""
    if reason == Reason.CLASSICAL_INFEASIBLE:  # outside the quantum region: no QPU may take it
        reason = Reason.NO_ELIGIBLE_QPU
    return QIPDecision(None, reason, f"execution.mode {mode} was requested but {why}, so it "
                       "cannot be honoured (mode Auto would allow the classical fallback)",
                       rules=rules)
