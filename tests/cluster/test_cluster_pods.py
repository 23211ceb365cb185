"""The scheduler, controller manager and QPU node agent are real: pods run, QPUs are
exclusive, scheduling gates hold, garbage collection follows ownerReferences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from qbackbone.dev.waiting import wait_for
from tests.cluster.clusterkit import condition, make_pod, terminated, wait_phase

pytestmark = pytest.mark.cluster

# A pod's process records when it held the QPU, in its termination message.
HOLD_QPU = ('start=$(date +%s.%N); sleep 1.5; end=$(date +%s.%N); '
            'echo "$start $end $QBACKBONE_QPUS" > "$QBACKBONE_TERMINATION_MESSAGE_PATH"')


def test_qpu_pod_is_scheduled_onto_agent_node_and_succeeds(
        core: client.CoreV1Api, node_agent: tuple[str, ...], namespace: str) -> None:
    script = ('echo "pod $HOSTNAME qpus $QBACKBONE_QPUS"; '
              'echo "ran on $QBACKBONE_QPUS" > "$QBACKBONE_TERMINATION_MESSAGE_PATH"')
    core.create_namespaced_pod(namespace, make_pod("frag", script, qpu="qpu-b"))
    pod = wait_phase(core, namespace, "frag", {"Succeeded", "Failed"})
    assert pod.status.phase == "Succeeded", pod.status
    assert pod.spec.node_name == "qpu-host-a"  # the only node with qpu-b: kube-scheduler chose it
    scheduled = condition(pod, "PodScheduled")
    assert scheduled is not None and scheduled.status == "True"
    state = terminated(pod)
    assert (state.exit_code, state.reason) == (0, "Completed")
    assert state.message.strip() == "ran on qpu-b"


def test_failed_pod_reports_exit_code_and_message(
        core: client.CoreV1Api, node_agent: tuple[str, ...], namespace: str) -> None:
    core.create_namespaced_pod(namespace, make_pod("boom", "echo kaput >&2; exit 3", qpu="qpu-c"))
    pod = wait_phase(core, namespace, "boom", {"Succeeded", "Failed"})
    assert pod.status.phase == "Failed"
    assert pod.spec.node_name == "qpu-host-c"
    state = terminated(pod)
    assert (state.exit_code, state.reason) == (3, "Error")
    assert "kaput" in state.message  # FallbackToLogsOnError


def test_one_qpu_runs_one_pod_at_a_time(
        core: client.CoreV1Api, node_agent: tuple[str, ...], namespace: str) -> None:
    names = ("first", "second")
    for name in names:
        core.create_namespaced_pod(namespace, make_pod(name, HOLD_QPU, qpu="qpu-a"))

    def one_running_one_unschedulable() -> bool:
        pods: list[Any] = [core.read_namespaced_pod(n, namespace) for n in names]
        waiting = [p for p in pods if not p.spec.node_name]
        if len(waiting) != 1:
            return False
        cond = condition(waiting[0], "PodScheduled")
        return (cond is not None and cond.reason == "Unschedulable"
                and "qpu.qbackbone.io/qpu-a" in (cond.message or ""))

    wait_for(one_running_one_unschedulable, 30, what="second pod Unschedulable for qpu-a")
    spans = []
    for name in names:
        pod = wait_phase(core, namespace, name, {"Succeeded", "Failed"}, timeout=60)
        assert pod.status.phase == "Succeeded", pod.status
        start, end, qpus = terminated(pod).message.split()
        assert qpus == "qpu-a"
        spans.append((float(start), float(end)))
    earlier, later = sorted(spans)
    assert earlier[1] <= later[0], f"QPU qpu-a held by two pods at once: {spans}"


def test_scheduling_gate_holds_pod_until_removed(
        core: client.CoreV1Api, node_agent: tuple[str, ...], namespace: str) -> None:
    gate = "qbackbone.io/predecessors"
    core.create_namespaced_pod(namespace, make_pod("gated", "true", qpu="qpu-c", gates=(gate,)))
    # An ungated pod behind it shows the scheduler is working meanwhile.
    core.create_namespaced_pod(namespace, make_pod("free", "true", qpu="qpu-c"))
    wait_phase(core, namespace, "free", {"Succeeded"})

    pod: Any = core.read_namespaced_pod("gated", namespace)
    cond = condition(pod, "PodScheduled")
    assert cond is not None and (cond.status, cond.reason) == ("False", "SchedulingGated")
    assert pod.spec.node_name is None and pod.status.phase == "Pending"

    core.patch_namespaced_pod("gated", namespace, {"spec": {"schedulingGates": None}},
                              _content_type="application/merge-patch+json")
    pod = wait_phase(core, namespace, "gated", {"Succeeded", "Failed"})
    assert pod.status.phase == "Succeeded" and pod.spec.node_name == "qpu-host-c"


def test_deleting_owner_garbage_collects_children(
        core: client.CoreV1Api, node_agent: tuple[str, ...], namespace: str) -> None:
    owner: Any = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="job")))
    owner.kind = "ConfigMap"
    child = client.V1ConfigMap(metadata=client.V1ObjectMeta(
        name="job-result", owner_references=[client.V1OwnerReference(
            api_version="v1", kind="ConfigMap", name="job", uid=owner.metadata.uid)]),
        data={"counts": "{}"})
    core.create_namespaced_config_map(namespace, child)
    core.create_namespaced_pod(namespace, make_pod("job-frag", "sleep 300", owner=owner))
    running = wait_phase(core, namespace, "job-frag", {"Running"})
    pid = int(running.status.container_statuses[0].container_id.rsplit("/", 1)[1])
    assert Path(f"/proc/{pid}").exists()

    core.delete_namespaced_config_map("job", namespace, propagation_policy="Background")

    def gone(read: object, name: str) -> bool:
        try:
            read(name, namespace)  # type: ignore[operator]
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(lambda: gone(core.read_namespaced_config_map, "job-result"), 60,
             what="child ConfigMap garbage-collected")
    wait_for(lambda: gone(core.read_namespaced_pod, "job-frag"), 60,
             what="child pod garbage-collected and finalised by the node agent")
    wait_for(lambda: not Path(f"/proc/{pid}").exists()
             or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z", 10,
             what=f"pod process {pid} ended")
