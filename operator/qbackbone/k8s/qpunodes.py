"""QPUNode and InvocationPolicy status: validate by building the QPU, or the policy model."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from qbackbone.api.conditions import ConditionType, Reason, set_condition
from qbackbone.api.manifests import ManifestError
from qbackbone.api.policy import InvocationPolicyStatus
from qbackbone.api.qpunode import CORDONED, QPUNode, QPUNodeStatus
from qbackbone.core.errors import JobFailure
from qbackbone.core.qpus.fidelity import derive_max_depth
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.k8s.names import qpu_resource
from qbackbone.k8s.objects import parse, trimmed
from qbackbone.k8s.status import parse_status


def qpunode_status(body: Mapping[str, Any]) -> QPUNodeStatus:
    """Ready with calibration, derived max depth and resource name; Ready=False with the reason
    when the spec does not validate or the backend cannot be built (never an exception), or
    Ready=False/Cordoned (calibration kept) when ``spec.cordoned``."""
    meta = body["metadata"]
    generation = meta.get("generation")
    old = parse_status(QPUNodeStatus, body.get("status")) or QPUNodeStatus()
    status = old.model_copy(update={"observed_generation": generation,
                                    "resource_name": qpu_resource(meta["name"])})
    now = datetime.now(UTC)
    try:
        node = parse(trimmed(body, ("queueDepth",)))
        assert isinstance(node, QPUNode)
        qpu = build_fleet([node])[0]
    except ManifestError as err:
        reason, message = Reason.INVALID_MANIFEST.value, str(err)
    except JobFailure as err:
        reason, message = err.reason.value, err.message
    except Exception as err:  # any backend error makes the QPU not Ready; nothing crashes
        reason, message = Reason.BACKEND_UNAVAILABLE.value, f"{type(err).__name__}: {err}"
    else:
        d = qpu.descriptor
        status.calibration = qpu.calibration_snapshot()
        status.derived_max_depth = derive_max_depth(d.calibration) if d.calibration else None
        status.device_qubits = d.device_qubits
        kind = "ideal simulator" if d.ideal else f"calibrated device, max depth {d.max_depth}"
        what = f"{d.backend_name}: {d.qubits} qubits, {kind}; advertised as {status.resource_name}"
        if node.spec.cordoned:  # valid, but no new work: the QIP sees only Ready QPUNodes
            set_condition(status.conditions, ConditionType.READY, False, CORDONED,
                          f"cordoned (spec.cordoned): no new fragments; {what}", generation, now)
        else:
            set_condition(status.conditions, ConditionType.READY, True, Reason.CALIBRATED,
                          what, generation, now)
        return status
    status.calibration, status.derived_max_depth = None, None
    set_condition(status.conditions, ConditionType.READY, False, reason, message, generation, now)
    return status


def policy_status(body: Mapping[str, Any]) -> InvocationPolicyStatus:
    """Valid=True, or Valid=False with InvalidPolicy and what is wrong."""
    generation = body["metadata"].get("generation")
    old = parse_status(InvocationPolicyStatus, body.get("status")) or InvocationPolicyStatus()
    status = old.model_copy(update={"observed_generation": generation})
    now = datetime.now(UTC)
    try:
        parse(trimmed(body))
    except ManifestError as err:
        set_condition(status.conditions, ConditionType.VALID, False, Reason.INVALID_POLICY,
                      str(err), generation, now)
    else:
        set_condition(status.conditions, ConditionType.VALID, True, Reason.POLICY_VALID,
                      "the policy validates", generation, now)
    return status
