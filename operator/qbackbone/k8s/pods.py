"""What a fragment pod's state is, in words for conditions and messages (V1Pod in, text out)."""

from __future__ import annotations

from typing import Any

from qbackbone.k8s.names import ANNOTATION_QPU, QPU_RESOURCE_PREFIX
from qbackbone.k8s.queueing import kueue_gated


def pod_state(pod: Any) -> str:
    """A pod's state for messages: not created, gated, Pending (un)scheduled, Running, ..."""
    if pod is None:
        return "no pod"
    if pod.metadata.deletion_timestamp:
        return "being deleted"
    phase = (pod.status.phase if pod.status else None) or "Pending"
    node = pod.spec.node_name if pod.spec else None
    if phase == "Pending":
        if kueue_gated(pod):
            return "Pending, held by kueue until its pod group is admitted"
        if pod.spec is not None and pod.spec.scheduling_gates:
            return "Pending, gated until its predecessors have results"
        if node:
            return f"Pending on node {node}, not started"
        why = next((c.message for c in (pod.status.conditions if pod.status else None) or ()
                    if c.type == "PodScheduled" and c.status == "False" and c.message), None)
        # kube-scheduler's words, e.g. "cannot allocate all claims" when no device matches
        return f"Pending, not scheduled: {why[:200]}" if why else "Pending, not scheduled"
    if phase == "Failed":
        return f"Failed: {termination(pod)}"
    return f"{phase} on node {node}" if node else phase


def running_since(pod: Any) -> float | None:
    """Unix seconds since which a Running pod runs; None when it does not run."""
    status = pod.status if pod is not None else None
    if status is None or status.phase != "Running" or status.start_time is None:
        return None
    return float(status.start_time.timestamp())


def pod_qpu(pod: Any) -> str | None:
    """The QPU a fragment pod was made for: its annotation (any request mode), else its
    extended resource (pods of earlier versions)."""
    annotations = pod.metadata.annotations or {}
    if annotations.get(ANNOTATION_QPU):
        return str(annotations[ANNOTATION_QPU])
    for container in pod.spec.containers or []:
        limits = (container.resources.limits if container.resources else None) or {}
        for resource in limits:
            if resource.startswith(QPU_RESOURCE_PREFIX):
                return str(resource[len(QPU_RESOURCE_PREFIX):])
    return None


def termination(pod: Any) -> str:
    """Why a pod's container ended: exit code and the end of its termination message."""
    for cs in (pod.status.container_statuses or []):
        term = cs.state.terminated if cs.state else None
        if term is not None:
            text = (term.message or "").strip()
            return f"exit code {term.exit_code}: {text[-500:]}" if text else \
                f"exit code {term.exit_code} ({term.reason})"
    return pod.status.reason or pod.status.message or "unknown"
