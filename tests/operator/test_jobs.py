"""QuantumJobs from ``create`` to a verified result through the operator, pods and workers."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from qiskit import qasm2
from qiskit.quantum_info import SparsePauliOp, Statevector

from qbackbone.dev.waiting import wait_for
from tests.operator.kit import (
    ENTANGLED_QASM,
    condition,
    create,
    get_job,
    policy,
    quantum_job,
    wait_job,
)

pytestmark = pytest.mark.cluster

ENTANGLED = ENTANGLED_QASM
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


def test_classical_job_runs_the_fallback_pod(api: client.ApiClient, namespace: str,
                                             fleet: tuple[str, ...],
                                             core: client.CoreV1Api) -> None:
    create(api, namespace, quantum_job("cl", ENTANGLED, OBSERVABLES,
                                       execution={"mode": "Classical"}))
    job = wait_job(api, namespace, "cl")
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    assert status["decision"]["path"] == "Classical" and status["result"]["path"] == "Classical"
    assert status["verification"]["passed"] is True
    for ev, want in zip(status["result"]["expectationValues"], exact(ENTANGLED, OBSERVABLES),
                        strict=True):
        assert abs(ev["value"] - want) <= 1e-6, (ev, want)
    (pod,) = core.list_namespaced_pod(namespace, label_selector="qbackbone.io/job=cl").items
    assert pod.metadata.labels["qbackbone.io/role"] == "classical"
    limits = pod.spec.containers[0].resources.limits or {}
    assert not any(k.startswith("qpu.qbackbone.io/") for k in limits)


@pytest.mark.parametrize(("name", "qasm", "spec", "reason"), [
    ("bad-circuit", 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0]\ncx q[0], q[1];\n',
     {}, "InvalidCircuit"),
    ("no-policy", ENTANGLED, {"policyRef": {"name": "nowhere"}}, "PolicyNotFound"),
])
def test_bad_jobs_fail_with_a_reason(name: str, qasm: str, spec: dict[str, Any], reason: str,
                                     api: client.ApiClient, namespace: str,
                                     fleet: tuple[str, ...], core: client.CoreV1Api) -> None:
    create(api, namespace, quantum_job(name, qasm, ["ZZ"] if "qreg q[2]" in qasm else OBSERVABLES,
                                       **spec))
    job = wait_job(api, namespace, name, timeout=60)
    failed = condition(job, "Failed")
    assert job["status"]["phase"] == "Failed"
    assert failed is not None and failed["status"] == "True" and failed["reason"] == reason, failed
    assert failed["observedGeneration"] == 1
    assert not core.list_namespaced_pod(namespace).items  # nothing was started
    events = [e for e in core.list_namespaced_event(namespace).items
              if e.involved_object.name == name and e.reason == "Failed"]
    assert events and reason in events[0].message


def test_policy_not_found_names_the_policies_of_the_namespace(api: client.ApiClient,
                                                             namespace: str,
                                                             fleet: tuple[str, ...]) -> None:
    for name in ("fast", "careful"):
        create(api, namespace, policy(name))
    create(api, namespace, quantum_job("astray", ENTANGLED, OBSERVABLES,
                                       policyRef={"name": "nowhere"}))
    failed = condition(wait_job(api, namespace, "astray", timeout=60), "Failed")
    assert failed is not None and failed["reason"] == "PolicyNotFound", failed
    assert "'nowhere'" in failed["message"] and namespace in failed["message"], failed
    assert "(known: careful, fast)" in failed["message"], failed


def test_deleting_a_job_deletes_its_pods_and_configmaps(api: client.ApiClient, namespace: str,
                                                        fleet: tuple[str, ...],
                                                        core: client.CoreV1Api) -> None:
    create(api, namespace, quantum_job("gone", ENTANGLED, ["ZZI"], shots=500))
    assert wait_job(api, namespace, "gone")["status"]["phase"] == "Succeeded"
    selector = "qbackbone.io/job=gone"
    assert core.list_namespaced_pod(namespace, label_selector=selector).items
    configmaps = core.list_namespaced_config_map(namespace, label_selector=selector).items
    roles = {cm.metadata.labels["qbackbone.io/role"] for cm in configmaps}
    assert roles == {"decision", "admission", "input", "result"}
    client.CustomObjectsApi(api).delete_namespaced_custom_object(
        "qbackbone.io", "v1alpha1", namespace, "quantumjobs", "gone")

    def all_gone() -> bool:
        return not (core.list_namespaced_pod(namespace, label_selector=selector).items
                    or core.list_namespaced_config_map(namespace, label_selector=selector).items)

    def job_gone() -> bool:
        try:
            get_job(api, namespace, "gone")
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(job_gone, 10, what="job deleted (no finalizer left on a finished job)")
    # The garbage collector notices a new CRD's objects on its next discovery resync (30 s).
    wait_for(all_gone, 60, what="the job's pods and ConfigMaps garbage-collected")
