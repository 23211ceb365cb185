"""detect and predict jobs through the operator: a detect job's kernel circuits as fragment
pods on a QPU resource (checked against the exact kernel), its classical models and every
forecast in a worker pod; the same answers as ``qbackbone run`` gives; refusals before any
pod is made."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.k8s.objects import policies, qpunodes
from tests.operator.kit import G, V, condition, create, wait_job

pytestmark = pytest.mark.cluster

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "detect-predict"
TOPOLOGY = {"format": "graphml", "nodeAttribute": "label", "defaultCapacity": 9953,
            "configMapRef": {"name": "abilene-topology", "key": "Abilene.graphml"}}
IDEAL = {"apiVersion": f"{G}/{V}", "kind": "InvocationPolicy",
         "metadata": {"name": "detect-ideal-t"},
         "spec": {"hardware": {"idealSimulators": "Allowed"}}}


def detect_job(name: str, model: str, **detect: Any) -> dict[str, Any]:
    telemetry = {"generated": {"topology": TOPOLOGY, "seed": 5, "days": 8, "anomalies": 5}}
    return {"apiVersion": f"{G}/{V}", "kind": "QuantumJob", "metadata": {"name": name},
            "spec": {"policyRef": {"name": "detect-ideal-t"}, "deadline": "600s",
                     "problem": {"anomalyDetection": {
                         "telemetry": telemetry, "window": 6, "qubits": 3, "model": model,
                         "kernelShots": 1000, "maxTrainWindows": 12, **detect}}}}


def forecast_job(name: str, **forecast: Any) -> dict[str, Any]:
    telemetry = {"generated": {"topology": TOPOLOGY, "seed": 3, "days": 21, "anomalies": 0}}
    return {"apiVersion": f"{G}/{V}", "kind": "QuantumJob", "metadata": {"name": name},
            "spec": {"deadline": "600s", "problem": {"forecast": {
                "telemetry": telemetry, "horizon": 24, "season": 24, "history": 336,
                **forecast}}}}


@pytest.fixture
def abilene(core: client.CoreV1Api, namespace: str, api: client.ApiClient) -> str:
    doc = yaml.safe_load((EXAMPLES / "abilene-topology.yaml").read_text())
    core.create_namespaced_config_map(namespace, doc)
    create(api, namespace, copy.deepcopy(IDEAL))
    return str(doc["data"]["Abilene.graphml"])


def in_process(body: dict[str, Any], document: str, api: client.ApiClient,
               policy: dict[str, Any] | None = None) -> Any:
    """The same job run by ``qbackbone run``'s pipeline on the operator's Ready QPUNodes."""
    job = copy.deepcopy(body)
    problem = job["spec"]["problem"]
    section = problem.get("anomalyDetection") or problem["forecast"]
    topology = section["telemetry"]["generated"]["topology"]
    topology.pop("configMapRef")
    topology["document"] = document
    nodes = client.CustomObjectsApi(api).list_cluster_custom_object(G, V, "qpunodes")["items"]
    ready = [n for n in nodes if any(c["type"] == "Ready" and c["status"] == "True"
                                     for c in (n.get("status") or {}).get("conditions") or [])]
    named = {} if policy is None else {policy["metadata"]["name"]: policy}
    return run_job(QuantumJob.model_validate(job), build_fleet(qpunodes(ready)),
                   policies(named), seed=11)


def pods_of(core: client.CoreV1Api, namespace: str, job: str) -> list[Any]:
    return list(core.list_namespaced_pod(namespace,
                                         label_selector=f"qbackbone.io/job={job}").items)


def requests_qpu(pod: Any) -> bool:
    return any(k.startswith("qpu.qbackbone.io/") for c in pod.spec.containers
               for k in (c.resources.requests or {}))


def test_kernel_circuits_run_as_fragment_pods_and_match_the_exact_kernel(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...], core: client.CoreV1Api,
        abilene: str) -> None:
    create(api, namespace, detect_job("qk", "QuantumKernel"))
    job = wait_job(api, namespace, "qk", timeout=300)
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    assert status["decision"]["path"] == "SingleQPU"
    rules = {r["name"]: r for r in status["decision"]["rules"]}
    assert rules["kernelTimeFits"]["passed"]  # from the QPU's time model, not a pilot run
    detection = status["result"]["solution"]["detection"]
    kernel = detection["kernel"]
    n, m = detection["trainWindows"], detection["testWindows"]
    assert kernel["circuits"] == n * (n - 1) // 2 + m * n
    assert kernel["exactAgrees"] is True and kernel["backend"] in fleet
    assert status["verification"]["method"] == "ExactStatevector"
    assert status["verification"]["passed"] is True
    assert status["result"]["qpus"] == [kernel["backend"]]
    assert {b["model"] for b in detection["baselines"]} == {"rbfSvm", "isolationForest"}
    assert detection["scores"]["f1"] is not None and detection["injected"]
    pods = pods_of(core, namespace, "qk")
    fragments = [p for p in pods if requests_qpu(p)]
    assert len(fragments) == len(status["plan"]["fragments"]) >= 1
    inputs = core.list_namespaced_config_map(
        namespace, label_selector="qbackbone.io/job=qk,qbackbone.io/role=input").items
    assert inputs and all("bindings.json" in (c.data or {}) for c in inputs)
    record = core.read_namespaced_config_map("qk-decision", namespace).data
    assert "configMapRef" not in record["job.json"] and "graphml" in record["job.json"]


def test_classical_models_run_in_a_worker_pod_and_agree_with_qbackbone_run(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...], core: client.CoreV1Api,
        abilene: str) -> None:
    body = detect_job("rbf", "RbfSvm")
    create(api, namespace, copy.deepcopy(body))
    job = wait_job(api, namespace, "rbf", timeout=300)
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    assert status["decision"]["path"] == "Classical"
    detection = status["result"]["solution"]["detection"]
    assert detection["model"] == "rbfSvm" and detection.get("kernel") is None
    pods = pods_of(core, namespace, "rbf")
    assert [p.metadata.name for p in pods] == ["rbf-classical"]
    assert not requests_qpu(pods[0])
    local = in_process(body, abilene, api, IDEAL)
    assert local.phase.value == "Succeeded"
    expected = local.result.solution.detection
    assert detection["scores"]["f1"] == expected.scores.f1
    assert detection["scores"]["auc"] == expected.scores.auc
    assert [b["f1"] for b in detection["baselines"]] == [b.f1 for b in expected.baselines]
    assert [w["start"] for w in detection["flagged"]] == [w.start for w in expected.flagged]


def test_a_forecast_runs_in_a_worker_pod_and_beats_seasonal_naive(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...], core: client.CoreV1Api,
        abilene: str) -> None:
    create(api, namespace, forecast_job("fc"))
    job = wait_job(api, namespace, "fc", timeout=300)
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    report = status["result"]["solution"]["forecast"]
    assert len(report["points"]) == 24
    assert all(p["lower"] <= p["value"] <= p["upper"] for p in report["points"])
    assert all(math.isfinite(p["value"]) for p in report["points"])
    chosen = next(h for h in report["holdout"] if h["method"] == report["method"])
    assert chosen["mase"] < 1.0, report["holdout"]
    assert {h["method"] for h in report["holdout"]} >= {"seasonalNaive", "holtWinters"}
    assert condition(job, "Decided")["reason"] in ("ClassicalSelected", "QuantumSelected")  # type: ignore[index]
    pods = pods_of(core, namespace, "fc")
    assert [p.metadata.name for p in pods] == ["fc-classical"] and not requests_qpu(pods[0])


@pytest.mark.parametrize(("name", "body", "says"), [
    ("no-target", forecast_job("no-target", target="Nowhere--Elsewhere"), "Nowhere--Elsewhere"),
    ("short", forecast_job("short", history=30), "history"),
    ("no-cm", {**detect_job("no-cm", "Auto"), "spec": {
        **detect_job("no-cm", "Auto")["spec"], "problem": {"anomalyDetection": {
            "telemetry": {"configMapRef": {"name": "missing-csv", "key": "links.csv"}}}}}},
     "missing-csv"),
])
def test_refusals_fail_the_job_before_any_pod(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...], core: client.CoreV1Api,
        abilene: str, name: str, body: dict[str, Any], says: str) -> None:
    create(api, namespace, body)
    job = wait_job(api, namespace, name, timeout=120)
    failed = condition(job, "Failed")
    assert job["status"]["phase"] == "Failed"
    assert failed is not None and failed["reason"] == "InvalidProblem", failed
    assert says in failed["message"]
    assert pods_of(core, namespace, name) == []


def test_the_examples_run_in_the_cluster(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...], core: client.CoreV1Api,
        abilene: str) -> None:
    for name in ("detect-abilene.yaml", "forecast-geant.yaml"):
        for doc in yaml.safe_load_all((EXAMPLES / name).read_text()):
            create(api, namespace, doc)
    detect = wait_job(api, namespace, "detect-abilene", timeout=400)
    assert detect["status"]["phase"] == "Succeeded", condition(detect, "Failed")
    detection = detect["status"]["result"]["solution"]["detection"]
    baseline = max(b["f1"] for b in detection["baselines"])
    assert detection["scores"]["f1"] >= baseline - 0.05, detection["baselines"]
    forecast = wait_job(api, namespace, "forecast-geant", timeout=400)
    assert forecast["status"]["phase"] == "Succeeded", condition(forecast, "Failed")
    report = forecast["status"]["result"]["solution"]["forecast"]
    chosen = next(h for h in report["holdout"] if h["method"] == report["method"])
    assert chosen["mase"] < 1.0
