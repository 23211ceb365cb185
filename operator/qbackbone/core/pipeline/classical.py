"""The Classical path: the fallback simulator the QIP chose, its result verified."""

from __future__ import annotations

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.quantumjob import ExpectationValue, QuantumJobStatus, Result
from qbackbone.core.classical.fallback import ClassicalOutcome, run_classical
from qbackbone.core.pipeline.decide import DecidedJob
from qbackbone.core.pipeline.finish import verify_and_finish
from qbackbone.core.pipeline.jobrun import as_job_failure
from qbackbone.core.verify.checks import NoiseProfile


def run_classical_fallback(decided: DecidedJob) -> ClassicalOutcome:
    """Run the fallback the QIP chose (statevector or MPS)."""
    run, reduced = decided.run, decided.reduced
    method = decided.context.classical_method or "statevector"
    run.status.phase = Phase.RUNNING
    run.progress.step("execute", f"classical fallback: {method} on "
                      f"{reduced.features.qubits} qubits")
    with run.phase("execute_seconds"):
        return as_job_failure(run, Reason.EXECUTION_FAILED, lambda: run_classical(
            reduced.circuit, reduced.observables, reduced.shots, method, decided.seed))


def finish_classical(decided: DecidedJob, outcome: ClassicalOutcome) -> QuantumJobStatus:
    """The classical result in the same shape as the quantum one, verified."""
    run, reduced = decided.run, decided.reduced
    run.condition(ConditionType.EXECUTED, True, Reason.CLASSICAL_COMPLETED,
                  f"classical fallback ({outcome.method}) completed")
    result = Result(path="Classical", backends=[f"aer_{outcome.method}"],
                    shots=0 if outcome.values else reduced.shots, method=outcome.method)
    if outcome.values is not None and reduced.observables is not None:
        result.expectation_values = [ExpectationValue(observable=o, value=round(v, 9),
                                                      std_error=0.0)
                                     for o, v in zip(reduced.observables, outcome.values,
                                                     strict=True)]
    else:
        result.counts = dict(sorted((outcome.counts or {}).items()))
    run.status.result = result
    return verify_and_finish(run, reduced, NoiseProfile(((1.0, 1.0),)),
                             self_check=outcome.method == "statevector")
