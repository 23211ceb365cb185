"""The operator reads a policy's network state from its ConfigMap when it decides, keeps it in
the decision record, and an urgent job's decision says which link made it urgent."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from kubernetes import client

from tests.operator.kit import ENTANGLED_QASM, G, V, condition, create, quantum_job, wait_job

pytestmark = pytest.mark.cluster


def test_an_urgent_job_names_the_hot_link_and_the_state_is_recorded(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...],
        core: client.CoreV1Api) -> None:
    state = {"observedAt": datetime.now(UTC).isoformat(),
             "links": {"Chicago--Kansas City": 0.97, "a--b": 0.1}}
    core.create_namespaced_config_map(namespace, {
        "metadata": {"name": "backbone-state"}, "data": {"state.json": json.dumps(state)}})
    create(api, namespace, {"apiVersion": f"{G}/{V}", "kind": "InvocationPolicy",
                            "metadata": {"name": "net"}, "spec": {"networkState": {
                                "configMapRef": {"name": "backbone-state",
                                                 "key": "state.json"}}}})
    for name, links in (("hot", "kansas city--chicago"), ("cool", "a--b")):
        job = quantum_job(name, ENTANGLED_QASM, None, shots=500, policyRef={"name": "net"})
        job["metadata"]["annotations"] = {"qbackbone.io/links": links}
        create(api, namespace, job)
    rules = {}
    for name in ("hot", "cool"):
        done = wait_job(api, namespace, name)
        assert done["status"]["phase"] == "Succeeded", condition(done, "Failed")
        rules[name] = next(r for r in done["status"]["decision"]["rules"]
                           if r["name"] == "networkUrgent")
    assert rules["hot"]["passed"] is False and "Chicago--Kansas City at 0.97" in \
        rules["hot"]["value"] and "ConfigMap backbone-state/state.json" in rules["hot"]["value"]
    assert rules["cool"]["passed"] is True
    record = core.read_namespaced_config_map("hot-decision", namespace).data
    recorded = json.loads(record["policy.json"])["spec"]["networkState"]["document"]
    assert json.loads(recorded) == state  # what the decision saw, kept for a restart
