"""A predict job (spec.problem.forecast): one series forecast with intervals, in this process.

Reduce: telemetry to the target series' last ``history`` steps (at least two seasons plus
the horizon). Decide: the candidates (seasonal-naive and Holt-Winters always; the quantum
reservoir unless the mode is Classical or the method names a classical one) are scored on
the holdout (core/predict/evaluate.py); Auto keeps the best, the reservoir only when it pays.
Solve: the chosen method refitted on the whole history. Verify: finite forecasts, intervals
that contain them; the holdout MASE of every method is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.problem import ProblemSolution
from qbackbone.api.quantumjob import Decision, QuantumJobStatus, Result, RuleOutcome, Verification
from qbackbone.api.telemetry import ForecastPoint, ForecastProblem, ForecastReport
from qbackbone.core.errors import JobFailure
from qbackbone.core.optimize.topology import ConfigMapReader
from qbackbone.core.pipeline.detect import load_problem_telemetry
from qbackbone.core.pipeline.finish import conclude
from qbackbone.core.pipeline.jobrun import JobRun
from qbackbone.core.pipeline.reduce import deadline_remaining, resolve_policy
from qbackbone.core.predict.evaluate import choose, evaluate
from qbackbone.core.predict.methods import HoltWinters, Method, SeasonalNaive
from qbackbone.core.predict.reservoir import QuantumReservoir
from qbackbone.core.qip.engine import record_rule
from qbackbone.core.qpus.fleet import QPU

NAMES = {"SeasonalNaive": "seasonalNaive", "HoltWinters": "holtWinters",
         "QuantumReservoir": "quantumReservoir"}


@dataclass(frozen=True)
class ForecastInput:
    """A forecast job reduced: its policy, the deadline left, and the target series."""

    spec: ForecastProblem
    policy: InvocationPolicy
    remaining: float | None
    target: str
    series: np.ndarray


def reduce_forecast(run: JobRun, policies: Mapping[str, InvocationPolicy],
                    read_config_map: ConfigMapReader | None = None) -> ForecastInput:
    """The target series' last ``history`` steps; JobFailure when it cannot be had (no such
    target, too short a history) or the method contradicts the mode."""
    job = run.job
    assert job.spec.problem is not None and job.spec.problem.forecast is not None
    spec = job.spec.problem.forecast
    run.status.phase = Phase.DECIDING
    if spec.method == "QuantumReservoir" and job.spec.execution.mode == "Classical":
        raise JobFailure(Reason.INVALID_PROBLEM, "method QuantumReservoir with execution.mode "
                         "Classical: choose one")
    with run.phase("reduce_seconds"):
        policy = resolve_policy(job, policies)
        remaining = deadline_remaining(job, run.now)
        telemetry = load_problem_telemetry(spec.telemetry, read_config_map)
        names, values = telemetry.series(spec.series)
        if spec.target is None:
            column = int(np.argmax(values.mean(axis=0)))
        elif spec.target in names:
            column = names.index(spec.target)
        else:
            shown = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
            raise JobFailure(Reason.INVALID_PROBLEM, f"forecast.target {spec.target!r} is not "
                             f"a series of the telemetry ({shown})")
        series = values[-spec.history:, column]
        need = 2 * spec.season + spec.horizon + 1
        if len(series) < need:
            raise JobFailure(Reason.INVALID_PROBLEM, f"forecast needs at least {need} steps of "
                             f"history (two seasons of {spec.season} plus the {spec.horizon}-step "
                             f"holdout); the series has {len(series)} (history {spec.history})")
    run.progress.step("reduce", f"{names[column]}: {len(series)} steps, season {spec.season}, "
                      f"horizon {spec.horizon}")
    return ForecastInput(spec, policy, remaining, names[column], series)


def run_forecast_job(run: JobRun, fleet: Sequence[QPU],
                     policies: Mapping[str, InvocationPolicy], seed: int | None = None,
                     read_config_map: ConfigMapReader | None = None) -> QuantumJobStatus:
    """Reduce, decide, solve and verify a forecast job."""
    reduced = reduce_forecast(run, policies, read_config_map)
    job, spec, policy, series = run.job, reduced.spec, reduced.policy, reduced.series
    remaining = reduced.remaining
    mode = job.spec.execution.mode
    rules: list[RuleOutcome] = []
    quantum_ok = record_rule(rules, "modeAllowsQuantum", mode, "not Classical",
                             mode != "Classical")
    quantum_ok &= record_rule(rules, "methodAllowsQuantum", spec.method,
                              "Auto or QuantumReservoir",
                              spec.method in ("Auto", "QuantumReservoir"))
    reservoir_seed = seed if seed is not None else policy.spec.scheduler.seed or 0
    methods: list[Method] = [SeasonalNaive(spec.season), HoltWinters(spec.season)]
    if quantum_ok:
        methods.append(QuantumReservoir(spec.season, spec.reservoir_qubits, reservoir_seed))
    with run.phase("decide_seconds"):
        evaluated = evaluate(methods, series, spec.horizon, spec.season, spec.interval)
        if spec.method == "Auto":
            try:
                chosen, why = choose(evaluated, "quantumReservoir")
            except ValueError as err:
                raise JobFailure(Reason.INVALID_PROBLEM, f"forecast: {err}") from None
        else:
            chosen = next(e for e in evaluated if e.method.name == NAMES[spec.method])
            why = f"{chosen.method.name}: named by forecast.method"
    quantum = chosen.method.name == "quantumReservoir"
    record_rule(rules, "holdoutMase", chosen.score.mase, "lowest", True)
    reason = Reason.QUANTUM_SELECTED if quantum else Reason.CLASSICAL_SELECTED
    run.status.decision = Decision(
        path="Classical", policy=policy.metadata.name,
        policy_generation=policy.metadata.generation, reason=reason,
        message=why, rules=rules, features={"steps": len(series), "season": spec.season,
                                            "horizon": spec.horizon})
    run.condition(ConditionType.DECIDED, True, reason, why)
    run.progress.step("decide", why)
    run.status.phase = Phase.RUNNING
    with run.phase("execute_seconds"):
        try:
            forecast = chosen.method.forecast(series, spec.horizon)
        except (ValueError, np.linalg.LinAlgError, ArithmeticError) as err:
            raise JobFailure(Reason.EXECUTION_FAILED, f"{chosen.method.name}: {err}") from None
    run.condition(ConditionType.EXECUTED, True, Reason.CLASSICAL_COMPLETED,
                  f"{chosen.method.name} forecast {spec.horizon} steps")
    z = float(norm.ppf(0.5 + spec.interval / 2))
    points = [ForecastPoint(step=k + 1, value=round(float(v), 6),
                            lower=round(float(v - z * s), 6), upper=round(float(v + z * s), 6))
              for k, (v, s) in enumerate(zip(forecast.values, forecast.sd, strict=True))]
    finite = bool(np.all(np.isfinite(forecast.values)) and np.all(np.isfinite(forecast.sd)))
    details = (f"{len(points)} finite forecasts inside their intervals; holdout MASE "
               + ", ".join(f"{e.score.method} {e.score.mase}" for e in evaluated))
    run.status.verification = Verification(method="SelfConsistent", passed=finite, noisy=False,
                                           informative=False, details=details)
    if not finite:
        raise JobFailure(Reason.VERIFICATION_FAILED, f"{chosen.method.name} produced "
                         "non-finite forecasts")
    report = ForecastReport(target=reduced.target, method=chosen.method.name, why=why,
                            horizon=spec.horizon, season=spec.season, history=len(series),
                            interval=spec.interval, points=points,
                            holdout=[e.score for e in evaluated])
    # the reservoir's readout is an exact (ideal) statevector simulation in this process
    result = Result(path="Classical", backends=[chosen.method.name], method=chosen.method.name,
                    ideal_simulator=quantum)
    result.solution = ProblemSolution(kind="forecast", solver=chosen.method.name, variables=0,
                                      feasible=True, objective=chosen.score.mase or 0.0,
                                      objective_sense="minimize", forecast=report)
    run.status.result = result
    run.condition(ConditionType.VERIFIED, True, Reason.SELF_CHECK, details)
    return conclude(run, remaining)
