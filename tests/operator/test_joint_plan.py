"""Jobs waiting for QPU time are planned together and re-planned as jobs arrive.

One QPU the scheduler models as slow (5 s per fragment, 1 ms per shot: 6 s for a 1000-shot
job) keeps jobs waiting behind each other; real fragments take a few seconds, inside every
deadline here.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from tests.operator.conftest import OperatorProcess
from tests.operator.kit import (
    PodWatch,
    condition,
    create,
    create_ready_qpunode,
    delete_qpunode,
    get_job,
    quantum_job,
    wait_job,
)
from tests.operator.test_jobs import exact
from tests.operator.test_qpu_loss import events_of

pytestmark = pytest.mark.cluster

BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0], q[1];\n'
SLOW = "op-qpu-c"  # advertised by the session's node agent
GHOST = "op-ghost-queue"  # advertised by no node: its pods never start


@pytest.fixture
def slow_qpu(api: client.ApiClient, fleet: tuple[str, ...]) -> Iterator[str]:
    create_ready_qpunode(api, SLOW, qubits=8, setupTime="5s", shotTime="1ms")
    yield SLOW
    delete_qpunode(api, SLOW)


@pytest.fixture
def ghost_qpu(api: client.ApiClient, fleet: tuple[str, ...]) -> Iterator[str]:
    create_ready_qpunode(api, GHOST, qubits=8, setupTime="5s", shotTime="1ms")
    yield GHOST
    delete_qpunode(api, GHOST)


def bell_job(name: str, qpu: str, **spec: Any) -> dict[str, Any]:
    return quantum_job(name, BELL, ["ZZ"], shots=1000,
                       execution={"mode": "SingleQPU", "qpuSelector": {"names": [qpu]}}, **spec)


def in_phase(api: client.ApiClient, namespace: str, name: str, want: str) -> Any:
    """The job when its phase is ``want``, else None."""
    job = get_job(api, namespace, name)
    return job if (job.get("status") or {}).get("phase") == want else None


def test_a_late_job_with_a_tight_deadline_is_admitted_before_an_earlier_one(
        api: client.ApiClient, namespace: str, slow_qpu: str, core: client.CoreV1Api,
        pod_watch: PodWatch) -> None:
    """``first`` takes the QPU; ``patient`` (no deadline) and then ``urgent`` (deadline 14 s)
    queue behind it. First come, first served would run ``urgent`` 6-18 s after it arrived,
    past its deadline; the joint plan re-made on its arrival admits it before ``patient``."""
    create(api, namespace, bell_job("first", slow_qpu))
    wait_for(lambda: in_phase(api, namespace, "first", "Running"), 60, interval=0.1,
             what="first admitted")
    create(api, namespace, bell_job("patient", slow_qpu))
    wait_for(lambda: in_phase(api, namespace, "patient", "Queued"), 30, interval=0.1,
             what="patient queued")
    create(api, namespace, bell_job("urgent", slow_qpu, deadline="14s"))
    jobs = {name: wait_job(api, namespace, name, timeout=120)
            for name in ("first", "urgent", "patient")}
    for name, job in jobs.items():
        status = job["status"]
        assert status["phase"] == "Succeeded", (name, condition(job, "Failed"))
        assert status["verification"]["passed"] is True
        assert status["result"]["qpus"] == [slow_qpu]
        (ev,) = status["result"]["expectationValues"]
        assert abs(ev["value"] - exact(BELL, ["ZZ"])[0]) <= 4 * ev["stdError"] + 1e-9
        admitted = condition(job, "Scheduled")
        assert admitted is not None and admitted["reason"] == "Admitted", admitted
        assert "joint plan" in admitted["message"]
    assert condition(jobs["urgent"], "DeadlineMet")["status"] == "True"  # type: ignore[index]
    # Pods are created on admission: the watch saw them in admission order.
    order = [pod.metadata.labels["qbackbone.io/job"] for pod in list(pod_watch.first.values())]
    assert order == ["first", "urgent", "patient"], order
    for name in ("urgent", "patient"):  # both waited, then were admitted
        reasons = {e.reason for e in events_of(core, namespace, name)}
        assert {"Queued", "Admitted"} <= reasons, reasons


def test_a_job_that_cannot_fit_behind_admitted_work_waits_then_misses_its_deadline(
        api: client.ApiClient, namespace: str, ghost_qpu: str, core: client.CoreV1Api) -> None:
    """The ghost's admitted job never runs, so the 6 s it holds never end: a 10 s job (it
    fits alone) cannot be planned before its deadline. It waits, saying why, then fails
    ``DeadlineExceeded``; no pod or input was ever created for it."""
    create(api, namespace, bell_job("holder", ghost_qpu))
    wait_for(lambda: in_phase(api, namespace, "holder", "Running"), 60, interval=0.1,
             what="holder admitted")
    create(api, namespace, bell_job("squeezed", ghost_qpu, deadline="10s"))
    waiting = wait_for(lambda: in_phase(api, namespace, "squeezed", "Queued"), 30,
                       interval=0.1, what="squeezed queued")
    scheduled = condition(waiting, "Scheduled")
    assert scheduled is not None and scheduled["status"] == "False"
    assert scheduled["reason"] == "Queued"
    assert "cannot finish it by its deadline" in scheduled["message"], scheduled
    job = wait_job(api, namespace, "squeezed", timeout=60)
    failed = condition(job, "Failed")
    assert failed is not None and failed["reason"] == "DeadlineExceeded", failed
    assert "while it waited for QPU time" in failed["message"], failed
    assert not core.list_namespaced_pod(namespace,
                                        label_selector="qbackbone.io/job=squeezed").items
    roles = {cm.metadata.labels["qbackbone.io/role"] for cm in core.list_namespaced_config_map(
        namespace, label_selector="qbackbone.io/job=squeezed").items}
    assert roles == {"decision"}
    assert in_phase(api, namespace, "holder", "Running")  # untouched


def test_waiting_jobs_survive_an_operator_restart(api: client.ApiClient, namespace: str,
                                                  slow_qpu: str, operator: OperatorProcess,
                                                  core: client.CoreV1Api,
                                                  pod_watch: PodWatch) -> None:
    """SIGKILL while one job runs and two wait (decision records, no admission records, no
    pods): the new operator queues them again, plans them and runs each once."""
    create(api, namespace, bell_job("running", slow_qpu))
    wait_for(lambda: in_phase(api, namespace, "running", "Running"), 60, interval=0.1,
             what="running admitted")
    for name in ("waiting-1", "waiting-2"):
        create(api, namespace, bell_job(name, slow_qpu))
        wait_for(lambda name=name: in_phase(api, namespace, name, "Queued"), 30, interval=0.1,
                 what=f"{name} queued")
        # kopf posts the event after the status write: a kill right after the write loses it
        wait_for(lambda name=name: "Queued" in {e.reason for e in events_of(core, namespace,
                                                                             name)},
                 10, interval=0.1, what=f"{name}'s Queued event")
    assert not core.list_namespaced_pod(namespace, label_selector="qbackbone.io/job in "
                                        "(waiting-1,waiting-2)").items
    operator.stop(signal.SIGKILL)
    operator.start()
    for name in ("running", "waiting-1", "waiting-2"):
        job = wait_job(api, namespace, name, timeout=120)
        assert job["status"]["phase"] == "Succeeded", (name, condition(job, "Failed"))
        assert job["status"]["verification"]["passed"] is True
    assert all(n == 1 for n in pod_watch.added.values()), pod_watch.added  # none twice
    jobs = [pod.metadata.labels["qbackbone.io/job"] for pod in list(pod_watch.first.values())]
    assert sorted(jobs) == ["running", "waiting-1", "waiting-2"] and jobs[0] == "running"
    for name in ("waiting-1", "waiting-2"):
        reasons = {e.reason for e in events_of(core, namespace, name)}
        assert {"Queued", "Resumed", "Admitted"} <= reasons, (name, reasons)
