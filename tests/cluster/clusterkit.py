"""Builders and waits shared by the cluster tests."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from qbackbone.dev.nodeagent import qpu_resource
from qbackbone.dev.waiting import wait_for


def make_pod(name: str, script: str, qpu: str | None = None,
             gates: tuple[str, ...] = (), owner: Any = None) -> client.V1Pod:
    """A restartPolicy=Never pod running ``/bin/sh -c script``, optionally holding one QPU."""
    resources = client.V1ResourceRequirements(limits={qpu_resource(qpu): "1"}) if qpu else None
    meta = client.V1ObjectMeta(name=name)
    if owner is not None:
        meta.owner_references = [client.V1OwnerReference(
            api_version="v1", kind=owner.kind or "ConfigMap", name=owner.metadata.name,
            uid=owner.metadata.uid)]
    return client.V1Pod(
        metadata=meta,
        spec=client.V1PodSpec(
            restart_policy="Never",
            termination_grace_period_seconds=5,
            scheduling_gates=[client.V1PodSchedulingGate(name=g) for g in gates] or None,
            containers=[client.V1Container(
                name="main", image="none", command=["/bin/sh", "-c", script],
                resources=resources,
                termination_message_policy="FallbackToLogsOnError",
            )],
        ),
    )


def condition(pod: client.V1Pod, kind: str) -> client.V1PodCondition | None:
    for cond in (pod.status.conditions if pod.status else None) or []:
        if cond.type == kind:
            return cond
    return None


def wait_phase(core: client.CoreV1Api, namespace: str, name: str, phases: set[str],
               timeout: float = 30.0) -> Any:
    """Wait until the pod reaches one of ``phases``; return it (a V1Pod, typed loosely so
    tests can reach into its optional fields)."""

    def reached() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status and pod.status.phase in phases else None

    return wait_for(reached, timeout, what=f"pod {namespace}/{name} in {sorted(phases)}")


def terminated(pod: client.V1Pod) -> Any:
    assert pod.status and pod.status.container_statuses
    state = pod.status.container_statuses[0].state
    assert state is not None and state.terminated is not None, state
    return state.terminated
