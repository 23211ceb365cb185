"""QuantumJob: a level-based timer moves each unfinished job one step (see k8s.jobflow)."""

from __future__ import annotations

from typing import Any

import kopf

from controllers.metrics import observed
from qbackbone.k8s import GROUP, JOBS, VERSION
from qbackbone.k8s.jobflow import JobReconciler, Retry
from qbackbone.k8s.status import TERMINAL

INTERVAL_SECONDS = 1.0


def unfinished(status: kopf.Status, **_: Any) -> bool:
    """Only jobs that are not Succeeded or Failed are reconciled."""
    return status.get("phase") not in TERMINAL


@kopf.timer(GROUP, VERSION, JOBS, interval=INTERVAL_SECONDS, when=unfinished)
@observed("quantumjob")
def reconcile_job(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Decide and dispatch, or collect results and finish; post events after the status write."""
    jobs: JobReconciler = memo.jobs
    try:
        events = jobs.reconcile(body)
    except Retry as wait:
        raise kopf.TemporaryError(str(wait), delay=wait.delay) from None
    for event in events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
