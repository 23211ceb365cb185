"""A detect job (spec.problem.anomalyDetection): reduce, decide, solve, verify in this process.

Reduce: telemetry (generated or CSV) to window features compressed to the qubit budget.
Decide: the detect rules (core/detect/decide.py), then the QIP on one fidelity circuit
(qubits, fidelity, deadline: the QPU), then a timed pilot batch of kernel circuits against
the time budget. Solve: the kernel estimated on that QPU (SVC / one-class SVM), or the
classical model. Verify: kernel symmetry, PSD repair, agreement with the exact kernel;
scores on labelled windows beside the classical baselines.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.problem import ProblemSolution
from qbackbone.api.quantumjob import Decision, QuantumJobStatus, Result, Verification
from qbackbone.api.telemetry import (
    AnomalyDetectionProblem,
    DetectionReport,
    KernelReport,
    TelemetrySource,
)
from qbackbone.core.circuits.features import extract_features
from qbackbone.core.detect.decide import KernelRules, kernel_rules, why_classical
from qbackbone.core.detect.features import (
    FEATURES,
    WindowSet,
    build_windows,
    training_windows,
)
from qbackbone.core.detect.kernel import (
    FEATURE_MAP,
    Runner,
    check_and_repair,
    depolarizing_probability,
    estimate_kernel,
    exact_kernel,
    fidelity_template,
    mitigate,
    shot_sigma,
)
from qbackbone.core.detect.models import Scored, isolation_forest, kernel_svm, rbf_svm, scores_of
from qbackbone.core.detect.report import flagged_windows
from qbackbone.core.errors import JobFailure
from qbackbone.core.optimize.problem import ProblemError, ProblemTooLarge
from qbackbone.core.optimize.topology import ConfigMapReader
from qbackbone.core.pipeline.decide import decide_reduced
from qbackbone.core.pipeline.finish import conclude
from qbackbone.core.pipeline.jobrun import JobRun, as_job_failure
from qbackbone.core.pipeline.reduce import ReducedJob, deadline_remaining, resolve_policy
from qbackbone.core.qip.engine import record_rule
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.core.qpus.fleet import QPU
from qbackbone.core.telemetry.model import Telemetry
from qbackbone.core.telemetry.source import load_telemetry

PILOT_CIRCUITS = 20
DIAGONAL_PROBES = 8  # k(x, x) circuits run on a noisy QPU to measure its damping
NOISY_ALLOWANCE = 0.15  # noisy QPUs: mitigated entries within this of the exact kernel
TIME_FRACTION = 0.5  # of the remaining deadline (or a third of maxRunSeconds)
EXACT_SIGMAS = 6.0  # agreement: every entry within this many shot sigmas of the exact kernel


@dataclass
class DetectState:
    """A detect job between its steps."""

    run: JobRun
    spec: AnomalyDetectionProblem
    policy: InvocationPolicy
    telemetry: Telemetry
    names: list[str]
    windows: WindowSet
    train: np.ndarray  # indices of the training windows used
    test: np.ndarray
    remaining: float | None
    seed: int
    compiled: QuantumCircuit | None = None  # the fidelity template, compiled for the QPU
    params: tuple[ParameterVector, ParameterVector] | None = None  # its two inputs


def load_problem_telemetry(spec: TelemetrySource,
                           read_config_map: ConfigMapReader | None) -> Telemetry:
    """load_telemetry with its errors as the job's failure reasons."""
    try:
        return load_telemetry(spec, read_config_map)
    except ProblemTooLarge as err:
        raise JobFailure(Reason.INPUT_TOO_LARGE, str(err)) from None
    except ProblemError as err:
        raise JobFailure(Reason.INVALID_PROBLEM, str(err)) from None


def _reduce(run: JobRun, policies: Mapping[str, InvocationPolicy], seed: int | None,
            read_config_map: ConfigMapReader | None) -> DetectState:
    job = run.job
    assert job.spec.problem is not None and job.spec.problem.anomaly_detection is not None
    spec = job.spec.problem.anomaly_detection
    run.status.phase = Phase.DECIDING
    with run.phase("reduce_seconds"):
        policy = resolve_policy(job, policies)
        remaining = deadline_remaining(job, run.now)
        telemetry = load_problem_telemetry(spec.telemetry, read_config_map)
        names, values = telemetry.series(spec.series)
        need = 4 * spec.window
        if telemetry.steps < need or int(telemetry.steps * spec.train_fraction) < 2 * spec.window:
            raise JobFailure(Reason.INVALID_PROBLEM, f"the telemetry has {telemetry.steps} "
                             f"steps: detect needs at least {need} (4 windows of "
                             f"{spec.window}) and two windows before the train/test split")
        windows = build_windows(values, telemetry.labels, spec.window, spec.train_fraction,
                                telemetry.steps_per_day, spec.qubits)
        train = training_windows(windows, spec.max_train_windows)
        test = np.flatnonzero(~windows.train)
    run.progress.step("reduce", f"{len(names)} series x {telemetry.steps} steps -> "
                      f"{len(windows.starts)} windows of {spec.window}: {len(FEATURES)} "
                      f"features -> {windows.reduced.shape[1]} components (PCA, "
                      f"{windows.explained_variance:.0%} of the variance)")
    return DetectState(run, spec, policy, telemetry, names, windows, train, test, remaining,
                       seed if seed is not None else policy.spec.scheduler.seed or 0)


def _labels(state: DetectState, which: np.ndarray) -> np.ndarray | None:
    labels = state.windows.labels
    return None if labels is None else labels[which]


def _decide(state: DetectState, fleet: Sequence[QPU]) -> tuple[KernelRules, QPU | None, str]:
    run, spec = state.run, state.spec
    x_train = state.windows.reduced[state.train]
    with run.phase("decide_seconds"):
        outcome = kernel_rules(spec, run.job.spec.execution.mode, x_train,
                               _labels(state, state.train), len(state.test), state.seed)
    run.status.decision = Decision(
        policy=state.policy.metadata.name, policy_generation=state.policy.metadata.generation,
        reason=Reason.QUANTUM_SELECTED, message="", rules=outcome.rules,
        features={"qubits": x_train.shape[1], "trainWindows": len(state.train),
                  "testWindows": len(state.test), "kernelCircuits": outcome.circuits,
                  **{f"validationF1.{k}": v for k, v in outcome.validation.items()}})
    if not outcome.quantum:
        why = "; ".join(why_classical(r) for r in outcome.rules if not r.passed)
        if outcome.validation:
            scores = ", ".join(f"{k} {v}" for k, v in outcome.validation.items())
            why += f"; {outcome.classical} by cross-validated F1 ({scores})"
        return outcome, None, why
    qpu, why = _choose_qpu(state, fleet, outcome)
    return outcome, qpu, why


def _choose_qpu(state: DetectState, fleet: Sequence[QPU],
                outcome: KernelRules) -> tuple[QPU | None, str]:
    """The QIP on one fidelity circuit, then the timed pilot batch."""
    run, spec = state.run, state.spec
    x = state.windows.reduced
    template, px, py = fidelity_template(x.shape[1])
    sample = template.assign_parameters(dict(zip(px, x[state.train[0]], strict=True))
                                        | dict(zip(py, x[state.train[-1]], strict=True)))
    reduced = ReducedJob(policy=state.policy, circuit=sample, observables=None, bases=[],
                         basis_of=[], measured_circuits=[sample], shots=spec.kernel_shots,
                         features=extract_features(sample, 1, spec.kernel_shots),
                         deadline_remaining=state.remaining, dynamic=False)
    try:
        decided = decide_reduced(run, reduced, fleet, state.seed)
    except JobFailure as refused:
        if spec.model == "QuantumKernel":
            raise
        return None, f"the QIP refused the kernel circuit ({refused.reason}: {refused.message})"
    if decided.qip.path != "SingleQPU" or not decided.qip.shares:
        if spec.model == "QuantumKernel":
            raise JobFailure(Reason.NO_ELIGIBLE_QPU, f"model QuantumKernel, but the QIP chose "
                             f"{decided.qip.path} for the kernel circuit: {decided.qip.message}")
        return None, f"the QIP chose {decided.qip.path} for the kernel circuit"
    qpu = next(q for q in fleet if q.name == decided.qip.shares[0].qpu)
    budget = state.policy.spec.limits.max_run_seconds / 3
    if state.remaining is not None:
        budget = min(budget, TIME_FRACTION * state.remaining)
    compiled = qpu.transpile([template])[0]
    pilot = x[state.train[:PILOT_CIRCUITS]]
    as_job_failure(run, Reason.EXECUTION_FAILED, lambda: estimate_kernel(  # warm-up call
        pilot[:2], pilot[:0], compiled, (px, py), _runner(qpu, state.seed, "warm"), 10))
    start = time.perf_counter()
    as_job_failure(run, Reason.EXECUTION_FAILED, lambda: estimate_kernel(
        pilot, pilot[:0], compiled, (px, py), _runner(qpu, state.seed, "pilot"),
        spec.kernel_shots))
    per_circuit = (time.perf_counter() - start) / max(1, len(pilot) * (len(pilot) - 1) // 2)
    seconds = per_circuit * outcome.circuits
    assert run.status.decision is not None
    rules = run.status.decision.rules
    fits = record_rule(rules, "kernelTimeFits", round(seconds, 2), round(budget, 2),
                       seconds <= budget, qpu=qpu.name)
    if not fits:
        if spec.model == "QuantumKernel":
            raise JobFailure(Reason.DEADLINE_INFEASIBLE, why_classical(rules[-1]))
        return None, why_classical(rules[-1])
    state.compiled, state.params = compiled, (px, py)
    return qpu, (f"quantum kernel on {qpu.name}: {outcome.circuits} fidelity circuits x "
                 f"{spec.kernel_shots} shots, about {seconds:.1f}s")


def _runner(qpu: QPU, seed: int, label: str) -> Runner:
    calls = iter(range(1 << 30))

    def run(circuits: Sequence[QuantumCircuit], shots: int) -> list[dict[str, int]]:
        return qpu.executor.run(circuits, shots, derive_seed(seed, "kernel", label, next(calls)))
    return run


def run_detect_job(run: JobRun, fleet: Sequence[QPU], policies: Mapping[str, InvocationPolicy],
                   seed: int | None = None,
                   read_config_map: ConfigMapReader | None = None) -> QuantumJobStatus:
    """Reduce, decide, solve and verify a detect job."""
    state = _reduce(run, policies, seed, read_config_map)
    outcome, qpu, why = _decide(state, fleet)
    decision = run.status.decision
    assert decision is not None
    decision.path = "SingleQPU" if qpu is not None else "Classical"
    decision.reason = Reason.QUANTUM_SELECTED if qpu is not None else Reason.CLASSICAL_SELECTED
    decision.message = why if qpu is not None else f"classical: {why}"
    run.condition(ConditionType.DECIDED, True, decision.reason, decision.message)
    run.progress.step("decide", decision.message)
    x, spec = state.windows.reduced, state.spec
    x_train, x_test = x[state.train], x[state.test]
    y_train = _labels(state, state.train)
    run.status.phase = Phase.RUNNING
    baselines: list[Scored] = []
    with run.phase("execute_seconds"):
        baselines.append(rbf_svm(x_train, x_test, y_train))
        baselines.append(isolation_forest(x_train, x_test, y_train, state.seed))
        kernel_report = None
        verification = Verification(method="SelfConsistent", passed=True, noisy=False,
                                    informative=False, details="classical model; scores "
                                    "on the test windows reported")
        if qpu is not None:
            chosen, kernel_report, verification = _quantum(state, qpu, outcome)
            result = Result(path="SingleQPU", qpus=[qpu.name],
                            backends=[qpu.descriptor.backend_name],
                            shots=kernel_report.total_shots, method="quantumKernelSvc",
                            ideal_simulator=qpu.descriptor.ideal)
        else:
            model = {"RbfSvm": "rbfSvm", "IsolationForest": "isolationForest"}.get(
                spec.model, outcome.classical)
            chosen = baselines[0] if model == "rbfSvm" else baselines[1]
            result = Result(path="Classical", backends=[chosen.model], method=chosen.model)
    run.condition(ConditionType.EXECUTED, True, Reason.FRAGMENTS_COMPLETED if qpu else
                  Reason.CLASSICAL_COMPLETED, f"{chosen.model} scored {len(state.test)} windows")
    return _finish(state, chosen, baselines, kernel_report, result, verification, why)


def _quantum(state: DetectState, qpu: QPU, outcome: KernelRules
             ) -> tuple[Scored, KernelReport, Verification]:
    run, spec = state.run, state.spec
    x = state.windows.reduced
    x_train, x_test = x[state.train], x[state.test]
    compiled, params = state.compiled, state.params
    if compiled is None or params is None:
        template, px, py = fidelity_template(x.shape[1])
        compiled, params = qpu.transpile([template])[0], (px, py)
    noisy = not qpu.descriptor.ideal
    start = time.perf_counter()
    estimated = as_job_failure(run, Reason.EXECUTION_FAILED, lambda: estimate_kernel(
        x_train, x_test, compiled, params, _runner(qpu, state.seed, "kernel"),
        spec.kernel_shots, diagonal=DIAGONAL_PROBES if noisy else 0))
    seconds = time.perf_counter() - start
    k_train, k_test, p = estimated.train, estimated.test, None
    if noisy:
        p = depolarizing_probability(estimated.diagonal, x.shape[1])
        k_train, k_test = mitigate(k_train, p, x.shape[1]), mitigate(k_test, p, x.shape[1])
    with run.phase("verify_seconds"):
        fixed, check = check_and_repair(k_train)
        sigma = shot_sigma(spec.kernel_shots)
        allowed = EXACT_SIGMAS * sigma + (NOISY_ALLOWANCE if noisy else 0.0)
        deviation, agrees = None, None
        if outcome.exact_train is not None:
            exact_test = exact_kernel(x_test, x_train)
            deviation = float(max(np.abs(k_train - outcome.exact_train).max(),
                                  np.abs(k_test - exact_test).max()))
            agrees = deviation <= allowed
    report = KernelReport(
        qubits=x.shape[1], feature_map=FEATURE_MAP, circuits=estimated.circuits,
        shots_per_circuit=spec.kernel_shots, total_shots=estimated.circuits * spec.kernel_shots,
        seconds=round(seconds, 3), backend=qpu.name,
        off_diagonal_mean=round(check.off_mean, 4), off_diagonal_std=round(check.off_std, 4),
        shot_noise_sigma=round(sigma, 5), symmetry_error=round(check.symmetry_error, 6),
        min_eigenvalue=round(check.min_eigenvalue, 6),
        psd_repaired=check.repaired,
        mitigation="globalDepolarizing" if noisy else None,
        depolarizing=None if p is None else round(p, 5),
        exact_max_deviation=None if deviation is None else round(deviation, 5),
        exact_agrees=agrees)
    details = (f"kernel: symmetry error {check.symmetry_error:.2g}, min eigenvalue "
               f"{check.min_eigenvalue:.3g}{' (PSD repaired)' if check.repaired else ''}"
               + ("" if deviation is None else f", max |K - K_exact| {deviation:.4f} "
                  f"(allowed {allowed:.4f})")
               + ("" if p is None else f"; global depolarizing p = {p:.3f} undone"))
    verification = Verification(
        method="ExactStatevector" if deviation is not None else "SelfConsistent",
        passed=agrees is not False, noisy=noisy, max_abs_deviation=deviation, details=details)
    if agrees is False:
        run.condition(ConditionType.VERIFIED, False, Reason.DEVIATES, details)
        raise JobFailure(Reason.VERIFICATION_FAILED, "the estimated kernel deviates from the "
                         "exact kernel beyond shot noise: " + details)
    scored = kernel_svm("quantumKernelSvc", fixed, k_test,
                        _labels(state, state.train))
    return Scored(scored.model, scored.scores, scored.threshold, seconds), report, verification


def _finish(state: DetectState, chosen: Scored, baselines: list[Scored],
            kernel: KernelReport | None, result: Result, verification: Verification,
            why: str) -> QuantumJobStatus:
    run = state.run
    y_test = _labels(state, state.test)
    scores = scores_of(chosen, y_test)
    flagged, missed = flagged_windows(state, chosen)
    report = DetectionReport(
        series=len(state.names), steps=state.telemetry.steps, windows=len(state.windows.starts),
        train_windows=len(state.train), test_windows=len(state.test), features=len(FEATURES),
        qubits=state.windows.reduced.shape[1],
        explained_variance=round(state.windows.explained_variance, 4), model=chosen.model,
        why=why, threshold=round(chosen.threshold, 6), scores=scores,
        baselines=[scores_of(b, y_test) for b in baselines], kernel=kernel, flagged=flagged,
        missed=missed, injected=state.telemetry.anomalies)
    objective = scores.f1 if scores.f1 is not None else scores.flagged / max(1, len(state.test))
    result.solution = ProblemSolution(
        kind="anomalyDetection", solver=chosen.model, variables=report.qubits, feasible=True,
        objective=objective, objective_sense="maximize", detection=report)
    run.status.result = result
    run.status.verification = verification
    line = (f"{chosen.model}: {scores.flagged} of {len(state.test)} windows flagged"
            + (f", F1 {scores.f1:.3f}, AUC {scores.auc}" if scores.f1 is not None else "")
            + "; baselines " + ", ".join(f"{b.model} F1 {b.f1}" for b in report.baselines))
    run.progress.step("verify", line)
    run.condition(ConditionType.VERIFIED, True, Reason.MATCHES_EXACT if verification.method ==
                  "ExactStatevector" else Reason.SELF_CHECK, verification.details or line)
    return conclude(run, state.remaining)
