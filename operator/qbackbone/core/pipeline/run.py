"""Run one QuantumJob in this process: start, decide, then the path the QIP chose.

The paths (``single``, ``distributed``, ``classical``; for problem jobs ``optimize``,
``detect`` and ``forecast``) sit
below this module; deciding (``decide``), finishing (``finish``) and the run's state
(``jobrun``) sit below the paths.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus
from qbackbone.core.learning import LearnedModel
from qbackbone.core.pipeline.classical import finish_classical, run_classical_fallback
from qbackbone.core.pipeline.decide import DecidedJob, decide_job
from qbackbone.core.pipeline.detect_solve import run_detect_job
from qbackbone.core.pipeline.distributed import run_distributed
from qbackbone.core.pipeline.forecast import run_forecast_job
from qbackbone.core.pipeline.jobrun import guarded, start_job
from qbackbone.core.pipeline.optimize import run_problem_job
from qbackbone.core.pipeline.progress import Progress
from qbackbone.core.pipeline.single import execute_single_qpu, finish_single_qpu
from qbackbone.core.qpus.fleet import QPU


def run_job(job: QuantumJob, fleet: Sequence[QPU], policies: Mapping[str, InvocationPolicy],
            progress: Progress | None = None, seed: int | None = None,
            now: datetime | None = None,
            read_config_map: Callable[[str, str], str] | None = None,
            learned: LearnedModel | None = None) -> QuantumJobStatus:
    """The status the operator would write for this job, computed in this process.

    `read_config_map(name, key)` resolves ConfigMaps a problem job refers to; `learned` is
    what the job's policy learned from history (used when its learning is enabled).
    """
    run = start_job(job, progress, now)
    problem = job.spec.problem
    if problem is not None:
        if problem.anomaly_detection is None and problem.forecast is None:
            return guarded(run, lambda: run_problem_job(run, fleet, policies, seed,
                                                        read_config_map, learned))
        runner = run_detect_job if problem.anomaly_detection is not None else run_forecast_job
        return guarded(run, lambda: runner(run, fleet, policies, seed, read_config_map))
    return guarded(run, lambda: _run_in_process(decide_job(run, fleet, policies, seed,
                                                           learned)))


def _run_in_process(decided: DecidedJob) -> QuantumJobStatus:
    qip = decided.qip
    if qip.path == "Distributed":
        return run_distributed(decided)
    if qip.path == "Classical":
        return finish_classical(decided, run_classical_fallback(decided))
    return finish_single_qpu(decided, execute_single_qpu(decided))
