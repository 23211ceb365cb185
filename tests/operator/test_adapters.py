"""The Kubernetes adapters without a cluster: names, manifests, merge patches, the decision
record round trip, the ConfigMap size limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from qbackbone.api.quantumjob import QuantumJobStatus
from qbackbone.core.circuits.serialize import circuits_from_b64, circuits_to_b64
from qbackbone.core.pipeline import plan_single_qpu
from qbackbone.k8s.builders import JobRef, WorkerConfig, build_classical_pod, build_fragment_pod
from qbackbone.k8s.codec import TooLarge, check_size
from qbackbone.k8s.decision import DecisionRecord
from qbackbone.k8s.names import fragment_name, job_labels
from qbackbone.k8s.status import failed_job_status, merge_patch
from tests.operator.kit import qpunode, quantum_job
from tests.operator.test_jobs import ENTANGLED, OBSERVABLES

REF = JobRef("job", "ns", "uid-1")


def test_names_are_deterministic_dns_labels() -> None:
    long = "j" * 80
    assert fragment_name("job", "qpu-a") == "job-frag-qpu-a"
    assert fragment_name(long, "qpu-a") == fragment_name(long, "qpu-a")
    assert len(fragment_name(long, "qpu-a")) <= 63
    assert fragment_name(long, "qpu-a") != fragment_name(long, "qpu-b")
    assert all(len(v) <= 63 for v in job_labels(long, "input", "q" * 70).values())


def test_fragment_pod_holds_its_qpu_and_classical_pod_none() -> None:
    worker = WorkerConfig(command=("/venv/bin/qbackbone",), env={"A": "1"})
    pod = build_fragment_pod(REF, "job-frag-qpu-a", "job-frag-qpu-a-in", "qpu-a", worker)
    container = pod["spec"]["containers"][0]
    assert container["resources"]["limits"] == {"qpu.qbackbone.io/qpu-a": "1"}
    assert container["command"] == ["/venv/bin/qbackbone", "worker", "--input",
                                    "job-frag-qpu-a-in"]
    owner = pod["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("QuantumJob", "uid-1", True)
    assert pod["spec"]["restartPolicy"] == "Never"
    classical = build_classical_pod(REF, "job-classical", "job-classical-in", worker)
    assert "resources" not in classical["spec"]["containers"][0]


def test_merge_patch_removes_and_replaces() -> None:
    old = {"phase": "Running", "plan": {"a": 1, "b": 2}, "conditions": [1]}
    new = {"phase": "Succeeded", "plan": {"a": 1}, "conditions": [1, 2], "result": {"x": 1}}
    assert merge_patch(old, new) == {"phase": "Succeeded", "plan": {"b": None},
                                     "conditions": [1, 2], "result": {"x": 1}}
    assert merge_patch(new, new) == {}


def test_failed_status_has_reason_and_generation() -> None:
    status = failed_job_status("InvalidManifest", "bad", 3)
    assert isinstance(status, QuantumJobStatus) and status.phase == "Failed"
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert (failed.status, failed.reason, failed.observed_generation) == ("True",
                                                                          "InvalidManifest", 3)


def test_size_limit_is_reported() -> None:
    check_size({"a": "x" * 1000}, "small")
    with pytest.raises(TooLarge, match=r"the input of q.*MiB"):
        check_size({"circuits.qpy": "x" * (1024 * 1024)}, "the input of q")


def test_decision_record_round_trip_re_derives_the_same_fragments() -> None:
    body = quantum_job("job", ENTANGLED, OBSERVABLES, shots=1000)
    body["metadata"].update(namespace="ns", uid="uid-1", generation=1,
                            creationTimestamp="2026-01-01T00:00:00Z")
    fleet = [qpunode(n, "aer", "aer_simulator", qubits=8) for n in ("qpu-a", "qpu-b")]
    for node in fleet:
        node["metadata"]["generation"] = 1
    record = DecisionRecord(body, fleet, None, datetime.now(UTC), 5)
    first = plan_single_qpu(record.decide(record.start()))
    again = DecisionRecord.from_data(json.loads(json.dumps(record.to_data())))
    second = plan_single_qpu(again.decide(again.start()))
    assert [(w.qpu, w.shots) for w in first] == [(w.qpu, w.shots) for w in second]
    assert circuits_from_b64(circuits_to_b64(first[0].circuits)) == first[0].circuits
