"""Reduce, solve, verify for one job: in one process (run_job) or step by step (operator)."""

from qbackbone.core.pipeline.optimize import (
    DecidedProblem,
    decide_problem,
    finish_problem_classically,
    finish_problem_samples,
    solve_problem_classically,
)
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
