"""QuantumJobs from ``create`` to a verified result through the operator, pods and workers."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from qiskit import qasm2
from qiskit.quantum_info import SparsePauliOp, Statevector

from qbackbone.dev.waiting import wait_for
from tests.operator.kit import condition, create, policy, quantum_job, wait_job

pytestmark = pytest.mark.cluster

ENTANGLED = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
ry(0.7) q[0];
cx q[0], q[1];
rx(1.1) q[2];
cx q[1], q[2];
"""
OBSERVABLES = ["ZZI", "IZZ", "IIZ", "XXX", "ZIZ"]


def exact(qasm: str, observables: list[str]) -> list[float]:
    state = Statevector(qasm2.loads(qasm))
    return [float(state.expectation_value(SparsePauliOp(o)).real) for o in observables]


def test_single_qpu_job_succeeds_with_verified_values(api: client.ApiClient, namespace: str,
                                                      fleet: tuple[str, ...],
                                                      core: client.CoreV1Api) -> None:
    create(api, namespace, policy("fast", scheduler={"iterations": 10}))
    create(api, namespace, quantum_job("ent", ENTANGLED, OBSERVABLES, shots=3000,
                                       policyRef={"name": "fast"},
                                       execution={"mode": "SingleQPU"}))
    job = wait_job(api, namespace, "ent")
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    assert status["decision"]["path"] == "SingleQPU"
    assert status["decision"]["policy"] == "fast" and status["decision"]["policyGeneration"] == 1
    assert status["result"]["path"] == "SingleQPU"
    assert set(status["result"]["qpus"]) <= set(fleet)
    assert status["verification"]["passed"] is True
    for ev, want in zip(status["result"]["expectationValues"], exact(ENTANGLED, OBSERVABLES),
                        strict=True):
        assert abs(ev["value"] - want) <= 4 * ev["stdError"] + 1e-9, (ev, want)
    for type_ in ("Decided", "Scheduled", "Executed", "Verified", "Succeeded"):
        cond = condition(job, type_)
        assert cond is not None and cond["status"] == "True", (type_, cond)
        assert cond["observedGeneration"] == 1

    def pods_succeeded() -> list[Any]:
        pods = core.list_namespaced_pod(namespace, label_selector="qbackbone.io/job=ent").items
        return pods if all(p.status.phase == "Succeeded" for p in pods) else []

    pods = wait_for(pods_succeeded, 20, what="fragment pods Succeeded")
    assert {p.metadata.labels["qbackbone.io/qpu"] for p in pods} == set(status["result"]["qpus"])
    reasons = {e.reason for e in core.list_namespaced_event(namespace).items
               if e.involved_object.name == "ent"}
    assert {"Decided", "Created", "Succeeded"} <= reasons, reasons
