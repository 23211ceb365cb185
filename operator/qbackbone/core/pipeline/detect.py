"""A detect job (spec.problem.anomalyDetection): reduce, decide, solve, verify in this process.

Reduce: telemetry (generated or CSV) to window features compressed to the qubit budget.
Decide: the detect rules (core/detect/decide.py), then the QIP on one fidelity circuit
(qubits, fidelity, deadline: the QPU), then a timed pilot batch of kernel circuits against
the time budget. Solve: the kernel estimated on that QPU (SVC / one-class SVM), or the
classical model. Verify: kernel symmetry, PSD repair, agreement with the exact kernel;
scores on labelled windows beside the classical baselines.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit
from qiskit.circuit import ParameterVector

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import Decision
from qbackbone.api.telemetry import AnomalyDetectionProblem, TelemetrySource
from qbackbone.core.circuits.features import extract_features
from qbackbone.core.detect.decide import KernelRules, kernel_rules, why_classical
from qbackbone.core.detect.features import FEATURES, WindowSet, build_windows, training_windows
from qbackbone.core.detect.kernel import (
    Runner,
    circuits_per_call,
    estimate_kernel,
    fidelity_template,
)
from qbackbone.core.errors import JobFailure
from qbackbone.core.optimize.problem import ProblemError, ProblemTooLarge
from qbackbone.core.optimize.topology import ConfigMapReader
from qbackbone.core.pipeline.decide import DecidedJob, decide_reduced
from qbackbone.core.pipeline.jobrun import JobRun, as_job_failure
from qbackbone.core.pipeline.reduce import ReducedJob, deadline_remaining, resolve_policy
from qbackbone.core.qip.engine import record_rule
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.core.qpus.fleet import QPU
from qbackbone.core.telemetry.model import Telemetry
from qbackbone.core.telemetry.source import load_telemetry

PILOT_CIRCUITS = 20
TIME_FRACTION = 0.5  # of the remaining deadline (or a third of maxRunSeconds)


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
    kernel_job: DecidedJob | None = None  # the QIP's decision on one fidelity circuit


def load_problem_telemetry(spec: TelemetrySource,
                           read_config_map: ConfigMapReader | None) -> Telemetry:
    """load_telemetry with its errors as the job's failure reasons."""
    try:
        return load_telemetry(spec, read_config_map)
    except ProblemTooLarge as err:
        raise JobFailure(Reason.INPUT_TOO_LARGE, str(err)) from None
    except ProblemError as err:
        raise JobFailure(Reason.INVALID_PROBLEM, str(err)) from None


def reduce_detect(run: JobRun, policies: Mapping[str, InvocationPolicy], seed: int | None,
                  read_config_map: ConfigMapReader | None = None) -> DetectState:
    """Telemetry to window features compressed to the qubit budget (PCA), split in time."""
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


def labels_of(state: DetectState, which: np.ndarray) -> np.ndarray | None:
    """The labels of windows ``which`` (None: the telemetry has none)."""
    labels = state.windows.labels
    return None if labels is None else labels[which]


def _decide(state: DetectState, fleet: Sequence[QPU], pilot: bool
            ) -> tuple[KernelRules, QPU | None, str]:
    run, spec = state.run, state.spec
    x_train = state.windows.reduced[state.train]
    with run.phase("decide_seconds"):
        outcome = kernel_rules(spec, run.job.spec.execution.mode, x_train,
                               labels_of(state, state.train), len(state.test), state.seed)
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
    qpu, why = _choose_qpu(state, fleet, outcome, pilot)
    return outcome, qpu, why


def _choose_qpu(state: DetectState, fleet: Sequence[QPU], outcome: KernelRules,
                pilot: bool) -> tuple[QPU | None, str]:
    """The QIP on one fidelity circuit, then the kernel's time against the budget: measured
    on a pilot batch (``pilot``, in this process), else from the QPU's time model (the
    operator: its decision must be re-derivable, and the pods run elsewhere)."""
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
    if pilot:
        seconds = _pilot_seconds(state, qpu, compiled, (px, py)) * outcome.circuits
    else:
        seconds = model_seconds(qpu, outcome.circuits, spec.kernel_shots, x.shape[1])
    assert run.status.decision is not None
    rules = run.status.decision.rules
    fits = record_rule(rules, "kernelTimeFits", round(seconds, 2), round(budget, 2),
                       seconds <= budget, qpu=qpu.name)
    if not fits:
        if spec.model == "QuantumKernel":
            raise JobFailure(Reason.DEADLINE_INFEASIBLE, why_classical(rules[-1]))
        return None, why_classical(rules[-1])
    state.compiled, state.params, state.kernel_job = compiled, (px, py), decided
    return qpu, (f"quantum kernel on {qpu.name}: {outcome.circuits} fidelity circuits x "
                 f"{spec.kernel_shots} shots, about {seconds:.1f}s")


def _pilot_seconds(state: DetectState, qpu: QPU, compiled: QuantumCircuit,
                   params: tuple[ParameterVector, ParameterVector]) -> float:
    """Seconds per kernel circuit, timed on a pilot batch after a warm-up call."""
    pilot = state.windows.reduced[state.train[:PILOT_CIRCUITS]]
    run, shots = state.run, state.spec.kernel_shots
    as_job_failure(run, Reason.EXECUTION_FAILED, lambda: estimate_kernel(  # warm-up call
        pilot[:2], pilot[:0], compiled, params, kernel_runner(qpu, state.seed, "warm"), 10))
    start = time.perf_counter()
    as_job_failure(run, Reason.EXECUTION_FAILED, lambda: estimate_kernel(
        pilot, pilot[:0], compiled, params, kernel_runner(qpu, state.seed, "pilot"), shots))
    return (time.perf_counter() - start) / max(1, len(pilot) * (len(pilot) - 1) // 2)


def model_seconds(qpu: QPU, circuits: int, shots: int, qubits: int) -> float:
    """The kernel's QPU time by the QPU's time model: a setup per fragment of
    ``circuits_per_call`` circuits, and every shot."""
    calls = max(1, math.ceil(circuits / circuits_per_call(qubits)))
    d = qpu.descriptor
    return calls * d.setup_time + circuits * shots * d.shot_time


def kernel_runner(qpu: QPU, seed: int, label: str) -> Runner:
    """(circuits, shots) -> counts on ``qpu``, each call with its own derived seed."""
    calls = iter(range(1 << 30))

    def run(circuits: Sequence[QuantumCircuit], shots: int) -> list[dict[str, int]]:
        return qpu.executor.run(circuits, shots, derive_seed(seed, "kernel", label, next(calls)))
    return run


@dataclass
class DetectDecision:
    """A decided detect job: the kernel on ``qpu``, or (None) the classical model."""

    state: DetectState
    outcome: KernelRules
    qpu: QPU | None
    why: str


def decide_detect(run: JobRun, fleet: Sequence[QPU], policies: Mapping[str, InvocationPolicy],
                  seed: int | None = None, read_config_map: ConfigMapReader | None = None,
                  pilot: bool = True) -> DetectDecision:
    """Reduce and decide a detect job (``pilot``: time the kernel on a pilot batch here)."""
    state = reduce_detect(run, policies, seed, read_config_map)
    outcome, qpu, why = _decide(state, fleet, pilot)
    decision = run.status.decision
    assert decision is not None
    decision.path = "SingleQPU" if qpu is not None else "Classical"
    decision.reason = Reason.QUANTUM_SELECTED if qpu is not None else Reason.CLASSICAL_SELECTED
    decision.message = why if qpu is not None else f"classical: {why}"
    run.condition(ConditionType.DECIDED, True, decision.reason, decision.message)
    run.progress.step("decide", decision.message)
    return DetectDecision(state, outcome, qpu, why)

