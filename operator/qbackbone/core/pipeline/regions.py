"""A problem job decomposed by region: each regional sub-QUBO through the single-QPU QAOA path.

When the policy's optimization.decomposition is enabled and a trafficEngineering or
sliceAdmission QUBO is wider than every QPU may take (the widest QPU, and maxVariables), the
job is split by region (core/optimize/decompose). Every sub-QUBO goes through the same QIP as
any QAOA circuit, on the QPUs at its region's site when they fit, else the whole fleet:
sampled on the QPU the QIP picks (readout-mitigated where the QPU is noisy and the plan says
so), or solved classically when the QIP says Classical. The whole decision is then verified:
every constraint on the real numbers, the decision recomputed without the QUBO (link loads
from the routes; capacities from the admitted slices), and CP-SAT on the whole problem in the
same time for the ratio (region_report.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.problem import SliceAdmissionProblem, TrafficEngineeringProblem
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
    Decomposable,
    Decomposition,
    Region,
    Settings,
    SliceDecomposition,
    SubProblem,
    TrafficDecomposition,
    cp_sat_reference,
    decompose_and_solve,
)
from qbackbone.core.optimize.features import qubo_features
from qbackbone.core.optimize.problem import ProblemError, ProblemTooLarge, ReducedProblem
from qbackbone.core.optimize.slices import reduce_slices
from qbackbone.core.optimize.solve import Candidate, best_of_samples, refine, report
from qbackbone.core.optimize.solve import solve_classically as solve_qubo_classically
from qbackbone.core.optimize.topology import ConfigMapReader, load_topology
from qbackbone.core.optimize.traffic import reduce_traffic
from qbackbone.core.pipeline.decide import DecidedJob
from qbackbone.core.pipeline.finish import conclude, merge_sampling_counts
from qbackbone.core.pipeline.jobrun import JobRun
from qbackbone.core.pipeline.progress import SilentProgress
from qbackbone.core.pipeline.reduce import deadline_remaining, resolve_policy
from qbackbone.core.pipeline.region_report import decomposition_report, independent_check
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

    whole: Decomposable
    limit: int  # widest QUBO a QPU may take (the widest QPU and maxVariables)
    width: int
    regions: list[Region]


def plan_decomposition(job: QuantumJob, policy: InvocationPolicy, fleet: Sequence[QPU],
                       read_config_map: ConfigMapReader | None = None,
                       seed: int = 0) -> DecompositionPlan | None:
    """The decomposition of a job, or None when it does not apply (not enabled, neither traffic
    engineering nor slice admission, execution.mode Classical, or the whole QUBO fits a QPU)."""
    options = policy.spec.optimization
    problem = job.spec.problem
    if (not options.decomposition.enabled or problem is None
            or (problem.traffic_engineering is None and problem.slice_admission is None)
            or job.spec.execution.mode == "Classical"):
        return None
    usable = [q for q in fleet if not q.descriptor.cordoned]
    if not usable:
        return None
    limit = min(options.max_variables, max(q.descriptor.qubits for q in usable))
    try:
        whole = _whole(problem.traffic_engineering, problem.slice_admission, read_config_map,
                       limit)
    except ProblemTooLarge as err:
        raise JobFailure(Reason.INPUT_TOO_LARGE, str(err)) from None
    except ProblemError as err:
        raise JobFailure(Reason.INVALID_PROBLEM, str(err)) from None
    if whole is None or not whole.units:
        return None
    width = min(options.decomposition.max_region_variables, limit)
    regions = whole.regions(width, options.decomposition.region_attribute, seed)
    return DecompositionPlan(whole, limit, width, regions)


def _whole(traffic: TrafficEngineeringProblem | None, slices: SliceAdmissionProblem | None,
           read_config_map: ConfigMapReader | None, limit: int) -> Decomposable | None:
    """The whole problem (no demand pinned) as the coordinator sees it; None when its QUBO fits
    `limit` variables (the job then takes the ordinary path: a slice topology is not read)."""
    if traffic is not None:
        whole = reduce_traffic(traffic, None, read_config_map)
        return None if whole.qubo.size <= limit else TrafficDecomposition(whole)
    assert slices is not None
    admission = reduce_slices(slices)
    if admission.qubo.size <= limit:
        return None
    graph = (None if slices.topology is None
             else load_topology(slices.topology, read_config_map))
    return SliceDecomposition(admission, graph)


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
        child, decided = self.decide_block(sub, region, seed)
        if decided.circuit_job is None:
            return classical_block(child, sub.problem, seed)
        return sampled_block(sub.problem, decided, execute_single_qpu(decided.circuit_job))

    def decide_block(self, sub: SubProblem, region: Region, seed: int
                     ) -> tuple[JobRun, RegionDecision]:
        """The QIP's decision on the sub-QUBO's QAOA circuit (site QPUs first)."""
        for qpus in self._fleets_for(region, sub.problem.qubo.size):
            child = self._child(sub, region)
            decided = self.decide(child, sub.problem, seed, qpus)
            if decided.circuit_job is not None:
                break
        return child, decided


def classical_block(child: JobRun, problem: ReducedProblem, seed: int) -> BlockResult:
    """A sub-QUBO the QIP sent classical, solved exactly within REGION_CLASSICAL_SECONDS."""
    why = child.status.decision.message if child.status.decision else ""
    raw = solve_qubo_classically(problem, REGION_CLASSICAL_SECONDS, seed)
    chosen = refine(problem, raw.x)
    return BlockResult(chosen.x, raw.method, "Classical", method=raw.method, note=why)


def sampled_block(problem: ReducedProblem, decided: RegionDecision,
                  outcomes: ShareOutcomes) -> BlockResult:
    """A sub-QUBO's QAOA samples (as the QPUs returned them) decoded, repaired, ranked."""
    circuit_job = decided.circuit_job
    assert circuit_job is not None
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
    policy = resolve_policy(run.job, policies)
    settings, remaining = decide_decomposed(run, plan, policy, seed)
    solver = QipBlockSolver(run, fleet, decide,
                            policy.spec.hardware.ideal_simulators == "Fallback")
    with run.phase("execute_seconds"):
        outcome = decompose_and_solve(plan.whole, plan.regions, solver, settings,
                                      lambda text: run.progress.step("execute", text))
    executed(run, outcome)
    return verify_decomposition(run, plan, outcome, policy, remaining)


def decide_decomposed(run: JobRun, plan: DecompositionPlan, policy: InvocationPolicy,
                      seed: int | None) -> tuple[Settings, float | None]:
    """The Distributed decision in the status, and the coordinator's settings (its time
    budget at most half the deadline left); also the deadline left."""
    options = policy.spec.optimization
    remaining = deadline_remaining(run.job, run.now)
    whole = plan.whole
    features = qubo_features(whole.problem.qubo)
    rules: list[RuleOutcome] = []
    record_rule(rules, "variablesAtMost", whole.problem.qubo.size, plan.limit, False)
    record_rule(rules, "decompositionEnabled", True, True, True)
    record_rule(rules, "regionWidthAtMost", plan.width, plan.limit, plan.width <= plan.limit)
    message = (f"decomposed: the whole {whole.kind} QUBO has {whole.problem.qubo.size} "
               "variables, wider than any QPU "
               f"may take ({plan.limit}); {len(plan.regions)} regions "
               f"({plan.regions[0].origin}), sub-QUBOs of at most {plan.width} variables, each "
               "through the QIP")
    run.status.decision = Decision(path="Distributed", policy=policy.metadata.name,
                                   policy_generation=policy.metadata.generation,
                                   reason=Reason.QUANTUM_SELECTED, message=message,
                                   features=features.as_dict(), rules=rules)
    run.condition(ConditionType.DECIDED, True, Reason.QUANTUM_SELECTED, message)
    for note in whole.problem.notes:
        run.progress.step("reduce", note)
    run.progress.step("decide", message)
    budget = options.decomposition.time_budget_seconds
    if remaining is not None:
        budget = min(budget, 0.5 * remaining)
    settings = Settings(plan.width, options.decomposition.iterations, budget,
                        seed if seed is not None else policy.spec.scheduler.seed or 0)
    run.status.phase = Phase.RUNNING
    return settings, remaining


def executed(run: JobRun, outcome: Decomposition) -> None:
    """The Executed condition: how many sub-QUBOs, rounds, QPU samples."""
    quantum = [b for b in outcome.blocks if b.result.path == "SingleQPU"]
    run.condition(ConditionType.EXECUTED, True, Reason.FRAGMENTS_COMPLETED,
                  f"{len(outcome.blocks)} regional sub-QUBOs in {len(outcome.rounds)} round(s): "
                  f"{len(quantum)} sampled on QPUs, {len(outcome.blocks) - len(quantum)} "
                  "solved classically")


def verify_decomposition(run: JobRun, plan: DecompositionPlan, outcome: Decomposition,
                         policy: InvocationPolicy, remaining: float | None) -> QuantumJobStatus:
    """Every constraint, an independent recomputation, CP-SAT on the whole problem in the
    time the decomposition took (``outcome.seconds``) for the ratio; the report."""
    whole, problem = plan.whole, plan.whole.problem
    options = policy.spec.optimization
    run.status.phase = Phase.RECONSTRUCTING
    with run.phase("verify_seconds"):
        chosen = Candidate(outcome.x, problem.objective(outcome.x),
                           not problem.violations(outcome.x))
        reference = None
        if options.exact_time_limit_seconds > 0:  # CP-SAT on the whole problem, same time
            reference = cp_sat_reference(whole, max(1.0, outcome.seconds))
        optimum = (None if reference is None or not reference.feasible
                   else (reference.objective, reference.proven))
        quantum = [b for b in outcome.blocks if b.result.path == "SingleQPU"]
        solution = report(problem, chosen, "decomposed+" + ("qaoa" if quantum else "classical"),
                          optimum)
        assert run.job.spec.problem is not None
        check = independent_check(whole, run.job.spec.problem, solution, chosen.objective)
    decomposition = decomposition_report(whole, plan.regions, plan.width, outcome, reference,
                                         chosen.objective, check.summary)
    result = Result(path="Distributed" if quantum else "Classical",
                    qpus=sorted({b.result.qpu for b in quantum if b.result.qpu}),
                    backends=sorted({b.result.backend for b in quantum if b.result.backend}),
                    shots=sum(b.result.shots for b in quantum),
                    method=f"decomposed: {len(plan.regions)} regions, "
                    f"{len(outcome.rounds)} round(s), "
                    f"{sorted({b.result.method for b in outcome.blocks})}",
                    solution=solution, decomposition=decomposition)
    run.status.result = result
    passed = chosen.feasible and not check.violations
    what = "congestion" if whole.sense == "minimize" else "revenue"
    details = (f"{whole.kind}: {what} {chosen.objective:.6g}; check {check.summary}"
               + (f"; CP-SAT in {reference.seconds:.1f}s: {reference.objective:.6g}"
                  f"{' (proven optimal)' if reference.proven else ''}"
                  if reference is not None and reference.feasible else ""))
    run.status.verification = Verification(
        method="OperationalConstraints", passed=passed,
        noisy=any(b.result.noisy for b in quantum),
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
