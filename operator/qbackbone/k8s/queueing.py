"""A QuantumJob queued in kueue: its fragment pods as one pod group, and where kueue has it.

A job labelled ``kueue.x-k8s.io/queue-name: <LocalQueue>`` has its fragment pods labelled as
one kueue pod group (``k8s/kueue.py`` has kueue's rules): kueue admits them together, as one
Workload charged for every QPU the fragments claim, when the team's ClusterQueue has quota.
The operator still decides, plans and creates the pods in its joint deadline plan's order;
kueue (``queueingStrategy: StrictFIFO``, docs/kueue.md) then admits in that order. While kueue
holds the pods, the job's ``QueueAdmitted`` condition says why (``QueuedForQuota`` with kueue's
message, ``Inadmissible``, ...); it turns True once kueue admits the group.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qbackbone.k8s.kueue import (
    QUEUE_LABEL,
    SCHEDULING_GATE,
    AdmissionState,
    admission_state,
    pod_group_metadata,
)

_NOT_LABEL = re.compile(r"[^a-z0-9-]+")


@dataclass(frozen=True)
class PodGroup:
    """The labels and annotations every fragment pod of a queued job carries."""

    name: str
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


def group_name(job: str, uid: str) -> str:
    """A DNS label unique per job instance (kueue names the group's Workload after it)."""
    cleaned = _NOT_LABEL.sub("-", job.lower()).strip("-")[:40].rstrip("-") or "job"
    return f"qb-{cleaned}-{hashlib.sha256(uid.encode()).hexdigest()[:10]}"


def pod_group(job_labels: Mapping[str, str], job: str, uid: str, pods: int) -> PodGroup | None:
    """The job's pod group when it names a LocalQueue, else None; ValueError when the queue
    name is not a label value kueue accepts."""
    queue = job_labels.get(QUEUE_LABEL)
    if not queue:
        return None
    name = group_name(job, uid)
    labels, annotations = pod_group_metadata(queue, name, pods)
    return PodGroup(name, labels, annotations)


def kueue_gated(pod: Any) -> bool:
    """Whether kueue's admission gate is on the pod (a V1Pod)."""
    gates = pod.spec.scheduling_gates if pod.spec is not None else None
    return any(gate.name == SCHEDULING_GATE for gate in gates or ())


def admission(group: PodGroup, pods: Mapping[str, Any], workload: Mapping[str, Any] | None,
              as_dict: Any) -> AdmissionState:
    """Where kueue has the group: admitted when no pod carries its gate, else what the gated
    pod's Workload says (``as_dict`` turns a V1Pod into the API's dict)."""
    gated = [pod for pod in pods.values() if kueue_gated(pod)]
    if not gated:
        return AdmissionState(True, "Admitted", f"kueue admitted pod group {group.name}")
    return admission_state(as_dict(gated[0]), workload)
