"""The Distributed path: cut the circuit, run subcircuits on the QPUs that fit, reconstruct."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from qiskit import QuantumCircuit

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.mitigation import MitigationLevel
from qbackbone.api.policy import CuttingOptions, IdealSimulators, ShotSplitting
from qbackbone.api.quantumjob import (
    ExpectationValue,
    Plan,
    PlannedFragment,
    PlannedSubcircuit,
    QuantumJobStatus,
    Result,
    RuleOutcome,
)
from qbackbone.core.circuits.features import two_qubit_depth
from qbackbone.core.cutting import (
    CutPlan,
    CutPlanningError,
    QPUCapacity,
    execute_plan,
    plan_cuts,
)
from qbackbone.core.cutting import unitary_part as cut_ready
from qbackbone.core.cutting.readout import MeasuredCounts
from qbackbone.core.errors import JobFailure
from qbackbone.core.execute.cut_readout import CutReadout
from qbackbone.core.execute.shots import finish_time, split_shots
from qbackbone.core.mitigation.readout import measured_qubits
from qbackbone.core.mitigation.residual import cut_model_text, cut_residual_systematic
from qbackbone.core.pipeline.classical import finish_classical, run_classical_fallback
from qbackbone.core.pipeline.decide import DecidedJob
from qbackbone.core.pipeline.finish import verify_and_finish
from qbackbone.core.pipeline.jobrun import as_job_failure
from qbackbone.core.pipeline.progress import Progress
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.core.qpus.fidelity import estimate_success_probability
from qbackbone.core.qpus.fleet import QPU
from qbackbone.core.verify.checks import NoiseProfile

DEFAULT_FIDELITY_GAP = 0.1  # the policy's default scheduler.splitFidelityGap


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


@dataclass(frozen=True)
class Fitting:
    """A QPU that fits a subcircuit after routing, its compilation and estimated fidelity."""

    qpu: QPU
    compiled: list[QuantumCircuit]
    fidelity: float


def _fidelity(qpu: QPU, compiled: Sequence[QuantumCircuit]) -> float:
    cal = qpu.descriptor.calibration
    if cal is None or qpu.descriptor.ideal:
        return 1.0
    return min(estimate_success_probability(c, cal) for c in compiled)


def fitting_candidates(fleet: Sequence[QPU], usable: Sequence[str], subcircuit: str,
                       circuits: Sequence[QuantumCircuit]) -> list[Fitting]:
    """Every usable QPU wide and deep enough for the circuits, in fleet order; JobFailure
    (CutInfeasible) when none fits after routing."""
    width = max(c.num_qubits for c in circuits)
    out, too_deep = [], []
    for qpu in fleet:
        d = qpu.descriptor
        if qpu.name not in usable or width > d.qubits:
            continue
        compiled = qpu.transpile(circuits)
        depth = max(two_qubit_depth(c) for c in compiled)
        if d.max_depth is None or depth <= d.max_depth:
            out.append(Fitting(qpu, compiled, _fidelity(qpu, compiled)))
        else:
            too_deep.append(f"{qpu.name} compiles it to two-qubit depth {depth} "
                            f"(max {d.max_depth})")
    if not out:
        raise JobFailure(
            Reason.CUT_INFEASIBLE,
            f"subcircuit {subcircuit} ({width} qubits) fits no usable QPU after routing: "
            + ("; ".join(too_deep) or "none is wide enough")
            + "; the plan's logical depth fit, so allow deeper QPUs (spec.maxDepth) or "
            "more of them")
    return out


def preferred(fitting: Sequence[Fitting], simulators: IdealSimulators = "Fallback",
              gap: float = DEFAULT_FIDELITY_GAP) -> list[Fitting]:
    """The QPUs a subcircuit should run on: ideal simulators only as ``simulators`` allows,
    then the most faithful QPU's noise class (both ideal or both noisy, fidelity within
    ``gap``), most faithful first; JobFailure(CutInfeasible) when only forbidden simulators
    fit."""
    noisy = [f for f in fitting if not f.qpu.descriptor.ideal]
    pool = noisy if simulators == "Forbidden" or (simulators == "Fallback" and noisy) \
        else list(fitting)
    if not pool:
        raise JobFailure(Reason.CUT_INFEASIBLE, "only ideal simulators fit the subcircuit and "
                         "the policy forbids them (hardware.idealSimulators Forbidden)")
    order = sorted(pool, key=lambda f: (-f.fidelity, f.qpu.descriptor.shot_time, f.qpu.name))
    best = order[0]
    return [f for f in order if f.qpu.descriptor.ideal == best.qpu.descriptor.ideal
            and best.fidelity - f.fidelity <= gap + 1e-12]


def fitting_qpus(fleet: Sequence[QPU], usable: Sequence[str], subcircuit: str,
                 circuits: Sequence[QuantumCircuit], simulators: IdealSimulators = "Fallback",
                 gap: float = DEFAULT_FIDELITY_GAP) -> list[tuple[QPU, list[QuantumCircuit]]]:
    """The usable QPUs a subcircuit should run on (``preferred``), each with its
    compilation, most faithful first; JobFailure(CutInfeasible) when none fits after
    routing."""
    chosen = preferred(fitting_candidates(fleet, usable, subcircuit, circuits), simulators, gap)
    return [(f.qpu, f.compiled) for f in chosen]


def split_circuit_shots(shots: Sequence[int], fractions: Sequence[float]) -> list[list[int]]:
    """Each circuit's shots over QPUs by their fraction of the subcircuit (the last QPU takes
    what rounding left), as :class:`FleetRunner` runs them; one list per QPU."""
    remaining = list(shots)
    out = []
    for index, fraction in enumerate(fractions):
        last = index == len(fractions) - 1
        mine = [r if last else min(r, round(n * fraction))
                for n, r in zip(shots, remaining, strict=True)]
        remaining = [r - m for r, m in zip(remaining, mine, strict=True)]
        out.append(mine)
    return out


def subcircuit_shares(total: int, fitting: Sequence[QPU],
                      splitting: bool) -> list[tuple[str, float]]:
    """(QPU, fraction of the subcircuit's shots) in the order of ``fitting`` (preferred
    first): the first QPU takes every shot without splitting, else shots split by speed."""
    if not splitting:
        return [(fitting[0].name, 1.0)]
    shares = split_shots(total, [q.descriptor for q in fitting], splitting)
    fraction = {s.qpu: s.shots / total for s in shares}
    return [(q.name, fraction[q.name]) for q in fitting if q.name in fraction]


@dataclass
class FragmentRecord:
    """One backend call: part of one subcircuit's circuits on one QPU."""

    subcircuit: str
    qpu: str
    backend: str
    shots: int
    fidelity: float
    started: float
    ended: float
    readout_fidelity: float = 1.0  # the part of ``fidelity`` readout correction takes back

    @property
    def residual_fidelity(self) -> float:
        """The estimated fidelity of what mitigation left (all of it when uncorrected)."""
        return min(1.0, self.fidelity / max(self.readout_fidelity, 1e-9))


@dataclass
class FleetRunner:
    """Runs each subcircuit on its preferred QPUs (``preferred``): the most faithful one
    takes every shot unless the policy splits them (``Always``, or ``WhenDeadlineNeeds``
    when the subcircuit's share of the deadline is too short for one QPU), then by speed over
    one noise class. ``rules`` say why each fitting QPU was or was not used; ``readout``
    gives noisy QPUs' counts their readout models (None: counts as read)."""

    fleet: Sequence[QPU]
    usable: Sequence[str]
    splitting: ShotSplitting
    progress: Progress
    seed: int | None = None
    simulators: IdealSimulators = "Fallback"
    gap: float = DEFAULT_FIDELITY_GAP
    budget: float | None = None  # QPU seconds the deadline leaves for every subcircuit
    planned: dict[str, int] = field(default_factory=dict)  # subcircuit -> shots, for budget
    clock_zero: float = field(default_factory=time.perf_counter)
    records: list[FragmentRecord] = field(default_factory=list)
    rules: list[RuleOutcome] = field(default_factory=list)
    spent: float = 0.0  # QPU seconds (time model) of the subcircuits run so far
    done: set[str] = field(default_factory=set)
    readout: CutReadout | None = None

    def _split(self, subcircuit: str, total: int, first: QPU) -> bool:
        """Whether this subcircuit's shots are split (over its preferred QPUs)."""
        if self.splitting != "WhenDeadlineNeeds":
            return self.splitting == "Always"
        if self.budget is None:
            return False
        left = total + sum(n for s, n in self.planned.items()
                           if s not in self.done and s != subcircuit)
        allotted = (self.budget - self.spent) * total / max(left, 1)
        return finish_time(first.descriptor, total) > allotted

    def _record(self, subcircuit: str, everyone: Sequence[Fitting], chosen: Sequence[Fitting],
                used: set[str], splits: bool) -> None:
        """One ``subcircuitPlacement`` rule per QPU that fits the subcircuit."""
        names = {f.qpu.name for f in chosen}
        noisy = any(not f.qpu.descriptor.ideal for f in everyone)
        threshold = (f"most faithful noise class (fidelity gap {self.gap:g}); "
                     f"idealSimulators {self.simulators}; shotSplitting {self.splitting}")
        for f in everyone:
            kind = ("ideal simulator" if f.qpu.descriptor.ideal
                    else f"estimated fidelity {f.fidelity:.3g}")
            why = ("runs " + ("a share" if splits else "every shot") if f.qpu.name in used
                   else "same noise class, not needed" if f.qpu.name in names
                   else "held back: a noisy QPU fits" if f.qpu.descriptor.ideal and noisy
                   and self.simulators == "Fallback"
                   else "forbidden" if f.qpu.descriptor.ideal and self.simulators == "Forbidden"
                   else "less faithful than the chosen noise class")
            self.rules.append(RuleOutcome(
                name="subcircuitPlacement", value=f"{subcircuit}: {kind}, {why}",
                threshold=threshold, passed=f.qpu.name in used, qpu=f.qpu.name))

    def run(self, subcircuit: str, circuits: Sequence[QuantumCircuit],
            shots: Sequence[int]) -> list[MeasuredCounts]:
        """Counts per circuit, one part per QPU that ran a share of its shots."""
        everyone = fitting_candidates(self.fleet, self.usable, subcircuit, circuits)
        chosen = preferred(everyone, self.simulators, self.gap)
        fitting = [(f.qpu, f.compiled) for f in chosen]
        compiled_by = {q.name: c for q, c in fitting}
        splits = self._split(subcircuit, sum(shots), chosen[0].qpu)
        shares = subcircuit_shares(sum(shots), [q for q, _ in fitting], splits)
        self._record(subcircuit, everyone, chosen, {n for n, _ in shares}, splits)
        by_name = {q.name: q for q, _ in fitting}
        self.done.add(subcircuit)
        self.spent += max(finish_time(by_name[n].descriptor, round(sum(shots) * f))
                          for n, f in shares)
        merged = [MeasuredCounts() for _ in circuits]
        split = split_circuit_shots(shots, [f for _, f in shares])
        for (name, _), mine in zip(shares, split, strict=True):
            qpu, compiled = by_name[name], compiled_by[name]
            picked = [i for i, m in enumerate(mine) if m > 0]
            if not picked:
                continue
            self.progress.step("execute", f"{subcircuit} on {qpu.name}: {len(picked)} "
                               f"circuit(s), {sum(mine)} shots")
            start = time.perf_counter() - self.clock_zero
            counts = qpu.executor.run([compiled[i] for i in picked], [mine[i] for i in picked],
                                      derive_seed(self.seed, subcircuit, qpu.name,
                                                  len(self.records)))
            end = time.perf_counter() - self.clock_zero
            ran = [compiled[i] for i in picked]
            measured = [(c.num_clbits, measured_qubits(c)) for c in ran]
            models = (self.readout.models_of(qpu, measured) if self.readout is not None
                      else [None] * len(picked))
            for i, c, model in zip(picked, counts, models, strict=True):
                merged[i].parts.append((c, model))
            fidelity = 1.0 if qpu.descriptor.calibration is None else min(
                estimate_success_probability(c, qpu.descriptor.calibration) for c in ran)
            read = (self.readout.readout_fidelity(qpu, measured)
                    if self.readout is not None else 1.0)
            self.records.append(FragmentRecord(subcircuit, qpu.name,
                                               qpu.descriptor.backend_name, sum(mine),
                                               fidelity, start, end, read))
        return merged


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
