"""What a QuantumJob status write changed: a decision taken, a job finished (pure functions).

The operator counts events where it causes them: when it writes a status that carries a
decision the stored status did not have, or a terminal phase the stored status did not have.
A restarted operator that merely sees a finished job again writes nothing, so counts nothing.
Both statuses are wire dicts (camelCase, as Kubernetes stores them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

NO_PATH = "None"  # the path label of a job that has none (undecided, refused, invalid)
TERMINAL = ("Succeeded", "Failed")
DEADLINE_REASONS = ("DeadlineExceeded", "DeadlineInfeasible")  # failures that are misses
DECISION_TIMINGS = ("reduceSeconds", "decideSeconds", "cutSeconds", "scheduleSeconds")


@dataclass(frozen=True)
class Decided:
    """The QIP decided (or refused) the job in this write."""

    path: str
    reason: str
    seconds: float | None  # reduce + decide (+ cut + schedule) from status.timings


@dataclass(frozen=True)
class Finished:
    """The job reached Succeeded or Failed in this write."""

    phase: str
    path: str
    failure_reason: str | None
    seconds: float | None  # status.timings.totalSeconds of a Succeeded job
    deadline: str | None  # "met", "missed", or None when the job had no deadline outcome


def job_path(status: Mapping[str, Any] | None) -> str:
    """The path the job took: the decision's, else the result's, else ``None``."""
    status = status or {}
    path = (status.get("decision") or {}).get("path") or (status.get("result") or {}).get("path")
    return str(path) if path else NO_PATH


def job_phase(status: Mapping[str, Any] | None) -> str:
    """``status.phase``, ``Pending`` before the operator wrote one."""
    return str((status or {}).get("phase") or "Pending")


def _condition(status: Mapping[str, Any], type_: str) -> Mapping[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def decided(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> Decided | None:
    """The decision ``after`` carries and ``before`` did not."""
    if (before or {}).get("decision") or not after.get("decision"):
        return None
    decision = after["decision"]
    timings = after.get("timings") or {}
    parts = [float(timings[k]) for k in DECISION_TIMINGS if timings.get(k) is not None]
    return Decided(path=str(decision.get("path") or NO_PATH),
                   reason=str(decision.get("reason") or "Unknown"),
                   seconds=sum(parts) if parts else None)


def deadline_outcome(status: Mapping[str, Any]) -> str | None:
    """``met``/``missed`` from the DeadlineMet condition, or ``missed`` for a deadline failure."""
    cond = _condition(status, "DeadlineMet")
    if cond is not None:
        return "met" if cond.get("status") == "True" else "missed"
    failed = _condition(status, "Failed")
    if failed is not None and failed.get("status") == "True" \
            and failed.get("reason") in DEADLINE_REASONS:
        return "missed"
    return None


def finished(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> Finished | None:
    """The terminal phase ``after`` reached and ``before`` had not."""
    phase = job_phase(after)
    if phase not in TERMINAL or job_phase(before) in TERMINAL:
        return None
    failed = _condition(after, "Failed")
    reason = None
    if phase == "Failed":
        reason = str(failed.get("reason") or "Unknown") if failed else "Unknown"
    total = (after.get("timings") or {}).get("totalSeconds")
    return Finished(phase=phase, path=job_path(after), failure_reason=reason,
                    seconds=float(total) if phase == "Succeeded" and total is not None else None,
                    deadline=deadline_outcome(after))
