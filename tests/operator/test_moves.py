"""Lost QPUs and moved fragments without a cluster: which QPU view a decision uses, the one
rule for fragments on a lost QPU, and a status that names the QPUs that produced the result.

The API server is a stub that serves QPUNodes and records what the dispatcher creates,
deletes and releases; the pods are the client's own models, as a listing returns them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from kubernetes import client

from qbackbone.core.pipeline import plan_single_qpu
from qbackbone.k8s import QPUNODES
from qbackbone.k8s.availability import QPUView
from qbackbone.k8s.builders import PRECEDENCE_GATE, JobRef, WorkerConfig
from qbackbone.k8s.decision import DecisionRecord
from qbackbone.k8s.dispatch import Dispatcher, slot_result
from qbackbone.k8s.fragments import SINGLE
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.names import (
    LABEL_ATTEMPT,
    LABEL_FRAGMENT,
    LABEL_ROLE,
    fragment_name,
    input_name,
    label_value,
    qpu_resource,
)
from qbackbone.k8s.single import SingleSource
from qbackbone.worker.run import run_fragment
from tests.operator.kit import qpunode, quantum_job
from tests.operator.test_jobs import ENTANGLED, OBSERVABLES

REF = JobRef("job", "ns", "uid-1")
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def ready_node(name: str, provider: str = "aer", backend: str = "aer_simulator",
               **spec: Any) -> dict[str, Any]:
    """A QPUNode as the operator leaves it: Ready for its generation."""
    body = qpunode(name, provider, backend, **spec)
    body["metadata"]["generation"] = 1
    body["status"] = {"conditions": [{"type": "Ready", "status": "True", "reason": "Calibrated",
                                      "observedGeneration": 1}]}
    return body


class StubKube:
    """QPUNodes to list; everything the dispatcher writes, recorded."""

    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        self.nodes = {n["metadata"]["name"]: n for n in nodes}
        self.lists = 0
        self.created: list[Mapping[str, Any]] = []
        self.deleted: list[str] = []
        self.released: list[str] = []

    def list_objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        assert plural == QPUNODES
        self.lists += 1
        return list(self.nodes.values())

    def create(self, manifest: Mapping[str, Any]) -> bool:
        self.created.append(manifest)
        return True

    def delete_pod(self, namespace: str, name: str) -> bool:
        self.deleted.append(name)
        return True

    def remove_scheduling_gate(self, namespace: str, name: str, gate: str) -> None:
        self.released.append(name)

    def pods_created(self) -> list[str]:
        return [m["metadata"]["name"] for m in self.created if m["kind"] == "Pod"]


def decided_on(first: str, nodes: list[dict[str, Any]]) -> tuple[DecisionRecord, SingleSource]:
    """The ENTANGLED job decided on ``nodes``, admitted whole on ``first`` (planned there)."""
    job = quantum_job("job", ENTANGLED, OBSERVABLES, shots=2000,
                      execution={"mode": "SingleQPU"})
    job["metadata"].update(namespace="ns", uid="uid-1", generation=1)
    fleet = [{k: v for k, v in n.items() if k != "status"} for n in nodes]
    record = DecisionRecord(job=job, fleet=fleet, policy=None, now=NOW, seed=5)
    source = SingleSource(record.decide(record.start()))
    source.assign({SINGLE: {first: 1}})
    plan_single_qpu(source.decided)  # status.plan, as admission writes it
    return record, source


def fragment_pod(qpu: str, phase: str, gated: bool = False) -> Any:
    """Attempt 0 of the job's one fragment (key ``qa``) as a pod listing returns it."""
    gates = [client.V1PodSchedulingGate(name=PRECEDENCE_GATE)] if gated else None
    limits = {qpu_resource(qpu): "1"}
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=fragment_name("job", "qa"), labels={
            LABEL_FRAGMENT: label_value("qa"), LABEL_ATTEMPT: "0", LABEL_ROLE: "fragment"}),
        spec=client.V1PodSpec(containers=[client.V1Container(
            name="worker", resources=client.V1ResourceRequirements(limits=limits))],
            scheduling_gates=gates),
        status=client.V1PodStatus(phase=phase))


def setup(pod_phase: str | None, has_input: bool = True, gated: bool = False
          ) -> tuple[StubKube, Dispatcher, QPUView, dict[str, Any], dict[str, Any]]:
    """The fragment on ``qa`` (attempt 0 in ``pod_phase``; None: no pod yet), the shared view
    read while ``qa`` existed, then ``qa`` deleted (the watch has not said so yet)."""
    nodes = [ready_node("qa"), ready_node("qb")]
    record, source = decided_on("qa", nodes)
    kube = StubKube(nodes)
    view = QPUView(cast(Kube, kube), max_age=5.0)
    assert "qa" in view.get().alive
    del kube.nodes["qa"]
    dispatcher = Dispatcher(cast(Kube, kube), REF, WorkerConfig(), source,
                            {n["metadata"]["name"]: n for n in record.fleet}, record.now, None)
    pods = {} if pod_phase is None else {fragment_name("job", "qa"):
                                         fragment_pod("qa", pod_phase, gated)}
    configmaps: dict[str, Any] = {}
    if has_input:
        configmaps[input_name(fragment_name("job", "qa"))] = {}
    return kube, dispatcher, view, pods, configmaps


def test_a_running_fragment_on_a_lost_qpu_finishes_where_it_runs() -> None:
    kube, dispatcher, view, pods, configmaps = setup("Running")
    tick = dispatcher.step(pods, configmaps, {}, view)
    assert tick.failure is None and not tick.events
    assert not kube.created and not kube.deleted  # nothing moved, nothing killed
    assert dispatcher.placed == {"qa": "qa"}


@pytest.mark.parametrize(("phase", "has_input", "gated"), [
    (None, False, False),  # no pod yet: not created on the deleted QPU
    ("Pending", False, True),  # gated, its input ready now: not released there
])
def test_nothing_is_created_or_released_on_a_qpu_the_api_server_no_longer_has(
        phase: str | None, has_input: bool, gated: bool) -> None:
    kube, dispatcher, view, pods, configmaps = setup(phase, has_input, gated)
    lists = kube.lists
    tick = dispatcher.step(pods, configmaps, {}, view)
    assert kube.lists == lists + 1  # one fresh read before acting, though the view was young
    assert tick.failure is None
    assert not kube.released
    assert kube.pods_created() == [f"{fragment_name('job', 'qa')}-r1"]
    (node,) = [json.loads(m["data"]["qpunode.json"])["metadata"]["name"]
               for m in kube.created if m["kind"] == "ConfigMap"]
    assert node == "qb"
    assert kube.deleted == ([] if phase is None else [fragment_name("job", "qa")])
    assert [e.reason for e in tick.events] == ["Created", "Rescheduled"]
    assert dispatcher.placed == {"qa": "qb"}


def test_a_pending_fragment_moves_once_its_qpu_is_seen_lost() -> None:
    kube, dispatcher, view, pods, configmaps = setup("Pending")
    assert dispatcher.step(pods, configmaps, {}, view).failure is None
    assert not kube.created  # the young view says qa exists and nothing is done on it
    view.observe("qa", None)  # the watch reports the deletion
    tick = dispatcher.step(pods, configmaps, {}, view)
    assert kube.deleted == [fragment_name("job", "qa")]
    assert kube.pods_created() == [f"{fragment_name('job', 'qa')}-r1"]
    assert "QPUNode qa was deleted" in tick.events[-1].message


def test_the_view_is_read_again_only_when_availability_changes() -> None:
    kube = StubKube([ready_node("qa")])
    view = QPUView(cast(Kube, kube), max_age=60.0)
    view.get()
    busy = ready_node("qa")
    busy["status"]["queueDepth"] = 3
    view.observe("qa", busy)  # a queue depth update: same availability
    view.get()
    assert kube.lists == 1
    view.observe("qa", None)
    del kube.nodes["qa"]
    assert "qa" not in view.get().alive and kube.lists == 2


def test_status_names_the_qpu_that_ran_a_moved_share() -> None:
    """All shots planned on an ideal simulator, run (after a move) on a noisy device: the
    result, its noise allowance and the plan are the device's."""
    nodes = [ready_node("qa", qubits=8), ready_node("qb", "fake", "fake_nairobi")]
    record, source = decided_on("qa", nodes)
    (slot,) = source.slots
    work = source.work(slot, "qb", 1, {})
    assert work is not None
    node = next(n for n in record.fleet if n["metadata"]["name"] == "qb")
    name = f"{fragment_name('job', 'qa')}-r1"
    data = work.input_data(REF, name, node)  # an Estimator fragment's: qb is noisy
    status = source.finish({"qa": slot_result(run_fragment(data, name), record.now)})
    assert status.phase == "Succeeded", status.conditions
    assert status.result is not None and status.result.qpus == ["qb"]
    assert status.result.backends == ["fake_nairobi"]
    assert status.verification is not None and status.verification.noisy
    assert status.plan is not None
    (fragment,) = status.plan.fragments
    assert (fragment.name, fragment.qpu, fragment.backend) == ("main-qb", "qb", "fake_nairobi")
    assert "qa" not in json.dumps(status.result.model_dump()) + fragment.name
