"""Reduce, solve, verify for one job: in one process (run_job) or step by step (operator)."""

from qbackbone.core.pipeline.run import (
    DecidedJob,
    FragmentWork,
    JobRun,
    decide_job,
    finish_classical,
    finish_single_qpu,
    guarded,
    plan_single_qpu,
    run_classical_fallback,
    run_job,
    start_job,
)

__all__ = [
    "DecidedJob",
    "FragmentWork",
    "JobRun",
    "decide_job",
    "finish_classical",
    "finish_single_qpu",
    "guarded",
    "plan_single_qpu",
    "run_classical_fallback",
    "run_job",
    "start_job",
]
