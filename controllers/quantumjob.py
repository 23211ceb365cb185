"""QuantumJob: a level-based timer moves each unfinished job one step (see k8s.jobflow); a
result ConfigMap the job waits for, or one of its pods failing, moves the job at once."""

from __future__ import annotations

import copy
import logging
from typing import Any, cast

import kopf

from controllers.metrics import error_kind, observed
from qbackbone.k8s import GROUP, JOBS, VERSION
from qbackbone.k8s.failures import EXITS
from qbackbone.k8s.jobflow import JobReconciler, Retry
from qbackbone.k8s.names import LABEL_JOB, LABEL_ROLE
from qbackbone.k8s.status import TERMINAL
from qbackbone.observability import current, object_context

INTERVAL_SECONDS = 1.0
WORKER_ROLES = ("fragment", "classical")
RESULTS = f"{LABEL_ROLE}=result"  # the label selector of the operator's ConfigMap watch
log = logging.getLogger(__name__)


def unfinished(status: kopf.Status, **_: Any) -> bool:
    """Only jobs that are not Succeeded or Failed are reconciled."""
    return status.get("phase") not in TERMINAL


def _post(body: kopf.Body, events: list[Any]) -> None:
    """Post the events and log them (admission, pod creation, gate release, moves...)."""
    meta = body.get("metadata", {})
    for event in events:
        log.info("%s/%s: %s: %s", meta.get("namespace"), meta.get("name"), event.reason,
                 event.message)
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)


@kopf.timer(GROUP, VERSION, JOBS, interval=INTERVAL_SECONDS, when=unfinished)
@observed("quantumjob")
def reconcile_job(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Decide and dispatch, or collect results and finish; post events after the status write."""
    jobs: JobReconciler = memo.jobs
    try:
        events = jobs.reconcile(body)
    except Retry as wait:
        raise kopf.TemporaryError(str(wait), delay=wait.delay) from None
    _post(body, events)


@kopf.index(GROUP, VERSION, JOBS)
def unfinished_jobs(body: kopf.Body, namespace: str | None, name: str,
                    **_: Any) -> dict[tuple[str | None, str], dict[str, Any]]:
    """Unfinished QuantumJobs by (namespace, name), as last seen: what a pod's end moves."""
    if (body.get("status") or {}).get("phase") in TERMINAL:
        return {}
    return {(namespace, name): copy.deepcopy(dict(body))}


def _owner(meta: Any) -> Any:
    return next((o for o in meta.get("ownerReferences") or [] if o.get("kind") == "QuantumJob"),
                None)


def _snapshot(store: Any) -> list[Any]:
    """A copy of an index store; kopf updates indexes on its event loop while this handler
    runs in a worker thread, so a copy can meet a change: try again (the timer is the net)."""
    for _ in range(5):
        try:
            return list(store)
        except RuntimeError:  # changed size during iteration
            continue
    return []


def _nudge(jobs: JobReconciler, index: Any, meta: Any, owner: Any, why: str) -> None:
    """Reconcile the owning job now (if unfinished) rather than at its next timer tick; the
    timer stays the level-based safety net, so a failure here is counted and logged only."""
    namespace = meta.get("namespace")
    for job in _snapshot(index.get((namespace, owner.get("name")), [])):
        if job["metadata"].get("uid") != owner.get("uid"):
            continue
        with object_context("QuantumJob", owner.get("name"), namespace):
            try:
                _post(kopf.Body(cast(kopf.RawBody, job)), jobs.reconcile(job))
            except Retry:
                pass
            except BaseException as err:  # the next timer tick retries
                if isinstance(err, EXITS):
                    raise
                label = error_kind(err)
                if label is not None:
                    current().reconcile_error("quantumjob", label)
                log.warning("reconcile after %s failed: %s: %s", why, type(err).__name__, err)


def _worker_pod_failed(body: kopf.Body, type: str | None, **_: Any) -> bool:
    labels = (body.get("metadata") or {}).get("labels") or {}
    return (type != "DELETED" and labels.get(LABEL_ROLE) in WORKER_ROLES
            and LABEL_JOB in labels and (body.get("status") or {}).get("phase") == "Failed")


@kopf.on.event("v1", "pods", when=_worker_pod_failed)
def worker_pod_failed(body: kopf.Body, uid: str, memo: kopf.Memo, **kwargs: Any) -> None:
    """A fragment or classical pod failed: retry or fail its job now."""
    jobs: JobReconciler = memo.jobs
    meta = body.get("metadata") or {}
    owner = _owner(meta)
    if owner is not None and jobs.pod_ended(uid):
        _nudge(jobs, kwargs["unfinished_jobs"], meta, owner, f"pod {meta.get('name')} failed")


def _result_written(body: kopf.Body, type: str | None, **_: Any) -> bool:
    labels = (body.get("metadata") or {}).get("labels") or {}
    return type in (None, "ADDED") and labels.get(LABEL_ROLE) == "result" and LABEL_JOB in labels


@kopf.on.event("v1", "configmaps", when=_result_written)
def result_written(body: kopf.Body, name: str, memo: kopf.Memo, **kwargs: Any) -> None:
    """A worker wrote a result: when it is one the job can act on (its last missing result, an
    LOCC predecessor's, a classical pod's), collect and finish or release now. The operator's
    ConfigMap watch carries only results (``RESULTS``, set in ``setup.configure``)."""
    jobs: JobReconciler = memo.jobs
    meta = body.get("metadata") or {}
    owner = _owner(meta)
    if owner is not None and jobs.result_written(str(owner.get("uid")), name):
        _nudge(jobs, kwargs["unfinished_jobs"], meta, owner, f"result {name} was written")
