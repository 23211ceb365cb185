"""Hostile jobs fail alone: whatever deciding or moving one job raises (a refusal, a Rust
panic, MemoryError, RecursionError, a bug) ends that job ``Failed`` with a CamelCase reason,
while the operator goes on reconciling the others.

Without a cluster the reconciler runs against a stub API server and the decision is made to
raise; on the local control plane hostile manifests are applied next to a good job.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, cast

import pytest
from controllers.metrics import HandlerCrash, observed
from kubernetes import client
from qiskit import qasm2

from qbackbone.k8s import QPUNODES
from qbackbone.k8s.builders import WorkerConfig
from qbackbone.k8s.decision import DecisionRecord
from qbackbone.k8s.dispatch import Dispatcher
from qbackbone.k8s.failures import failure_of
from qbackbone.k8s.jobflow import JobReconciler
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.names import LABEL_ROLE
from tests.operator.conftest import OperatorProcess
from tests.operator.kit import condition, create, quantum_job, wait_job
from tests.operator.test_jobs import ENTANGLED, OBSERVABLES, exact
from tests.operator.test_moves import ready_node

CAMEL = re.compile(r"^[A-Z][a-z]+(?:[A-Z][a-z]*|QPU)*$")
PASSWD = ("root:", "nologin", "/bin/bash", "/usr/sbin", "daemon:")


def panic_type() -> type[BaseException]:
    """pyo3's PanicException, as Qiskit's Rust parser raises it (a register past 2^64)."""
    try:
        qasm2.loads("OPENQASM 2.0;\nqreg q[99999999999999999999999];\n")
    except BaseException as err:
        assert not isinstance(err, Exception)
        return type(err)
    raise AssertionError("Qiskit no longer panics on a register past 2^64")


class StubKube:
    """Ready QPUNodes, no policies, and the job's own objects as the reconciler writes them."""

    def __init__(self) -> None:
        self.nodes = [ready_node("qa"), ready_node("qb")]
        self.configmaps: dict[str, dict[str, str]] = {}
        self.patches: list[tuple[str, Mapping[str, Any]]] = []
        self.running: dict[str, Any] = {}  # pods the listing returns
        self.deleted: list[str] = []

    def list_objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return list(self.nodes) if plural == QPUNODES else []

    def configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.configmaps.get(name)

    def create(self, manifest: Mapping[str, Any]) -> bool:
        if manifest["kind"] == "ConfigMap":
            self.configmaps[manifest["metadata"]["name"]] = dict(manifest["data"])
        return True

    def patch_status(self, plural: str, namespace: str | None, name: str,
                     patch: Mapping[str, Any]) -> None:
        self.patches.append((name, patch))

    def pods(self, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
        return dict(self.running)

    def labelled_configmaps(self, namespace: str, labels: Mapping[str, str]
                            ) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
        return {}

    def delete_pod(self, namespace: str, name: str) -> bool:
        self.deleted.append(name)
        return True

    def failed(self, job: str) -> tuple[str, str]:
        """The reason and message of the job's last written Failed condition."""
        for name, patch in reversed(self.patches):
            cond = next((c for c in patch.get("conditions") or [] if c["type"] == "Failed"),
                        None)
            if name == job and cond is not None:
                assert patch["phase"] == "Failed"
                return cond["reason"], cond["message"]
        raise AssertionError(f"no Failed status written for {job}")


def body(name: str, uid: str) -> dict[str, Any]:
    job = quantum_job(name, ENTANGLED, OBSERVABLES, shots=500, execution={"mode": "SingleQPU"})
    job["metadata"].update(namespace="ns", uid=uid, generation=1,
                           creationTimestamp="2026-11-23T04:00:00Z")
    return job


@pytest.mark.parametrize(("raised", "reason"), [
    (MemoryError(), "InputTooLarge"),
    (RecursionError("maximum recursion depth exceeded"), "InputTooLarge"),
    (None, "InvalidCircuit"),  # the real PanicException
    (KeyError("bug"), "InternalError"),
])
def test_whatever_deciding_raises_fails_that_job_alone(raised: BaseException | None, reason: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    err = raised if raised is not None else panic_type()("index out of bounds")
    assert failure_of(err)[0] == reason
    kube = StubKube()
    jobs = JobReconciler(cast(Kube, kube), WorkerConfig(), seed=3)
    decide = DecisionRecord.decide

    def hostile(record: DecisionRecord, run: Any) -> Any:
        if record.job["metadata"]["name"] == "hostile":
            raise err
        return decide(record, run)

    monkeypatch.setattr(DecisionRecord, "decide", hostile)
    events = jobs.reconcile(body("hostile", "uid-h"))
    assert kube.failed("hostile")[0] == reason
    assert [e.reason for e in events] == ["Failed"] and reason in events[0].message
    assert "hostile-decision" not in kube.configmaps  # nothing recorded for it
    jobs.reconcile(body("good", "uid-g"))  # the next job is decided as ever
    assert "good-decision" in kube.configmaps and "good-admission" in kube.configmaps


def test_a_crash_while_running_fails_the_job_and_stops_its_pods(
        monkeypatch: pytest.MonkeyPatch) -> None:
    kube = StubKube()
    jobs = JobReconciler(cast(Kube, kube), WorkerConfig(), seed=3)
    jobs.reconcile(body("deep", "uid-d"))
    assert "uid-d" in jobs.active
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="deep-frag-qa",
                                                    labels={LABEL_ROLE: "fragment"}),
                       status=client.V1PodStatus(phase="Running"))
    kube.running = {"deep-frag-qa": pod}

    def deep(*_: Any, **__: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(Dispatcher, "step", deep)
    jobs.reconcile(body("deep", "uid-d"))
    reason, message = kube.failed("deep")
    assert reason == "InputTooLarge" and "RecursionError" in message
    assert kube.deleted == ["deep-frag-qa"] and "uid-d" not in jobs.active


@pytest.mark.parametrize("raised", [client.ApiException(status=500), KeyboardInterrupt()])
def test_api_errors_and_the_process_stopping_pass_through(raised: BaseException,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    kube = StubKube()

    def fails(*_: Any, **__: Any) -> Any:
        raise raised

    monkeypatch.setattr(kube, "list_objects", fails)
    jobs = JobReconciler(cast(Kube, kube), WorkerConfig(), seed=3)
    with pytest.raises(type(raised)):
        jobs.reconcile(body("any", "uid-a"))
    # kopf retries; the job is not failed for it (only its first phase, Deciding, is written)
    assert [patch.get("phase") for _, patch in kube.patches] == ["Deciding"]


def test_a_handler_panic_reaches_kopf_as_an_ordinary_error() -> None:
    panic = panic_type()

    @observed("qpunode")
    def handler(**_: Any) -> None:
        raise panic("boom")

    with pytest.raises(HandlerCrash, match="PanicException: boom"):
        handler(name="q", namespace=None)


# -- on the local control plane ------------------------------------------------------------

def both_observables(name: str) -> dict[str, Any]:
    """A manifest the CRD schema accepts and the model refuses: observables in both places."""
    job = quantum_job(name, ENTANGLED, ["ZZI"])
    job["spec"]["observables"] = ["ZZI"]
    return job


NESTED = "\n".join(['OPENQASM 2.0;', 'include "qelib1.inc";', "gate g0 a { h a; h a; }",
                    *(f"gate g{i} a {{ g{i - 1} a; g{i - 1} a; }}" for i in range(1, 20)),
                    "qreg q[1];", "g19 q[0];"]) + "\n"
HOSTILE: dict[str, dict[str, Any]] = {
    "include-passwd": quantum_job(
        "include-passwd", 'OPENQASM 2.0;\ninclude "/etc/passwd";\nqreg q[2];\nh q[0];\n', ["ZZ"]),
    "include-passwd-3": quantum_job(
        "include-passwd-3", 'OPENQASM 3.0;\ninclude "/etc/passwd";\nqubit[2] q;\nh q[0];\n',
        ["ZZ"]),
    "huge-register": quantum_job(
        "huge-register", 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[100000000];\nh q[0];\n',
        ["Z"]),
    "rust-panic": quantum_job("rust-panic", "OPENQASM 2.0;\nqreg q[99999999999999999999999];\n",
                              ["Z"]),
    "nested-gates": quantum_job("nested-gates", NESTED, ["Z"]),
    "bad-manifest": both_observables("bad-manifest"),
}


def test_hostile_jobs_fail_alone_and_a_good_job_succeeds(api: client.ApiClient, namespace: str,
                                                        fleet: tuple[str, ...],
                                                        operator: OperatorProcess,
                                                        core: client.CoreV1Api) -> None:
    names = list(HOSTILE)
    for name in names[:3]:
        create(api, namespace, HOSTILE[name])
    create(api, namespace, quantum_job("good", ENTANGLED, OBSERVABLES, shots=1000,
                                       execution={"mode": "SingleQPU"}))
    for name in names[3:]:
        create(api, namespace, HOSTILE[name])
    good = wait_job(api, namespace, "good", timeout=180)
    assert good["status"]["phase"] == "Succeeded", condition(good, "Failed")
    assert good["status"]["verification"]["passed"] is True
    for ev, want in zip(good["status"]["result"]["expectationValues"],
                        exact(ENTANGLED, OBSERVABLES), strict=True):
        assert abs(ev["value"] - want) <= 4 * ev["stdError"] + 1e-9, (ev, want)
    messages = []
    for name in names:
        job = wait_job(api, namespace, name, timeout=180)
        failed = condition(job, "Failed")
        assert job["status"]["phase"] == "Failed" and failed is not None, (name, job["status"])
        assert CAMEL.match(failed["reason"]) and failed["reason"] != "InternalError", \
            (name, failed)
        messages += [c.get("message", "") for c in job["status"]["conditions"]]
    messages += [e.message or "" for e in core.list_namespaced_event(namespace).items]
    leaked = [m for m in messages if any(text in m for text in PASSWD)]
    assert not leaked, leaked
    assert operator.proc is not None and operator.proc.poll() is None  # still running
    pods = core.list_namespaced_pod(namespace).items
    assert {p.metadata.labels["qbackbone.io/job"] for p in pods} == {"good"}
