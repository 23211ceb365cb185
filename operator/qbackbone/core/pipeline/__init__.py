"""Reduce, solve, verify for one job: in one process (run_job) or step by step (operator)."""

from qbackbone.core.pipeline.classical import finish_classical, run_classical_fallback
from qbackbone.core.pipeline.decide import DecidedJob, decide_job
from qbackbone.core.pipeline.jobrun import JobRun, guarded, start_job
from qbackbone.core.pipeline.optimize import (
    DecidedProblem,
    decide_problem,
    finish_problem_classically,
    finish_problem_samples,
    solve_problem_classically,
)
from qbackbone.core.pipeline.run import run_job
from qbackbone.core.pipeline.single import FragmentWork, finish_single_qpu, plan_single_qpu

__all__ = [
    "DecidedJob",
    "DecidedProblem",
    "FragmentWork",
    "JobRun",
    "decide_job",
    "decide_problem",
    "finish_classical",
    "finish_problem_classically",
    "finish_problem_samples",
    "finish_single_qpu",
    "guarded",
    "plan_single_qpu",
    "run_classical_fallback",
    "run_job",
    "solve_problem_classically",
    "start_job",
]
