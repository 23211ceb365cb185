"""Problem jobs (spec.problem) through the operator: the QAOA circuit as fragment pods on QPU
resources, the classical solver as a pod, the topology read from a ConfigMap."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from tests.operator.kit import G, V, condition, create, wait_job

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "optimize"
SLICES = [("s0", 5, 3), ("s1", 4, 2), ("s2", 3, 2), ("s3", 2, 1)]  # name, revenue, demand
CAPACITY = 5


def problem_job(name: str, problem: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{G}/{V}", "kind": "QuantumJob", "metadata": {"name": name},
            "spec": {"problem": problem, **spec}}


def best_revenue() -> int:
    return max(sum(r for _, r, _ in chosen)
               for k in range(len(SLICES) + 1) for chosen in itertools.combinations(SLICES, k)
               if sum(d for _, _, d in chosen) <= CAPACITY)


def test_qaoa_path_runs_as_fragment_pods_and_reports_the_best_admission(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...],
        core: client.CoreV1Api) -> None:
    problem = {"sliceAdmission": {
        "slackBits": 2, "resources": [{"name": "pop", "capacity": CAPACITY}],
        "slices": [{"name": n, "revenue": r, "demands": {"pop": d}} for n, r, d in SLICES]}}
    create(api, namespace, problem_job("slices", problem, shots=1000,
                                       execution={"mode": "SingleQPU"}))
    job = wait_job(api, namespace, "slices", timeout=180)
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    assert status["decision"]["path"] == "SingleQPU"
    assert status["decision"]["features"]["variables"] == 6
    solution = status["result"]["solution"]
    assert solution["solver"] == "qaoa" and solution["feasible"]
    assert solution["objective"] == best_revenue() and solution["approximationRatio"] == 1.0
    assert set(status["result"]["qpus"]) <= set(fleet)
    assert condition(job, "Verified")["reason"] == "ConstraintsSatisfied"  # type: ignore[index]
    pods = core.list_namespaced_pod(namespace, label_selector="qbackbone.io/job=slices").items
    assert pods and all(
        any(k.startswith("qpu.qbackbone.io/") for k in (c.resources.requests or {}))
        for p in pods for c in p.spec.containers)


def test_classical_path_runs_the_solver_in_a_pod_with_the_topology_from_a_configmap(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...],
        core: client.CoreV1Api) -> None:
    topology = yaml.safe_load((EXAMPLES / "abilene-topology.yaml").read_text())
    core.create_namespaced_config_map(namespace, topology)
    docs = list(yaml.safe_load_all((EXAMPLES / "traffic-abilene.yaml").read_text()))
    for doc in docs:
        create(api, namespace, doc)
    job = wait_job(api, namespace, "te-abilene", timeout=180)
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    assert status["decision"]["path"] == "Classical"
    assert status["decision"]["policy"] == "backbone-te"
    solution = status["result"]["solution"]
    assert solution["feasible"] and len(solution["routes"]) == 10
    assert solution["maxUtilisation"] <= 1.0 and solution["optimumProven"]
    def pod_succeeded() -> Any:  # the agent reports the phase after the result is written
        pod = core.read_namespaced_pod("te-abilene-classical", namespace)
        return pod if pod.status.phase == "Succeeded" else None

    pod = wait_for(pod_succeeded, 30, what="the classical solver pod Succeeded")
    assert not any(k.startswith("qpu.qbackbone.io/")
                   for c in pod.spec.containers for k in (c.resources.requests or {}))
    # The decision record holds the topology itself: editing the ConfigMap changes nothing.
    record = core.read_namespaced_config_map("te-abilene-decision", namespace).data
    assert "configMapRef" not in record["job.json"] and "graphml" in record["job.json"]


def test_a_missing_configmap_fails_the_job_with_the_reason(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...]) -> None:
    problem = {"trafficEngineering": {
        "topology": {"format": "graphml", "configMapRef": {"name": "nowhere", "key": "g"}},
        "demands": [{"source": "a", "target": "b", "volume": 1}]}}
    create(api, namespace, problem_job("lost", problem))
    job = wait_job(api, namespace, "lost")
    failed = condition(job, "Failed")
    assert job["status"]["phase"] == "Failed"
    assert failed is not None and failed["reason"] == "InvalidProblem"
    assert "nowhere" in failed["message"]
