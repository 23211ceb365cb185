"""detect and predict jobs in the cluster: the operator's decision, and the worker pod that
runs their classical models.

A detect job is decided in the operator (reduce, the kernel rules, the QIP on one fidelity
circuit, the kernel's time by the QPU's time model), so the decision record re-derives it.
Its quantum path runs the kernel circuits as fragment pods (``k8s.kernel``); its classical
path runs the RBF SVM and the IsolationForest in a worker pod, and the operator finishes
either with ``finish_detect``. A forecast job is reduced and checked in the operator; its
methods are fitted, scored on the holdout and chosen in a worker pod (the choice *is* that
computation), which returns the job's status.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from qbackbone.api.conditions import ConditionType, Reason
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import Decision, QuantumJob, QuantumJobStatus, RuleOutcome
from qbackbone.core.detect.models import Scored
from qbackbone.core.errors import JobFailure
from qbackbone.core.pipeline.detect import DetectDecision, decide_detect, reduce_detect
from qbackbone.core.pipeline.detect_solve import classical_baselines, finish_detect
from qbackbone.core.pipeline.forecast import reduce_forecast, run_forecast_job
from qbackbone.core.pipeline.jobrun import JobRun, start_job
from qbackbone.core.qpus.fleet import QPU
from qbackbone.k8s.builders import JobRef
from qbackbone.k8s.names import result_name
from qbackbone.k8s.objects import recorded_policy

ANALYSIS_KINDS = ("anomalyDetection", "forecast")
FAILURE_KEY = "failure.json"  # a worker's refusal: the job fails with its reason


def analysis_kind(job: Mapping[str, Any]) -> str | None:
    """``anomalyDetection`` or ``forecast`` for a detect or predict job body, else None."""
    problem = (job.get("spec") or {}).get("problem") or {}
    return next((k for k in ANALYSIS_KINDS if problem.get(k) is not None), None)


@dataclass
class AnalysisJob:
    """A decided detect or forecast job: ``detect`` set for detect jobs."""

    run: JobRun
    remaining: float | None
    detect: DetectDecision | None = None

    @property
    def quantum(self) -> bool:
        """Whether its work is kernel fragments (else one worker pod)."""
        return self.detect is not None and self.detect.qpu is not None

    def finish(self, data: Mapping[str, str]) -> QuantumJobStatus:
        """The job's status from its worker pod's result."""
        failure = data.get(FAILURE_KEY)
        if failure is not None:
            raw = json.loads(failure)
            try:
                reason = Reason(str(raw["reason"]))
            except ValueError:
                reason = Reason.EXECUTION_FAILED
            raise JobFailure(reason, str(raw["message"]))
        if self.detect is not None:
            baselines = _baselines(data["baselines.json"])
            windows = len(self.detect.state.test)
            if any(len(b.scores) != windows for b in baselines):
                raise JobFailure(Reason.EXECUTION_FAILED, "the worker scored "
                                 f"{[len(b.scores) for b in baselines]} windows, not {windows}")
            return finish_detect(self.detect, baselines)
        status = QuantumJobStatus.model_validate(json.loads(data["status.json"]))
        for cond in status.conditions:  # the worker's run, under this job's generation
            cond.observed_generation = self.run.job.metadata.generation
        self.run.status = status
        return self.run.finish()


def decide_analysis(run: JobRun, fleet: Sequence[QPU],
                    policies: Mapping[str, InvocationPolicy],
                    seed: int | None) -> AnalysisJob:
    """Decide a detect job (kernel time from the time model: re-derivable), or reduce and
    check a forecast job; JobFailure when refused."""
    problem = run.job.spec.problem
    assert problem is not None
    if problem.anomaly_detection is not None:
        decided = decide_detect(run, fleet, policies, seed, pilot=False)
        return AnalysisJob(run, decided.state.remaining, decided)
    reduced = reduce_forecast(run, policies)
    mode = run.job.spec.execution.mode
    rules = [RuleOutcome(name="methodsFittedInWorker", value=reduced.spec.method,
                         threshold="holdout MASE", passed=True)]
    message = ("forecast methods (seasonal-naive, Holt-Winters"
               + (", quantum reservoir" if mode != "Classical" else "")
               + ") fitted and scored on the holdout in a worker pod")
    run.status.decision = Decision(
        path="Classical", policy=reduced.policy.metadata.name,
        policy_generation=reduced.policy.metadata.generation,
        reason=Reason.CLASSICAL_SELECTED, message=message, rules=rules,
        features={"steps": len(reduced.series), "season": reduced.spec.season,
                  "horizon": reduced.spec.horizon})
    run.condition(ConditionType.DECIDED, True, Reason.CLASSICAL_SELECTED, message)
    return AnalysisJob(run, reduced.remaining)


def analysis_input_data(job: JobRef, work: str, recorded_job: Mapping[str, Any],
                        policy: Mapping[str, Any] | None, seed: int | None,
                        now: datetime) -> dict[str, str]:
    """The worker's input: the recorded job (its ConfigMaps inline), its policy, the seed and
    the decision's clock (the deadline counts from it)."""
    return {"kind": "analysis", "job": job.name, "jobUid": job.uid, "result": result_name(work),
            "job.json": json.dumps(recorded_job, sort_keys=True, default=str),
            "policy.json": json.dumps(policy, sort_keys=True, default=str),
            "seed": json.dumps(seed), "now": now.isoformat()}


def run_analysis_input(data: Mapping[str, str], pod: str | None) -> dict[str, str]:
    """The worker's side: a detect job's classical baselines, or a forecast job's run; a
    refusal (JobFailure) is returned as the result, so the job fails with its reason."""
    job = QuantumJob.model_validate(json.loads(data["job.json"]))
    policy = recorded_policy(data["policy.json"])
    seed = json.loads(data["seed"])
    run = start_job(job, None, datetime.fromisoformat(data["now"]))
    named = {policy.metadata.name: policy}
    start = time.perf_counter()
    out: dict[str, str] = {"kind": "analysis", "pod": pod or ""}
    try:
        if job.spec.problem is not None and job.spec.problem.anomaly_detection is not None:
            state = reduce_detect(run, named, seed)
            out["baselines.json"] = json.dumps([
                {"model": b.model, "scores": b.scores.tolist(), "threshold": b.threshold,
                 "seconds": b.seconds} for b in classical_baselines(state)])
        else:
            status = run_forecast_job(run, [], named, seed)
            out["status.json"] = status.model_dump_json(by_alias=True, exclude_none=True)
    except JobFailure as refused:
        out[FAILURE_KEY] = json.dumps({"reason": refused.reason, "message": refused.message})
    out["seconds"] = f"{time.perf_counter() - start:.4f}"
    return out


def _baselines(text: str) -> list[Scored]:
    return [Scored(str(b["model"]), np.asarray(b["scores"], dtype=float), float(b["threshold"]),
                   float(b["seconds"])) for b in json.loads(text)]
