"""A traffic-engineering job wider than every QPU through the operator: decomposed by region,
each round's sub-QUBOs sent to QPUs as fragment pods, each round recorded; feasible under
link loads recomputed here from the routes; a killed operator resumes from the records."""

from __future__ import annotations

import itertools
import json
import signal
from typing import Any

import networkx as nx
import pytest
from kubernetes import client

from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.dev.waiting import wait_for
from qbackbone.k8s.objects import qpunodes
from tests.decomposition.builders import slice_spec, te_spec
from tests.operator.conftest import OperatorProcess
from tests.operator.kit import G, V, condition, create, wait_job

pytestmark = pytest.mark.cluster

POLICY = {"apiVersion": f"{G}/{V}", "kind": "InvocationPolicy",
          "metadata": {"name": "regions"},
          "spec": {"optimization": {"exactTimeLimitSeconds": 5, "decomposition": {
              "enabled": True, "maxRegionVariables": 6, "iterations": 4}}}}


def te_job(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{G}/{V}", "kind": "QuantumJob", "metadata": {"name": name},
            "spec": {"policyRef": {"name": "regions"}, "execution": {"mode": "SingleQPU"},
                     "shots": 500, "deadline": "600s",
                     "problem": {"trafficEngineering": spec}}}


def recomputed(spec: dict[str, Any], routes: list[dict[str, Any]]) -> tuple[float, float]:
    """(overload, congestion) from the routes and the spec's links alone."""
    graph = nx.Graph()
    for link in json.loads(spec["topology"]["document"])["links"]:
        graph.add_edge(link["source"], link["target"], capacity=link["capacity"])
    asked = sorted((d["source"], d["target"], d["volume"]) for d in spec["demands"])
    assert sorted((r["source"], r["target"], r["volume"]) for r in routes) == asked
    load: dict[frozenset[str], float] = {}
    for route in routes:
        path = route["path"]
        assert path[0] == route["source"] and path[-1] == route["target"]
        for a, b in itertools.pairwise(path):
            assert graph.has_edge(a, b), (a, b)
            load[frozenset((a, b))] = load.get(frozenset((a, b)), 0.0) + route["volume"]
    over = sum(max(0.0, v - graph.edges[tuple(e)]["capacity"]) for e, v in load.items())
    return over, sum((v / graph.edges[tuple(e)]["capacity"]) ** 2 for e, v in load.items())


def rounds(core: client.CoreV1Api, namespace: str, job: str) -> dict[str, Any]:
    found = core.list_namespaced_config_map(
        namespace, label_selector=f"qbackbone.io/job={job},qbackbone.io/role=round").items
    return {c.metadata.name: c for c in found}


@pytest.fixture
def regions_policy(api: client.ApiClient, namespace: str) -> None:
    create(api, namespace, json.loads(json.dumps(POLICY)))


def test_a_job_wider_than_every_qpu_runs_decomposed_as_fragment_pods(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...], core: client.CoreV1Api,
        regions_policy: None) -> None:
    spec = te_spec(12, 3, with_sites=False)
    create(api, namespace, te_job("wide", spec))
    job = wait_job(api, namespace, "wide", timeout=400)
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    assert status["decision"]["path"] == "Distributed"
    report = status["result"]["decomposition"]
    assert report["wholeVariables"] > 8 >= report["width"]  # wider than either QPU
    assert report["qpuCalls"] >= 1 and set(status["result"]["qpus"]) <= set(fleet)
    solution = status["result"]["solution"]
    over, congestion = recomputed(spec, solution["routes"])
    assert over <= 1e-9
    assert congestion == pytest.approx(solution["objective"], rel=1e-6)
    assert status["verification"]["passed"] and condition(job, "Verified")["reason"] == \
        "ConstraintsSatisfied"  # type: ignore[index]
    records = rounds(core, namespace, "wide")
    assert len(records) == len(report["rounds"]) >= 1
    pods = core.list_namespaced_pod(namespace, label_selector="qbackbone.io/job=wide").items
    fragments = [p for p in pods if any(k.startswith("qpu.qbackbone.io/")
                                        for c in p.spec.containers
                                        for k in (c.resources.requests or {}))]
    sampled = sum(1 for b in json.loads(records["wide-round-0"].data["blocks.json"]).values()
                  if b["path"] == "SingleQPU")
    assert sampled and len([p for p in fragments if "-r0-b" in p.metadata.name]) >= sampled
    # qbackbone run on the same QPUNodes: the same decomposition, a congestion close to it
    # (the QPU samples differ: pods seed per QPU)
    nodes = client.CustomObjectsApi(api).list_cluster_custom_object(G, V, "qpunodes")["items"]
    ready = [n for n in nodes if n["metadata"]["name"] in fleet]
    local = run_job(QuantumJob.model_validate(te_job("wide", spec)),
                    build_fleet(qpunodes(ready)),
                    {"regions": InvocationPolicy.model_validate(POLICY)}, seed=11)
    assert local.result is not None and local.result.solution is not None
    assert solution["objective"] <= 1.10 * local.result.solution.objective


def test_a_killed_operator_resumes_from_the_round_records(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...], core: client.CoreV1Api,
        operator: OperatorProcess, regions_policy: None) -> None:
    spec = te_spec(14, 3, with_sites=False)
    create(api, namespace, te_job("killed", spec))
    first = wait_for(lambda: rounds(core, namespace, "killed").get("killed-round-0"), 240,
                     interval=0.2, what="round 0 recorded")
    operator.stop(signal.SIGKILL)
    operator.start()
    job = wait_job(api, namespace, "killed", timeout=400)
    assert job["status"]["phase"] == "Succeeded", condition(job, "Failed")
    again = rounds(core, namespace, "killed")["killed-round-0"]
    assert again.metadata.resource_version == first.metadata.resource_version  # not redone
    over, _ = recomputed(spec, job["status"]["result"]["solution"]["routes"])
    assert over <= 1e-9
    events = core.list_namespaced_event(namespace).items
    assert any(e.reason == "Resumed" and e.involved_object.name == "killed" for e in events)


def test_slice_admission_runs_decomposed_as_fragment_pods(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...], core: client.CoreV1Api,
        regions_policy: None) -> None:
    spec = slice_spec(24, 1)
    body = te_job("slices", {})
    body["spec"]["problem"] = {"sliceAdmission": spec}
    create(api, namespace, body)
    job = wait_job(api, namespace, "slices", timeout=400)
    status = job["status"]
    assert status["phase"] == "Succeeded", condition(job, "Failed")
    report = status["result"]["decomposition"]
    assert report["kind"] == "sliceAdmission" and report["qpuCalls"] >= 1
    solution = status["result"]["solution"]
    admitted = set(solution["admitted"])
    used: dict[str, float] = {}
    for s in spec["slices"]:
        if s["name"] in admitted:
            for resource, amount in s["demands"].items():
                used[resource] = used.get(resource, 0.0) + amount
    capacity = {r["name"]: r["capacity"] for r in spec["resources"]}
    assert all(amount <= capacity[r] + 1e-9 for r, amount in used.items())
    revenue = sum(s["revenue"] for s in spec["slices"] if s["name"] in admitted)
    assert revenue == pytest.approx(solution["objective"])
    assert rounds(core, namespace, "slices")
