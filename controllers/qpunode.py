"""QPUNode: validate by building the QPU; Ready, calibration, derived max depth, resource;
queue depth and utilisation from the fragment pods (k8s.usage)."""

from __future__ import annotations

from typing import Any

import kopf

from controllers.metrics import observed
from qbackbone.api.qpunode import CORDONED, QPUNodeStatus
from qbackbone.k8s import GROUP, QPUNODES, VERSION
from qbackbone.k8s.jobflow import JobReconciler
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.names import LABEL_ROLE
from qbackbone.k8s.qpunodes import qpunode_status
from qbackbone.k8s.status import write_status
from qbackbone.k8s.usage import QPULoad, StatusLoop

USAGE_INTERVAL_SECONDS = 2.0
READOUT_REFRESH_SECONDS = 600.0  # well inside the default readoutCalibrationMaxAge (1 h)


@kopf.on.resume(GROUP, VERSION, QPUNODES)
@kopf.on.create(GROUP, VERSION, QPUNODES)
@kopf.on.update(GROUP, VERSION, QPUNODES, field="spec")
@observed("qpunode")
def reconcile_qpunode(body: kopf.Body, name: str, memo: kopf.Memo, **_: Any) -> None:
    """Build the QPU from the spec and write the status (a bad backend is Ready=False;
    ``spec.cordoned`` is Ready=False/Cordoned)."""
    kube: Kube = memo.kube
    status: QPUNodeStatus = qpunode_status(body)
    if write_status(kube, QPUNODES, None, name, body.get("status"), status):
        ready = next(c for c in status.conditions if c.type == "Ready")
        normal = ready.status == "True" or ready.reason == CORDONED
        kopf.event(body, type="Normal" if normal else "Warning",
                   reason=ready.reason, message=ready.message)


@kopf.timer(GROUP, VERSION, QPUNODES, interval=READOUT_REFRESH_SECONDS,
            initial_delay=READOUT_REFRESH_SECONDS, idle=None)
def refresh_qpunode(body: kopf.Body, name: str, memo: kopf.Memo, **_: Any) -> None:
    """Re-derive the status now and then, so a readout calibration that aged is measured
    again before jobs need it (the write is skipped when nothing changed)."""
    write_status(memo.kube, QPUNODES, None, name, body.get("status"), qpunode_status(body))


@kopf.on.startup()
def start_qpu_load(memo: kopf.Memo, **_: Any) -> None:
    """Track fragment pods and QPUNodes; a thread writes queueDepth and utilisation."""
    memo.qpu_load = QPULoad()
    memo.qpu_load_loop = StatusLoop("qpu-load", memo.qpu_load.writes, lambda: memo.get("kube"),
                                    USAGE_INTERVAL_SECONDS)
    memo.qpu_load_loop.start()


@kopf.on.cleanup()
def stop_qpu_load(memo: kopf.Memo, **_: Any) -> None:
    loop: StatusLoop | None = memo.get("qpu_load_loop")
    if loop is not None:
        loop.stop()


@kopf.on.event("v1", "pods", labels={LABEL_ROLE: "fragment"})
def fragment_pod_seen(type: str, body: kopf.Body, uid: str, memo: kopf.Memo,
                      **_: Any) -> None:
    """A fragment pod was listed, changed or deleted."""
    memo.qpu_load.see_pod(uid, None if type == "DELETED" else body)


@kopf.on.event(GROUP, VERSION, QPUNODES)
def qpunode_seen(type: str, body: kopf.Body, name: str, memo: kopf.Memo, **_: Any) -> None:
    """A QPUNode was listed, changed or deleted (its stored status is the write's base); the
    job reconciler's QPU view is re-read when the node's availability changed."""
    seen = None if type == "DELETED" else body
    memo.qpu_load.see_qpunode(name, seen)
    jobs: JobReconciler | None = memo.get("jobs")
    if jobs is not None:
        jobs.qpus.observe(name, seen)
