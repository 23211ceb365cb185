"""The L3 scheduler: admit jobs, split shots over QPUs, order fragments under LOCC precedence.

A pure package: it knows only its own problem model (no Kubernetes, no other qbackbone
packages). Entry points: :func:`anneal` (the QB scheduler), the baselines, :func:`solve_exact`
(CP-SAT reference), :func:`replan` (online), :func:`validate`, :func:`render_gantt`.
"""

from .annealing import AnnealingParams, anneal, method_name, problem_for
from .baselines import edf, list_scheduling, random_schedule
from .exact import ExactResult, solve_exact
from .gantt import render_gantt
from .generator import DEVICES, InstanceParams, generate, make_fleet
from .model import (
    QPU,
    CutPlan,
    Fragment,
    Job,
    Problem,
    Schedule,
    Subcircuit,
    job_from_cut_plan,
    with_cut_kind,
)
from .online import replan
from .schedule import ALGORITHMS, schedule
from .validate import ScheduleError, ValidationReport, check_schedule, validate

__version__ = "0.1.0"

__all__ = [
    "ALGORITHMS",
    "DEVICES",
    "QPU",
    "AnnealingParams",
    "CutPlan",
    "ExactResult",
    "Fragment",
    "InstanceParams",
    "Job",
    "Problem",
    "Schedule",
    "ScheduleError",
    "Subcircuit",
    "ValidationReport",
    "__version__",
    "anneal",
    "check_schedule",
    "edf",
    "generate",
    "job_from_cut_plan",
    "list_scheduling",
    "make_fleet",
    "method_name",
    "problem_for",
    "random_schedule",
    "render_gantt",
    "replan",
    "schedule",
    "solve_exact",
    "validate",
    "with_cut_kind",
]
