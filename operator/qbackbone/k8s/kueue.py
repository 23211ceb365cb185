"""kueue's view of the operator's fragment pods, on plain dicts (docs/kueue.md).

Pure: no kubernetes client. The names and rules are kueue's (v0.17, ``pkg/controller/jobs/pod``
and ``pkg/controller/jobframework/workload_names.go``):

- A **pod group** is the pods of one namespace that carry the label
  ``kueue.x-k8s.io/pod-group-name: <group>``, the annotation
  ``kueue.x-k8s.io/pod-group-total-count: <n>`` and the queue label
  ``kueue.x-k8s.io/queue-name: <LocalQueue>``. kueue creates **one** Workload for the group
  once ``n`` pods exist; its name is the group name itself (``Pod.workloadName()`` returns the
  group label), in the pods' namespace, annotated ``kueue.x-k8s.io/is-group-workload: "true"``;
  every pod of the group is an owner of it (the Workload's ownerReferences name each pod,
  kind ``Pod``, by uid: ``controllerutil.SetOwnerReference(pod, workload)``), so it goes
  when the pods go. A group name must therefore be a valid object name and unique among the
  namespace's Workloads.
- A **single** queued pod (no group label) owns its Workload likewise, which is named
  ``pod-<pod name>-<first 5 hex of sha1("Pod\\n\\n" + name + "\\n" + uid)>`` (the prefix
  cut to 247 characters).
- kueue's mutating webhook adds the scheduling gate ``kueue.x-k8s.io/admission`` to every
  queued pod; kueue removes it when the Workload is admitted. The Workload's conditions say
  why it waits: ``QuotaReserved=False`` with reason ``Pending`` (no quota now; the message
  names the resource, e.g. ``insufficient unused quota for qpu.qbackbone.io/qpus ...``) or
  ``Inadmissible`` (it can never fit as it is: missing LocalQueue or ClusterQueue, a DRA
  claim kueue cannot count); ``QuotaReserved=True`` then ``Admitted=True`` once admitted;
  ``Evicted``, ``Finished`` later.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
GROUP_LABEL = "kueue.x-k8s.io/pod-group-name"
GROUP_TOTAL_ANNOTATION = "kueue.x-k8s.io/pod-group-total-count"
GROUP_WORKLOAD_ANNOTATION = "kueue.x-k8s.io/is-group-workload"
SCHEDULING_GATE = "kueue.x-k8s.io/admission"
WORKLOAD_API_VERSION = "kueue.x-k8s.io/v1beta2"
WORKLOAD_PLURAL = "workloads"

# kueue's workload-name limits (ShortWorkloadNames off, the default in 0.17).
_MAX_WORKLOAD_NAME = 253
_HASH_LENGTH = 5
_MAX_LABEL_VALUE = 63


def pod_group_metadata(queue_name: str, group_name: str,
                       total: int) -> tuple[dict[str, str], dict[str, str]]:
    """(labels, annotations) that make ``total`` pods one kueue pod group queued in the
    LocalQueue ``queue_name``: kueue admits them as one Workload named ``group_name``.
    ValueError for an empty name, a name that is no label value, or ``total`` < 1."""
    for what, value in (("queue name", queue_name), ("group name", group_name)):
        if not value or len(value) > _MAX_LABEL_VALUE or not _is_dns_label(value):
            raise ValueError(f"{what} {value!r} must be a DNS label (lower-case letters, "
                             f"digits and '-', at most {_MAX_LABEL_VALUE} characters)")
    if isinstance(total, bool) or not isinstance(total, int) or total < 1:
        raise ValueError(f"a pod group has at least one pod, not {total!r}")
    return ({QUEUE_LABEL: queue_name, GROUP_LABEL: group_name},
            {GROUP_TOTAL_ANNOTATION: str(total)})


def _is_dns_label(value: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789-")
    return (set(value) <= allowed and value[0].isalnum() and value[-1].isalnum())


def _meta(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (obj or {}).get("metadata") or {}


def group_name(pod: Mapping[str, Any]) -> str | None:
    """The kueue pod group the pod belongs to, or None."""
    return (_meta(pod).get("labels") or {}).get(GROUP_LABEL) or None


def queue_name(pod: Mapping[str, Any]) -> str | None:
    """The LocalQueue the pod is queued in, or None (kueue leaves it alone)."""
    return (_meta(pod).get("labels") or {}).get(QUEUE_LABEL) or None


def single_pod_workload_name(pod_name: str, pod_uid: str) -> str:
    """The Workload kueue creates for a single queued pod (kueue's
    ``GetWorkloadNameForOwnerWithGVK``: kind, group, name and uid hashed with SHA-1)."""
    digest = hashlib.sha1("\n".join(("Pod", "", pod_name, pod_uid)).encode()).hexdigest()
    prefix = ("pod-" + pod_name)[: _MAX_WORKLOAD_NAME - 1 - _HASH_LENGTH]
    return f"{prefix}-{digest[:_HASH_LENGTH]}"


def workload_name(pod: Mapping[str, Any]) -> str | None:
    """The name of the Workload that admits ``pod`` (same namespace): the group name for a
    pod group, the hashed name for a single queued pod, None for a pod kueue does not
    manage."""
    group = group_name(pod)
    if group:
        return group
    meta = _meta(pod)
    if queue_name(pod) and meta.get("name") and meta.get("uid"):
        return single_pod_workload_name(str(meta["name"]), str(meta["uid"]))
    return None


def owner_pod_uids(workload: Mapping[str, Any]) -> set[str]:
    """The uids of the pods that own ``workload`` (kueue makes every pod of a group, or the
    single pod, an owner of its Workload, so it is garbage-collected with them)."""
    return {str(ref.get("uid")) for ref in _meta(workload).get("ownerReferences") or []
            if ref.get("kind") == "Pod" and ref.get("apiVersion", "v1") == "v1"}


def is_workload_of(workload: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    """Whether ``workload`` is the one that admits ``pod``: same namespace, the pod among its
    owners, and for a pod group the group's Workload (named after the group, annotated
    ``kueue.x-k8s.io/is-group-workload: "true"``)."""
    wmeta, pmeta = _meta(workload), _meta(pod)
    if wmeta.get("namespace") != pmeta.get("namespace"):
        return False
    if str(pmeta.get("uid")) not in owner_pod_uids(workload):
        return False
    group = group_name(pod)
    if group:
        return bool(wmeta.get("name") == group and
                    (wmeta.get("annotations") or {}).get(GROUP_WORKLOAD_ANNOTATION) == "true")
    return True


def is_gated(pod: Mapping[str, Any]) -> bool:
    """Whether kueue's admission gate is still on the pod."""
    gates = ((pod.get("spec") or {}).get("schedulingGates")) or []
    return any(g.get("name") == SCHEDULING_GATE for g in gates)


def _condition(workload: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for cond in ((workload.get("status") or {}).get("conditions")) or []:
        if cond.get("type") == kind:
            return dict(cond)
    return None


def _true(cond: Mapping[str, Any] | None) -> bool:
    return cond is not None and cond.get("status") == "True"


@dataclass(frozen=True)
class AdmissionState:
    """Where a queued pod stands with kueue.

    ``reason`` (CamelCase, for a QuantumJob condition): ``NotManaged`` (no queue label),
    ``WorkloadPending`` (gated; kueue has no Workload yet, e.g. a group short of its total
    count), ``Queued`` (the Workload waits for kueue's scheduler), ``QueuedForQuota`` (no
    quota free now), ``Inadmissible`` (cannot be admitted as it is), ``QuotaReserved``
    (quota held, admission checks pending), ``Admitted``, ``Evicted``, ``Deactivated``,
    ``Finished``. ``message``: kueue's own words where it gave some."""

    admitted: bool
    reason: str
    message: str = ""


def admission_state(pod: Mapping[str, Any],
                    workload: Mapping[str, Any] | None) -> AdmissionState:
    """Read the pod's scheduling gates and its Workload's conditions (``workload``: the one
    ``workload_name``/``is_workload_of`` finds, or None when there is none yet)."""
    if queue_name(pod) is None and not is_gated(pod):
        return AdmissionState(True, "NotManaged", "the pod names no kueue LocalQueue")
    if workload is None:
        if not is_gated(pod):
            return AdmissionState(True, "Admitted", "kueue's admission gate is removed")
        group = group_name(pod)
        total = (_meta(pod).get("annotations") or {}).get(GROUP_TOTAL_ANNOTATION)
        what = (f"pod group {group} ({total} pods) has no Workload yet" if group
                else "kueue has not created the pod's Workload yet")
        return AdmissionState(False, "WorkloadPending", what)
    finished = _condition(workload, "Finished")
    if _true(finished):
        return AdmissionState(False, "Finished", str((finished or {}).get("message", "")))
    evicted = _condition(workload, "Evicted")
    if _true(evicted):
        return AdmissionState(False, "Evicted", str((evicted or {}).get("message", "")))
    if (workload.get("spec") or {}).get("active") is False:
        return AdmissionState(False, "Deactivated", "the Workload is deactivated")
    admitted = _condition(workload, "Admitted")
    if _true(admitted):
        gate = " (kueue is removing the admission gate)" if is_gated(pod) else ""
        return AdmissionState(True, "Admitted",
                              str((admitted or {}).get("message", "")) + gate)
    reserved = _condition(workload, "QuotaReserved")
    if _true(reserved):
        return AdmissionState(False, "QuotaReserved",
                              str((reserved or {}).get("message", "")))
    if reserved is None:
        return AdmissionState(False, "Queued", "waiting for kueue's scheduler")
    message = str(reserved.get("message", ""))
    if reserved.get("reason") == "Inadmissible":
        return AdmissionState(False, "Inadmissible", message)
    return AdmissionState(False, "QueuedForQuota", message)
