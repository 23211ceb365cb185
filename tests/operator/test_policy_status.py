"""InvocationPolicy status kept current by the operator: jobsDecided (jobs in the cluster whose
decision names the policy) and quantumShare (the share of them decided for a QPU)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from qbackbone.k8s.usage import job_decision, policy_usage
from tests.operator.kit import G, V, condition, create, policy, quantum_job, wait_job

pytestmark = pytest.mark.cluster

BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0], q[1];\n'


def _usage(custom: client.CustomObjectsApi, namespace: str, name: str) -> tuple[Any, Any]:
    status = custom.get_namespaced_custom_object(G, V, namespace, "invocationpolicies",
                                                 name).get("status") or {}
    return status.get("jobsDecided"), status.get("quantumShare")


def test_usage_counts_decided_paths_and_waits_for_the_policy_controller() -> None:
    assert job_decision({"status": {"decision": {"policy": "p", "path": "Classical"}}}) == (
        "p", "Classical")
    assert job_decision({"status": {"phase": "Failed"}}) is None  # refused before a decision
    assert policy_usage({"conditions": []}, ["SingleQPU"]) is None  # not validated yet
    stored = {"observedGeneration": 1, "jobsDecided": 0, "quantumShare": 0.0}
    new = policy_usage(stored, ["SingleQPU", "Distributed", "Classical"])
    assert new is not None and new.jobs_decided == 3
    assert new.quantum_share == pytest.approx(2 / 3, abs=1e-4)
    empty = policy_usage(stored, [])
    assert empty is not None and (empty.jobs_decided, empty.quantum_share) == (0, 0.0)


def test_policy_counts_the_jobs_it_decided(api: client.ApiClient, namespace: str,
                                           fleet: tuple[str, ...]) -> None:
    custom = client.CustomObjectsApi(api)
    create(api, namespace, policy("counted"))
    create(api, namespace, policy("idle"))
    wait_for(lambda: _usage(custom, namespace, "counted") == (0, 0.0), 30,
             what="policy validated with no jobs")
    ref = {"policyRef": {"name": "counted"}}
    create(api, namespace, quantum_job("q", BELL, ["ZZ"], shots=1000,
                                       execution={"mode": "SingleQPU"}, **ref))
    create(api, namespace, quantum_job("c", BELL, ["ZZ"], execution={"mode": "Classical"},
                                       **ref))
    create(api, namespace, quantum_job("bad", "OPENQASM 2.0; qreg q[2]; nonsense q;", ["ZZ"],
                                       **ref))  # refused before any decision: not counted
    for name in ("q", "c", "bad"):
        job = wait_job(api, namespace, name)
        want = "Failed" if name == "bad" else "Succeeded"
        assert job["status"]["phase"] == want, condition(job, "Failed")
    wait_for(lambda: _usage(custom, namespace, "counted") == (2, 0.5), 30,
             what="jobsDecided 2, quantumShare 0.5")
    assert _usage(custom, namespace, "idle") == (0, 0.0)
    custom.delete_namespaced_custom_object(G, V, namespace, "quantumjobs", "c")
    wait_for(lambda: _usage(custom, namespace, "counted") == (1, 1.0), 30,
             what="jobsDecided 1, quantumShare 1.0 after the classical job is deleted")
