"""QPUNode: validate by building the QPU; Ready, calibration, derived max depth, resource."""

from __future__ import annotations

from typing import Any

import kopf

from controllers.metrics import observed
from qbackbone.api.qpunode import QPUNodeStatus
from qbackbone.k8s import GROUP, QPUNODES, VERSION
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.qpunodes import qpunode_status
from qbackbone.k8s.status import write_status


@kopf.on.resume(GROUP, VERSION, QPUNODES)
@kopf.on.create(GROUP, VERSION, QPUNODES)
@kopf.on.update(GROUP, VERSION, QPUNODES, field="spec")
@observed("qpunode")
def reconcile_qpunode(body: kopf.Body, name: str, memo: kopf.Memo, **_: Any) -> None:
    """Build the QPU from the spec and write the status (a bad backend is Ready=False)."""
    kube: Kube = memo.kube
    status: QPUNodeStatus = qpunode_status(body)
    if write_status(kube, QPUNODES, None, name, body.get("status"), status):
        ready = next(c for c in status.conditions if c.type == "Ready")
        kopf.event(body, type="Normal" if ready.status == "True" else "Warning",
                   reason=ready.reason, message=ready.message)
