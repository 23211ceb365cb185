"""Reduce, solve, verify for one job in one process."""

from qbackbone.core.pipeline.run import run_job

__all__ = ["run_job"]
