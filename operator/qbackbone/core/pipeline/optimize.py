"""A problem job (spec.problem): reduce to a QUBO, decide, solve by QAOA or classically, verify.

The quantum path builds the QAOA circuit and hands it to the circuit pipeline as a sampling
job (the same QIP rules, QPU assessment and shot split); the samples are decoded, repaired
and improved. The classical path solves the same QUBO. Either way the decision is checked
against every operational constraint; an infeasible one fails the job.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import (
    Decision,
    QuantumJob,
    QuantumJobStatus,
    Result,
    RuleOutcome,
    Verification,
)
from qbackbone.core.circuits.features import extract_features
from qbackbone.core.errors import JobFailure
from qbackbone.core.learning import LearnedModel
from qbackbone.core.optimize.classical import QuboSolution
from qbackbone.core.optimize.features import QuboFeatures, qubo_features
from qbackbone.core.optimize.problem import ProblemError, ProblemTooLarge, ReducedProblem
from qbackbone.core.optimize.qaoa import choose_angles, qaoa_circuit
from qbackbone.core.optimize.reduce import reduce_problem
from qbackbone.core.optimize.solve import (
    Candidate,
    SampleOutcome,
    best_of_samples,
    exact_solution,
    refine,
    report,
    solve_classically,
)
from qbackbone.core.optimize.topology import ConfigMapReader
from qbackbone.core.pipeline.decide import DecidedJob, decide_reduced
from qbackbone.core.pipeline.finish import conclude, merge_sampling_counts
from qbackbone.core.pipeline.jobrun import JobRun
from qbackbone.core.pipeline.reduce import (
    MAX_SHOTS,
    ReducedJob,
    deadline_remaining,
    resolve_policy,
)
from qbackbone.core.pipeline.regions import DecideRegion, plan_decomposition, run_decomposed
from qbackbone.core.pipeline.single import execute_single_qpu
from qbackbone.core.qip.engine import record_rule
from qbackbone.core.qpus.fleet import QPU

CLASSICAL_SOLVE_FRACTION = 0.5  # of the remaining deadline, for the classical path
SHORTCUT_RULE = "classicalNotProvenQuickly"


@dataclass
class ProblemRun:
    """A problem job between its steps."""

    run: JobRun
    policy: InvocationPolicy
    problem: ReducedProblem
    features: QuboFeatures
    remaining: float | None
    seed: int | None
    shots: int  # QAOA samples, should the quantum path be taken
    exact: QuboSolution | None = None  # from the shortcut rule, reused for the optimum
    shortcut_proved: bool | None = None  # replay: the recorded outcome of the timed rule
    learned: LearnedModel | None = None  # what the policy learned (issue 20), for the QIP


@dataclass
class DecidedProblem:
    """A problem job after reduce and decide: its path, and the QAOA job when quantum."""

    state: ProblemRun
    path: str  # "SingleQPU" or "Classical"
    circuit_job: DecidedJob | None = None
    method: str = ""  # qaoa(p=.., angle source) on the quantum path


def decide_problem(run: JobRun, fleet: Sequence[QPU], policies: Mapping[str, InvocationPolicy],
                   seed: int | None = None, read_config_map: ConfigMapReader | None = None,
                   shortcut_proved: bool | None = None,
                   learned: LearnedModel | None = None) -> DecidedProblem:
    """Reduce to a QUBO, apply the problem rules, and decide the QAOA circuit when quantum.

    The classical shortcut rule depends on how fast the exact solver runs; to re-derive a
    recorded decision exactly, pass its outcome (``shortcut_outcome`` of the first status).
    """
    state = _reduce(run, policies, seed, read_config_map)
    state.shortcut_proved, state.learned = shortcut_proved, learned
    if not _quantum_worth_trying(state):
        return DecidedProblem(state, "Classical")
    return _decide_quantum(state, fleet)


def shortcut_outcome(status: QuantumJobStatus) -> bool | None:
    """Whether the timed shortcut rule proved the optimum (None: it was not evaluated)."""
    decision = status.decision
    rule = next((r for r in decision.rules if r.name == SHORTCUT_RULE), None) if decision else None
    return None if rule is None else not rule.passed


def solve_problem_spec(job: QuantumJob, policy: InvocationPolicy, seed: int | None,
                       time_limit: float) -> QuboSolution:
    """The classical solver on a job's problem, as a worker pod runs it (reduce, then solve).

    The job must carry its topology inline (the operator inlines ConfigMaps when it decides).
    """
    assert job.spec.problem is not None
    problem = reduce_problem(job.spec.problem, policy.spec.optimization.max_variables)
    return solve_classically(problem, time_limit, seed)


def classical_time_limit(decided: DecidedProblem) -> float:
    """Time the classical solver may use: the policy's limit, at most half the deadline left."""
    state = decided.state
    limit = state.policy.spec.optimization.exact_time_limit_seconds
    if state.remaining is not None:
        limit = min(limit, CLASSICAL_SOLVE_FRACTION * state.remaining)
    return limit


def run_problem_job(run: JobRun, fleet: Sequence[QPU], policies: Mapping[str, InvocationPolicy],
                    seed: int | None = None, read_config_map: ConfigMapReader | None = None,
                    learned: LearnedModel | None = None) -> QuantumJobStatus:
    """Reduce, decide, solve and verify a problem job in this process; decomposed by region
    when the policy enables it and the QUBO is wider than every QPU (docs/decomposition.md)."""
    policy = resolve_policy(run.job, policies)
    plan = plan_decomposition(run.job, policy, fleet, read_config_map, seed or 0)
    if plan is not None:
        return run_decomposed(run, plan, fleet, policies, seed,
                              region_decider(run, policy, learned))
    decided = decide_problem(run, fleet, policies, seed, read_config_map, learned=learned)
    if decided.circuit_job is None:
        return finish_problem_classically(decided, solve_problem_classically(decided))
    return finish_problem_samples(decided, execute_single_qpu(decided.circuit_job).counts)


def region_decider(run: JobRun, policy: InvocationPolicy,
                   learned: LearnedModel | None = None) -> DecideRegion:
    """How a regional sub-QUBO's QAOA circuit is decided: through the QIP (with what the
    policy learned), the job's shots and deadline, without the whole-problem rules."""
    remaining, shots = deadline_remaining(run.job, run.now), problem_shots(run.job, policy)

    def decide_region(child: JobRun, problem: ReducedProblem, region_seed: int,
                      qpus: Sequence[QPU]) -> DecidedProblem:
        return _decide_quantum(ProblemRun(child, policy, problem, qubo_features(
            problem.qubo), remaining, region_seed, shots, learned=learned), qpus)
    return decide_region


def _reduce(run: JobRun, policies: Mapping[str, InvocationPolicy], seed: int | None,
            read_config_map: ConfigMapReader | None) -> ProblemRun:
    job = run.job
    assert job.spec.problem is not None
    run.status.phase = Phase.DECIDING
    with run.phase("reduce_seconds"):
        policy = resolve_policy(job, policies)
        remaining = deadline_remaining(job, run.now)
        options = policy.spec.optimization
        shots = problem_shots(job, policy)
        try:
            problem = reduce_problem(job.spec.problem, options.max_variables, read_config_map)
        except ProblemTooLarge as err:
            raise JobFailure(Reason.INPUT_TOO_LARGE, str(err)) from None
        except ProblemError as err:
            raise JobFailure(Reason.INVALID_PROBLEM, str(err)) from None
        features = qubo_features(problem.qubo)
    for note in problem.notes:
        run.progress.step("reduce", note)
    run.progress.step("reduce", f"QUBO: {features.variables} variables, {features.couplings} "
                      f"couplings (density {features.density:.2f}), ruggedness "
                      f"{features.ruggedness:.2f}")
    return ProblemRun(run, policy, problem, features, remaining,
                      seed if seed is not None else policy.spec.scheduler.seed, shots)


def problem_shots(job: QuantumJob, policy: InvocationPolicy) -> int:
    """QAOA samples: spec.shots, else the policy's optimization.shots; InvalidShots when out of
    range (checked before anything is reduced or sampled)."""
    shots = job.spec.shots
    if shots is None:
        return policy.spec.optimization.shots
    if shots <= 0:
        raise JobFailure(Reason.INVALID_SHOTS, f"spec.shots must be a positive number of QAOA "
                         f"samples, got {shots}; leave it out to use the policy's "
                         f"optimization.shots ({policy.spec.optimization.shots})")
    if shots > MAX_SHOTS:
        raise JobFailure(Reason.INVALID_SHOTS, f"spec.shots {shots:,} exceeds the limit of "
                         f"{MAX_SHOTS:,} samples per job")
    return shots


def _quantum_worth_trying(state: ProblemRun) -> bool:
    """The problem rules, recorded in status.decision; False means the classical path."""
    run, policy, f = state.run, state.policy, state.features
    options, mode = policy.spec.optimization, run.job.spec.execution.mode
    rules: list[RuleOutcome] = []
    with run.phase("decide_seconds"):
        ok = record_rule(rules, "variablesAtMost", f.variables, options.max_variables,
                         f.variables <= options.max_variables)
        ok &= record_rule(rules, "hasVariables", f.variables, 1, f.variables >= 1)
        ok &= record_rule(rules, "densityAtMost", round(f.density, 4),
                          policy.spec.features.max_constraint_density,
                          f.density <= policy.spec.features.max_constraint_density)
        ok &= record_rule(rules, "modeAllowsQuantum", mode, "not Classical", mode != "Classical")
        if ok and mode == "Auto":
            budget = (options.classical_shortcut_fraction * state.remaining
                      if state.remaining is not None else options.classical_shortcut_seconds)
            if state.shortcut_proved is not None:  # replaying a recorded decision
                ok &= record_rule(rules, SHORTCUT_RULE, "recorded", round(budget, 4),
                                  not state.shortcut_proved)
            else:
                start = time.perf_counter()
                state.exact = exact_solution(state.problem, budget) if budget > 0 else None
                proven = state.exact is not None and state.exact.proven_optimal
                ok &= record_rule(rules, SHORTCUT_RULE,
                                  round(time.perf_counter() - start, 4) if proven else "not proven",
                                  round(budget, 4), not proven)
    failed = [r for r in rules if not r.passed]
    message = ("classical: " + "; ".join(_why_classical(r) for r in failed) if failed else
               "QAOA is worth trying: the QUBO fits and the exact solver gave no quick proof")
    run.status.decision = Decision(
        path="Classical" if failed else None, policy=policy.metadata.name,
        policy_generation=policy.metadata.generation, reason=Reason.CLASSICAL_SELECTED
        if failed else Reason.QUANTUM_SELECTED, message=message, features=f.as_dict(),
        rules=rules)
    if failed:
        run.condition(ConditionType.DECIDED, True, Reason.CLASSICAL_SELECTED, message)
        run.progress.step("decide", message)
        return False
    return True


def _why_classical(rule: RuleOutcome) -> str:
    return {
        "variablesAtMost": f"{rule.value} QUBO variables exceed the policy's maxVariables "
                           f"({rule.threshold})",
        "hasVariables": "nothing left to optimise (every choice is forced)",
        "densityAtMost": f"coupling density {rule.value} exceeds maxConstraintDensity "
                         f"({rule.threshold})",
        "modeAllowsQuantum": "execution.mode is Classical",
        SHORTCUT_RULE: f"the exact solver proved the optimum in {rule.value}s, within the "
                       f"{rule.threshold}s shortcut budget",
    }.get(rule.name, f"rule {rule.name} failed")


def _decide_quantum(state: ProblemRun, fleet: Sequence[QPU]) -> DecidedProblem:
    run, problem = state.run, state.problem
    options = state.policy.spec.optimization
    with run.phase("reduce_seconds"):  # building the circuit is part of reducing the problem
        angles = choose_angles(problem.qubo, problem.kind, options.qaoa_layers)
        circuit = qaoa_circuit(problem.qubo, angles)
    shots = state.shots
    run.progress.step("reduce", f"QAOA p={angles.layers} ({angles.source}): "
                      f"{circuit.num_qubits} qubits x {shots} shots")
    reduced = ReducedJob(policy=state.policy, circuit=circuit, observables=None, bases=[],
                         basis_of=[], measured_circuits=[circuit], shots=shots,
                         features=extract_features(circuit, 1, shots),
                         deadline_remaining=state.remaining, dynamic=False)
    try:
        decided = decide_reduced(run, reduced, fleet, state.seed, state.learned)
    except JobFailure as refused:
        if not state.policy.spec.fallback.enabled:
            raise
        return _classical_instead(state, f"the QIP refused the QAOA circuit ({refused.reason}: "
                                  f"{refused.message})")
    if decided.qip.path == "Distributed":
        return _classical_instead(state, "no single QPU fits the QAOA circuit and its samples "
                                  f"cannot be cut ({decided.qip.message}); solving the QUBO "
                                  "classically")
    if decided.qip.path == "Classical":
        return _classical_instead(state, f"the QIP chose Classical for the QAOA circuit "
                                  f"({decided.qip.message}); solving the QUBO classically")
    return DecidedProblem(state, "SingleQPU", decided,
                          method=f"qaoa(p={angles.layers}, {angles.source})")


def _classical_instead(state: ProblemRun, why: str) -> DecidedProblem:
    run, decision = state.run, state.run.status.decision
    if decision is not None:
        decision.path, decision.reason = "Classical", Reason.CLASSICAL_SELECTED
        decision.message = why
    run.condition(ConditionType.DECIDED, True, Reason.CLASSICAL_SELECTED, why)
    run.progress.step("decide", why)
    return DecidedProblem(state, "Classical")


def finish_problem_samples(decided: DecidedProblem,
                           counts: Mapping[str, Sequence[Mapping[str, int]]]
                           ) -> QuantumJobStatus:
    """Decode, repair and improve the QAOA samples of every QPU share; verify the best."""
    state, circuit_job = decided.state, decided.circuit_job
    assert circuit_job is not None
    run, problem = state.run, state.problem
    missing = [s.qpu for s in circuit_job.qip.shares if s.qpu not in counts]
    if missing:
        raise JobFailure(Reason.EXECUTION_FAILED, f"no samples from {', '.join(missing)}")
    run.status.phase = Phase.RECONSTRUCTING
    with run.phase("reconstruct_seconds"):
        outcome = best_of_samples(problem, merge_sampling_counts(counts.values()))
    run.condition(ConditionType.EXECUTED, True, Reason.FRAGMENTS_COMPLETED,
                  f"{len(counts)} fragment(s) sampled {outcome.samples} bitstrings")
    backends = {a.descriptor.name: a.descriptor.backend_name for a in circuit_job.assessments}
    result = Result(path="SingleQPU", qpus=sorted(counts), shots=outcome.samples,
                    backends=sorted(backends[q] for q in counts), method=decided.method)
    noisy = any((a.estimated_fidelity or 1.0) < 1.0 for a in circuit_job.assessments
                if a.descriptor.name in counts)
    return _verify(state, outcome.best, result, "qaoa", outcome, noisy)


def solve_problem_classically(decided: DecidedProblem) -> QuboSolution:
    """The classical solver's raw answer (a proven optimum from the shortcut is reused)."""
    state = decided.state
    run = state.run
    run.status.phase = Phase.RUNNING
    if state.exact is not None and state.exact.proven_optimal:
        return state.exact
    with run.phase("execute_seconds"):
        return solve_classically(state.problem, classical_time_limit(decided), state.seed)


def finish_problem_classically(decided: DecidedProblem, raw: QuboSolution) -> QuantumJobStatus:
    """Refine the classical solver's assignment and verify it."""
    state = decided.state
    run, problem = state.run, state.problem
    if raw.proven_optimal:
        state.exact = raw
    chosen = refine(problem, raw.x)
    run.condition(ConditionType.EXECUTED, True, Reason.CLASSICAL_COMPLETED,
                  f"{raw.method} in {raw.seconds:.3f}s"
                  f"{' (optimum proven)' if raw.proven_optimal else ''}")
    run.progress.step("execute", f"classical {raw.method}: energy {raw.energy:.6g}"
                      f"{', proven optimal' if raw.proven_optimal else ''}")
    result = Result(path="Classical", backends=[raw.method], method=raw.method)
    # When the solver's answer is the proven optimum, its refinement is also the reference.
    return _verify(state, chosen, result, raw.method, None, noisy=False,
                   reference=chosen if raw is state.exact else None)


def _verify(state: ProblemRun, chosen: Candidate, result: Result, solver: str,
            samples: SampleOutcome | None, noisy: bool,
            reference: Candidate | None = None) -> QuantumJobStatus:
    """Report the solution against the optimum (``reference``: the refined exact answer,
    when the caller has it) and check every constraint."""
    run, problem = state.run, state.problem
    options = state.policy.spec.optimization
    with run.phase("verify_seconds"):
        exact = state.exact
        if exact is None and options.exact_time_limit_seconds > 0:
            exact = exact_solution(problem, options.exact_time_limit_seconds)
        optimum = None
        if exact is not None:
            reference = reference or refine(problem, exact.x)
            best = reference.objective
            if reference.feasible and math.isfinite(best):
                optimum = (best, exact.proven_optimal)
        solution = report(problem, chosen, solver, optimum, samples)
    result.solution = solution
    run.status.result = result
    details = (f"{solution.kind}: objective {solution.objective:.6g} ({solution.objective_sense})"
               + (f", approximation ratio {solution.approximation_ratio:.4f} against the "
                  f"{'proven ' if solution.optimum_proven else ''}optimum {solution.optimum:.6g}"
                  if solution.approximation_ratio is not None and solution.optimum is not None
                  else ""))
    verification = Verification(method="OperationalConstraints", passed=solution.feasible,
                                noisy=noisy, details=details if solution.feasible else
                                "; ".join(solution.violations))
    run.status.verification = verification
    run.progress.step("verify", f"{'feasible' if solution.feasible else 'INFEASIBLE'}: "
                      f"{verification.details}")
    if not solution.feasible:
        run.condition(ConditionType.VERIFIED, False, Reason.INFEASIBLE_DECISION,
                      verification.details)
        raise JobFailure(Reason.INFEASIBLE_DECISION,
                         "no decision satisfying every constraint was found: "
                         + verification.details)
    run.condition(ConditionType.VERIFIED, True, Reason.CONSTRAINTS_SATISFIED, details)
    return conclude(run, state.remaining)
