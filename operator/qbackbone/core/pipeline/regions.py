"""A problem job decomposed by region: each regional sub-QUBO through the single-QPU QAOA path.

When the policy's optimization.decomposition is enabled and a trafficEngineering QUBO is wider
than every QPU may take (the widest QPU, and maxVariables), the job is split by region
(core/optimize/decompose). Every sub-QUBO goes through the same QIP as any QAOA circuit, on
the QPUs at its region's site when they fit, else the whole fleet: sampled on the QPU the QIP
picks (readout-mitigated where the QPU is noisy and the plan says so), or solved classically
when the QIP says Classical. The whole decision is then verified: every constraint on the
real numbers, link loads recomputed from the routes alone, and CP-SAT on the whole problem
in the same time for the ratio.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.decomposition import (
    DecompositionReport,
    ReferenceReport,
    RegionReport,
    RoundReport,
)
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import (
    Decision,
    QuantumJob,
    QuantumJobStatus,
    Result,
    RuleOutcome,
    Verification,
)
from qbackbone.core.errors import JobFailure
from qbackbone.core.optimize.decompose import (
    BlockResult,
    Decomposition,
    Reference,
    Region,
    Settings,
    SubProblem,
    cp_sat_reference,
    decompose_and_solve,
    make_regions,
    ratio,
    recompute_loads,
)
from qbackbone.core.optimize.decompose.regions import ATTRIBUTE, crosses_border
from qbackbone.core.optimize.features import qubo_features
from qbackbone.core.optimize.problem import ProblemError, ProblemTooLarge, ReducedProblem
from qbackbone.core.optimize.solve import Candidate, best_of_samples, refine, report
from qbackbone.core.optimize.solve import solve_classically as solve_qubo_classically
from qbackbone.core.optimize.topology import ConfigMapReader
from qbackbone.core.optimize.traffic import TrafficProblem, reduce_traffic
from qbackbone.core.pipeline.decide import DecidedJob
from qbackbone.core.pipeline.finish import conclude, merge_sampling_counts
from qbackbone.core.pipeline.jobrun import JobRun
from qbackbone.core.pipeline.progress import SilentProgress
from qbackbone.core.pipeline.reduce import deadline_remaining, resolve_policy
from qbackbone.core.pipeline.single import (
    ShareOutcomes,
    _noise_profile,
    _readout_mitigate,
    execute_single_qpu,
)
from qbackbone.core.qip.engine import record_rule
from qbackbone.core.qpus.fleet import QPU

REGION_CLASSICAL_SECONDS = 2.0  # a region the QIP sends classical: exact within this


@dataclass
class DecompositionPlan:
    """A job that goes decomposed: its whole problem, the sub-QUBO width and the regions."""

    whole: TrafficProblem
    limit: int  # widest QUBO a QPU may take (the widest QPU and maxVariables)
    width: int
    regions: list[Region]


def plan_decomposition(job: QuantumJob, policy: InvocationPolicy, fleet: Sequence[QPU],
                       read_config_map: ConfigMapReader | None = None,
                       seed: int = 0) -> DecompositionPlan | None:
    """The decomposition of a job, or None when it does not apply (not enabled, not traffic
    engineering, execution.mode Classical, or the whole QUBO fits a QPU)."""
    options = policy.spec.optimization
    problem = job.spec.problem
    if (not options.decomposition.enabled or problem is None
            or problem.traffic_engineering is None or job.spec.execution.mode == "Classical"):
        return None
    usable = [q for q in fleet if not q.descriptor.cordoned]
    if not usable:
        return None
    limit = min(options.max_variables, max(q.descriptor.qubits for q in usable))
    try:
        whole = reduce_traffic(problem.traffic_engineering, None, read_config_map)
    except ProblemTooLarge as err:
        raise JobFailure(Reason.INPUT_TOO_LARGE, str(err)) from None
    except ProblemError as err:
        raise JobFailure(Reason.INVALID_PROBLEM, str(err)) from None
    if whole.qubo.size <= limit or not whole.free:
        return None
    width = min(options.decomposition.max_region_variables, limit)
    regions = make_regions(whole.graph, whole.free, width,
                           options.decomposition.region_attribute, seed)
    return DecompositionPlan(whole, limit, width, regions)


class RegionDecision(Protocol):
    """What deciding a sub-QUBO's QAOA circuit gives (pipeline/optimize.py's DecidedProblem)."""

    @property
    def circuit_job(self) -> DecidedJob | None:
        """The QAOA sampling job when the QIP chose a QPU; None: classical."""

    @property
    def method(self) -> str:
        """qaoa(p=.., angle source)."""


DecideRegion = Callable[[JobRun, ReducedProblem, int, Sequence[QPU]], RegionDecision]
"""(child run, sub-problem, seed, QPUs) -> the QIP's decision on its QAOA circuit."""


class QipBlockSolver:
    """A sub-QUBO through the QIP of a QAOA circuit: sampled on a QPU, or classically."""

    def __init__(self, run: JobRun, fleet: Sequence[QPU], decide: DecideRegion,
                 ideal_fallback: bool = True) -> None:
        self.run, self.fleet, self.decide = run, fleet, decide
        self.ideal_fallback = ideal_fallback  # hardware.idealSimulators: Fallback

    def _fleets_for(self, region: Region, variables: int) -> list[list[QPU]]:
        """The QPUs to offer the QIP, in turn: the site's when they fit, else the fleet; with
        idealSimulators Fallback, first without the ideal simulators (the QIP would pick one
        only when no noisy QPU can run the circuit, and assessing them costs time)."""
        local = [q for q in self.fleet if region.site is not None
                 and q.descriptor.site == region.site and q.descriptor.qubits >= variables
                 and not q.descriptor.cordoned]
        offered = local or list(self.fleet)
        noisy = [q for q in offered if not q.descriptor.ideal]
        if self.ideal_fallback and noisy and len(noisy) < len(offered) and any(
                q.descriptor.qubits >= variables and not q.descriptor.cordoned for q in noisy):
            return [noisy, offered]
        return [offered]

    def _child(self, sub: SubProblem, region: Region) -> JobRun:
        job = self.run.job
        name = f"{job.metadata.name}-{region.name}-b{sub.block}"[:253]
        child = job.model_copy(update={"metadata": job.metadata.model_copy(update={"name": name})})
        return JobRun(child, SilentProgress(), self.run.now)

    def __call__(self, sub: SubProblem, region: Region, seed: int) -> BlockResult:
        problem = sub.problem
        for qpus in self._fleets_for(region, problem.qubo.size):
            child = self._child(sub, region)
            decided = self.decide(child, problem, seed, qpus)
            if decided.circuit_job is not None:
                break
        if decided.circuit_job is None:
            why = child.status.decision.message if child.status.decision else ""
            raw = solve_qubo_classically(problem, REGION_CLASSICAL_SECONDS, seed)
            chosen = refine(problem, raw.x)
            return BlockResult(chosen.x, raw.method, "Classical", method=raw.method,
                               note=why)
        circuit_job = decided.circuit_job
        outcomes = execute_single_qpu(circuit_job)
        counts, mitigation = _ranked_counts(circuit_job, outcomes)
        outcome = best_of_samples(problem, counts)
        shots = sum(sum(c.values()) for share in outcomes.counts.values() for c in share)
        qpu = circuit_job.qip.shares[0].qpu
        by_name = {a.descriptor.name: a for a in circuit_job.assessments}
        noisy = any(not by_name[s.qpu].descriptor.ideal for s in circuit_job.qip.shares)
        return BlockResult(outcome.best.x, "qaoa", "SingleQPU", qpu=qpu,
                           backend=by_name[qpu].descriptor.backend_name, method=decided.method,
                           shots=shots, noisy=noisy, mitigation=mitigation,
                           feasible_before_repair=outcome.feasible_before)


def _ranked_counts(circuit_job: DecidedJob, outcomes: ShareOutcomes
                   ) -> tuple[dict[str, int], str | None]:
    """The samples to post-process: raw counts, with the readout-mitigated distribution
    (M3, when the QPU is noisy and its plan says so) deciding which bitstrings rank first."""
    raw = merge_sampling_counts(outcomes.counts.values())
    noisy = any(not a.descriptor.ideal for a in circuit_job.assessments
                if a.descriptor.name in outcomes.counts)
    if not noisy:
        return raw, None
    shares = {s.qpu: s.shots for s in circuit_job.qip.shares}
    scratch = Result(path="SingleQPU")
    _readout_mitigate(circuit_job, scratch, _noise_profile(shares, {}), outcomes.counts)
    if not scratch.mitigated_probabilities:
        return raw, None
    total = sum(raw.values())
    ranked = {k: max(1, round(p * total)) for k, p in scratch.mitigated_probabilities.items()
              if p > 0}
    for key in raw:  # keep every measured bitstring, ranked by its mitigated weight
        ranked.setdefault(key, 0)
    return {k: v for k, v in ranked.items() if v > 0} or raw, "readout (M3)"


def run_decomposed(run: JobRun, plan: DecompositionPlan, fleet: Sequence[QPU],
                   policies: Mapping[str, InvocationPolicy], seed: int | None,
                   decide: DecideRegion) -> QuantumJobStatus:
    """Decide, solve by region, reconcile, repair and verify the whole decision."""
    job = run.job
    policy = resolve_policy(job, policies)
    options = policy.spec.optimization
    remaining = deadline_remaining(job, run.now)
    whole = plan.whole
    features = qubo_features(whole.qubo)
    rules: list[RuleOutcome] = []
    record_rule(rules, "variablesAtMost", whole.qubo.size, plan.limit, False)
    record_rule(rules, "decompositionEnabled", True, True, True)
    record_rule(rules, "regionWidthAtMost", plan.width, plan.limit, plan.width <= plan.limit)
    message = (f"decomposed: the whole QUBO has {whole.qubo.size} variables, wider than any QPU "
               f"may take ({plan.limit}); {len(plan.regions)} regions "
               f"({plan.regions[0].origin}), sub-QUBOs of at most {plan.width} variables, each "
               "through the QIP")
    run.status.decision = Decision(path="Distributed", policy=policy.metadata.name,
                                   policy_generation=policy.metadata.generation,
                                   reason=Reason.QUANTUM_SELECTED, message=message,
                                   features=features.as_dict(), rules=rules)
    run.condition(ConditionType.DECIDED, True, Reason.QUANTUM_SELECTED, message)
    for note in whole.notes:
        run.progress.step("reduce", note)
    run.progress.step("decide", message)
    budget = options.decomposition.time_budget_seconds
    if remaining is not None:
        budget = min(budget, 0.5 * remaining)
    settings = Settings(plan.width, options.decomposition.iterations, budget,
                        seed if seed is not None else policy.spec.scheduler.seed or 0)
    run.status.phase = Phase.RUNNING
    solver = QipBlockSolver(run, fleet, decide,
                            policy.spec.hardware.ideal_simulators == "Fallback")
    with run.phase("execute_seconds"):
        outcome = decompose_and_solve(whole, plan.regions, solver, settings,
                                      lambda text: run.progress.step("execute", text))
    quantum = [b for b in outcome.blocks if b.result.path == "SingleQPU"]
    run.condition(ConditionType.EXECUTED, True, Reason.FRAGMENTS_COMPLETED,
                  f"{len(outcome.blocks)} regional sub-QUBOs in {len(outcome.rounds)} round(s): "
                  f"{len(quantum)} sampled on QPUs, {len(outcome.blocks) - len(quantum)} "
                  "solved classically")
    return _verify(run, plan, outcome, policy, remaining)


def _verify(run: JobRun, plan: DecompositionPlan, outcome: Decomposition,
            policy: InvocationPolicy, remaining: float | None) -> QuantumJobStatus:
    whole = plan.whole
    options = policy.spec.optimization
    run.status.phase = Phase.RECONSTRUCTING
    with run.phase("verify_seconds"):
        chosen = Candidate(outcome.x, whole.objective(outcome.x), not whole.violations(outcome.x))
        reference = None
        if options.exact_time_limit_seconds > 0:  # CP-SAT on the whole problem, same time
            reference = cp_sat_reference(whole, max(1.0, outcome.seconds))
        optimum = (None if reference is None or not reference.feasible
                   else (reference.objective, reference.proven))
        quantum = [b for b in outcome.blocks if b.result.path == "SingleQPU"]
        solution = report(whole, chosen, "decomposed+" + ("qaoa" if quantum else "classical"),
                          optimum)
        assert run.job.spec.problem is not None and run.job.spec.problem.traffic_engineering
        check = recompute_loads(whole.graph, solution.routes or [],
                                run.job.spec.problem.traffic_engineering.demands)
        load_check = ("passed: every demand routed, link loads recomputed from the routes "
                      f"(congestion {check.congestion:.6g}) within capacity"
                      if not check.violations else "FAILED: " + "; ".join(check.violations[:5]))
        if abs(check.congestion - chosen.objective) > 1e-6 * max(1.0, chosen.objective):
            check.violations.append(f"recomputed congestion {check.congestion:.6g} differs from "
                                    f"the reported objective {chosen.objective:.6g}")
    decomposition = _report(plan, outcome, reference, chosen.objective, load_check)
    backends = sorted({b.result.backend for b in quantum if b.result.backend})
    result = Result(path="Distributed" if quantum else "Classical",
                    qpus=sorted({b.result.qpu for b in quantum if b.result.qpu}),
                    backends=backends, shots=sum(b.result.shots for b in quantum),
                    method=f"decomposed: {len(plan.regions)} regions, "
                    f"{len(outcome.rounds)} round(s), "
                    f"{sorted({b.result.method for b in outcome.blocks})}",
                    solution=solution, decomposition=decomposition)
    run.status.result = result
    passed = chosen.feasible and not check.violations
    noisy = any(b.result.noisy for b in quantum)
    details = (f"trafficEngineering: congestion {chosen.objective:.6g}; load check {load_check}"
               + (f"; CP-SAT in {reference.seconds:.1f}s: {reference.objective:.6g}"
                  f"{' (proven optimal)' if reference.proven else ''}"
                  if reference is not None and reference.feasible else ""))
    run.status.verification = Verification(
        method="OperationalConstraints", passed=passed, noisy=noisy,
        details=details if passed else "; ".join(dict.fromkeys(solution.violations
                                                                 + check.violations)))
    run.progress.step("verify", f"{'feasible' if passed else 'INFEASIBLE'}: {details}")
    if not passed:
        run.condition(ConditionType.VERIFIED, False, Reason.INFEASIBLE_DECISION,
                      run.status.verification.details or "")
        raise JobFailure(Reason.INFEASIBLE_DECISION, "the decomposed decision breaks a "
                         "constraint: " + (run.status.verification.details or ""))
    run.condition(ConditionType.VERIFIED, True, Reason.CONSTRAINTS_SATISFIED, details)
    return conclude(run, remaining)


def _reference(reference: Reference | None, objective: float) -> ReferenceReport | None:
    if reference is None:
        return None
    finite = math.isfinite(reference.objective)
    return ReferenceReport(
        method=reference.method, objective=round(reference.objective, 9) if finite else None,
        feasible=reference.feasible,
        bound=None if reference.bound is None else round(reference.bound, 9),
        proven=reference.proven, seconds=reference.seconds,
        ratio=None if not finite else _round(ratio(objective, reference.objective)))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _report(plan: DecompositionPlan, outcome: Decomposition, reference: Reference | None,
            objective: float, load_check: str) -> DecompositionReport:
    whole = plan.whole
    regions = []
    for r, region in enumerate(plan.regions):
        homed = [d for d, h in enumerate(outcome.homes) if h == r]
        blocks = [b for b in outcome.blocks if b.region == r]
        results = [b.result for b in blocks]
        regions.append(RegionReport(
            name=region.name, site=region.site, nodes=len(region.nodes), demands=len(homed),
            border_demands=sum(crosses_border(region, whole.free[d]) for d in homed),
            subproblems=len(blocks), max_variables=max((b.variables for b in blocks), default=0),
            paths=sorted({x.path for x in results}), solvers=sorted({x.solver for x in results}),
            qpus=sorted({x.qpu for x in results if x.qpu}), shots=sum(x.shots for x in results),
            noisy=any(x.noisy for x in results),
            mitigation=sorted({f"{x.qpu}: {x.mitigation}" for x in results if x.mitigation})))
    rounds = [RoundReport(
        index=k.index, subproblems=k.subproblems, overload_before=round(k.before[0], 6),
        congestion_before=round(k.before[1], 9), merged_overload=round(k.merged[0], 6),
        merged_congestion=round(k.merged[1], 9), overload_after=round(k.after[0], 6),
        congestion_after=round(k.after[1], 9),
        strategy=k.strategy,
        accepted=k.accepted, rejected=k.rejected, priced_links=k.priced_links,
        seconds=k.seconds) for k in outcome.rounds]
    quantum = sum(b.result.path == "SingleQPU" for b in outcome.blocks)
    return DecompositionReport(
        whole_variables=whole.qubo.size, width=plan.width,
        region_source="attribute" if plan.regions[0].origin == ATTRIBUTE else "partition",
        regions=regions, rounds=rounds, stop=outcome.stop, qpu_calls=quantum,
        classical_calls=len(outcome.blocks) - quantum,
        initial_overload=round(outcome.initial[0], 6),
        initial_congestion=round(outcome.initial[1], 9),
        reconciled_overload=round(outcome.before_repair[0], 6),
        reconciled_congestion=round(outcome.before_repair[1], 9),
        repaired_congestion=round(outcome.after_repair[1], 9), repair=outcome.repair,
        final_congestion=round(float(np.round(objective, 9)), 9), seconds=outcome.seconds,
        load_check=load_check, cp_sat=_reference(reference, objective))
