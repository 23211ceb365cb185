"""InvocationPolicy: the Valid condition; an invalid spec is reported, never crashed on."""

from __future__ import annotations

from typing import Any

import kopf

from controllers.metrics import observed
from qbackbone.k8s import GROUP, POLICIES, VERSION
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.qpunodes import policy_status
from qbackbone.k8s.status import write_status


@kopf.on.resume(GROUP, VERSION, POLICIES)
@kopf.on.create(GROUP, VERSION, POLICIES)
@kopf.on.update(GROUP, VERSION, POLICIES, field="spec")
@observed("invocationpolicy")
def reconcile_policy(body: kopf.Body, name: str, namespace: str | None, memo: kopf.Memo,
                     **_: Any) -> None:
    """Validate the spec against the model and write the Valid condition."""
    kube: Kube = memo.kube
    status = policy_status(body)
    if write_status(kube, POLICIES, namespace, name, body.get("status"), status):
        valid = next(c for c in status.conditions if c.type == "Valid")
        kopf.event(body, type="Normal" if valid.status == "True" else "Warning",
                   reason=valid.reason, message=valid.message)
