"""A decided detect job solved and verified: the kernel from its circuits' counts (SVC /
one-class SVM), or the classical model; the classical baselines beside it; the report.

``run_detect_job`` runs it all in this process. The operator runs the same steps with the
kernel circuits as fragment pods (``k8s.kernel``) and the classical models in a worker pod
(``k8s.analysis``): both end in ``finish_detect``.
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
from qbackbone.api.quantumjob import QuantumJobStatus, Result, Verification
from qbackbone.api.telemetry import DetectionReport, KernelReport
from qbackbone.core.detect.features import FEATURES
from qbackbone.core.detect.kernel import (
    FEATURE_MAP,
    EstimatedKernel,
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
from qbackbone.core.optimize.topology import ConfigMapReader
from qbackbone.core.pipeline.detect import (
    DetectDecision,
    DetectState,
    decide_detect,
    kernel_runner,
    labels_of,
)
from qbackbone.core.pipeline.finish import conclude
from qbackbone.core.pipeline.jobrun import JobRun, as_job_failure
from qbackbone.core.qpus.fleet import QPU

DIAGONAL_PROBES = 8  # k(x, x) circuits run on a noisy QPU to measure its damping
NOISY_ALLOWANCE = 0.15  # noisy QPUs: mitigated entries within this of the exact kernel
EXACT_SIGMAS = 6.0  # agreement: every entry within this many shot sigmas of the exact kernel
CLASSICAL_MODELS = {"RbfSvm": "rbfSvm", "IsolationForest": "isolationForest"}


@dataclass(frozen=True)
class KernelInputs:
    """What the kernel circuits are built from: the points, the compiled template and its
    two parameter vectors, and the noise probes (k(x, x) circuits) to add."""

    train: np.ndarray
    test: np.ndarray
    compiled: QuantumCircuit
    params: tuple[ParameterVector, ParameterVector]
    diagonal: int


def kernel_inputs(state: DetectState, qpu: QPU) -> KernelInputs:
    """The kernel circuits' inputs on ``qpu`` (the decision's compilation when it made one)."""
    x = state.windows.reduced
    compiled, params = state.compiled, state.params
    if compiled is None or params is None:
        template, px, py = fidelity_template(x.shape[1])
        compiled, params = qpu.transpile([template])[0], (px, py)
    probes = 0 if qpu.descriptor.ideal else DIAGONAL_PROBES
    return KernelInputs(x[state.train], x[state.test], compiled, params, probes)


def classical_baselines(state: DetectState) -> list[Scored]:
    """The RBF SVM and the IsolationForest on the test windows (reported beside any model)."""
    x = state.windows.reduced
    x_train, x_test = x[state.train], x[state.test]
    y_train = labels_of(state, state.train)
    return [rbf_svm(x_train, x_test, y_train),
            isolation_forest(x_train, x_test, y_train, state.seed)]


def run_detect_job(run: JobRun, fleet: Sequence[QPU], policies: Mapping[str, InvocationPolicy],
                   seed: int | None = None,
                   read_config_map: ConfigMapReader | None = None) -> QuantumJobStatus:
    """Reduce, decide, solve and verify a detect job in this process."""
    decided = decide_detect(run, fleet, policies, seed, read_config_map)
    state, qpu = decided.state, decided.qpu
    run.status.phase = Phase.RUNNING
    with run.phase("execute_seconds"):
        baselines = classical_baselines(state)
        if qpu is None:
            return finish_detect(decided, baselines)
        inputs = kernel_inputs(state, qpu)
        start = time.perf_counter()
        estimated = as_job_failure(run, Reason.EXECUTION_FAILED, lambda: estimate_kernel(
            inputs.train, inputs.test, inputs.compiled, inputs.params,
            kernel_runner(qpu, state.seed, "kernel"), state.spec.kernel_shots,
            diagonal=inputs.diagonal))
        seconds = time.perf_counter() - start
    return finish_detect(decided, baselines, estimated, seconds)


def finish_detect(decided: DetectDecision, baselines: Sequence[Scored],
                  estimated: EstimatedKernel | None = None,
                  seconds: float = 0.0) -> QuantumJobStatus:
    """The job's status from the baselines and, on the quantum path, the estimated kernel
    (``seconds``: how long its circuits took)."""
    state, qpu, run = decided.state, decided.qpu, decided.state.run
    run.status.phase = Phase.RUNNING
    kernel_report = None
    verification = Verification(method="SelfConsistent", passed=True, noisy=False,
                                informative=False, details="classical model; scores "
                                "on the test windows reported")
    if qpu is not None:
        if estimated is None:
            raise JobFailure(Reason.EXECUTION_FAILED, "the quantum path has no kernel")
        chosen, kernel_report, verification = _quantum(decided, qpu, estimated, seconds)
        result = Result(path="SingleQPU", qpus=[qpu.name],
                        backends=[qpu.descriptor.backend_name],
                        shots=kernel_report.total_shots, method="quantumKernelSvc",
                        ideal_simulator=qpu.descriptor.ideal)
    else:
        model = CLASSICAL_MODELS.get(state.spec.model, decided.outcome.classical)
        chosen = next(b for b in baselines if b.model == model)
        result = Result(path="Classical", backends=[chosen.model], method=chosen.model)
    run.condition(ConditionType.EXECUTED, True, Reason.FRAGMENTS_COMPLETED if qpu else
                  Reason.CLASSICAL_COMPLETED, f"{chosen.model} scored {len(state.test)} windows")
    return _finish(state, chosen, list(baselines), kernel_report, result, verification,
                   decided.why)


def _quantum(decided: DetectDecision, qpu: QPU, estimated: EstimatedKernel, seconds: float
             ) -> tuple[Scored, KernelReport, Verification]:
    state, outcome = decided.state, decided.outcome
    run, spec = state.run, state.spec
    x = state.windows.reduced
    x_train, x_test = x[state.train], x[state.test]
    noisy = not qpu.descriptor.ideal
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
    scored = kernel_svm("quantumKernelSvc", fixed, k_test, labels_of(state, state.train))
    return Scored(scored.model, scored.scores, scored.threshold, seconds), report, verification



def _finish(state: DetectState, chosen: Scored, baselines: list[Scored],
            kernel: KernelReport | None, result: Result, verification: Verification,
            why: str) -> QuantumJobStatus:
    run = state.run
    y_test = labels_of(state, state.test)
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
