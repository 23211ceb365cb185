"""QPUNode and InvocationPolicy status: validate by building the QPU, or the policy model."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from qbackbone.api.conditions import ConditionType, Reason, set_condition
from qbackbone.api.manifests import ManifestError
from qbackbone.api.mitigation import MitigationPolicy
from qbackbone.api.policy import InvocationPolicyStatus
from qbackbone.api.qpunode import CORDONED, QPUNode, QPUNodeStatus, ReadoutCalibrationStatus
from qbackbone.core.errors import JobFailure
from qbackbone.core.execute.readout import is_current, readout_calibration, remember_calibration
from qbackbone.core.mitigation.readout import ReadoutCalibration
from qbackbone.core.qpus.fidelity import derive_max_depth
from qbackbone.core.qpus.fleet import QPU, build_fleet
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
        if not d.ideal:
            status.readout_calibration = current_readout_calibration(qpu, old, now)
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


def current_readout_calibration(qpu: QPU, old: QPUNodeStatus, now: datetime
                                ) -> ReadoutCalibrationStatus | None:
    """The QPU's readout calibration for status: the stored one while it is current (adopted
    by this process's jobs), else measured now with the default policy's settings. A failed
    measurement keeps the QPU Ready: jobs then calibrate for themselves."""
    policy = MitigationPolicy()
    stored = old.readout_calibration
    if stored is not None:
        known = ReadoutCalibration(tuple(stored.flip_from0), tuple(stored.flip_from1),
                                   stored.shots, stored.taken_at, stored.qpu_calibration)
        if is_current(known, qpu, now, policy.readout_calibration_max_age):
            remember_calibration(qpu.name, known)
            return stored
    try:
        cal = readout_calibration(qpu, now, policy.readout_calibration_max_age,
                                  policy.readout_calibration_shots)
    except Exception:  # the backend refused the calibration run; not a reason to be not Ready
        return None
    return ReadoutCalibrationStatus(flip_from0=list(cal.flip_from_0),
                                    flip_from1=list(cal.flip_from_1), shots=cal.shots,
                                    taken_at=cal.taken_at, qpu_calibration=cal.qpu_calibration)


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
