"""Live network state as a QIP input: a job whose links run hot is decided with less of its
deadline (and says so in a rule); missing, stale or malformed state is ignored with a rule;
`qbackbone run` and the operator read the policy's ConfigMap into the decision."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from qbackbone.api.policy import InvocationPolicy, NetworkState
from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.pipeline.decide import decide_job
from qbackbone.core.pipeline.jobrun import start_job
from qbackbone.core.qip.network import LINKS_ANNOTATION, MAX_LINKS, network_urgency
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.k8s.problem import inline_network_state
from tests.conftest import make_qpu

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 8, 10, 0, tzinfo=UTC)
BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0],q[1];\n'


def document(links: dict[str, Any], age: float = 30.0) -> str:
    return json.dumps({"observedAt": (NOW - timedelta(seconds=age)).isoformat(),
                       "links": links})


def state(text: str | None, **options: Any) -> NetworkState:
    if text is not None and len(text) > 1_000_000:  # read from a ConfigMap: not validated
        return NetworkState.model_validate({"document": "{}"}).model_copy(
            update={"document": text})
    return NetworkState.model_validate({"document": text, **options} if text is not None
                                       else {"configMapRef": {"name": "net", "key": "s"}})


def test_a_hot_link_makes_the_job_urgent_whichever_way_it_is_named() -> None:
    urgency = network_urgency(state(document({"Chicago--Kansas City": 0.95, "a--b": 0.2})),
                              {LINKS_ANNOTATION: "kansas city--CHICAGO, a--b"}, NOW)
    assert urgency.factor == 0.5
    (rule,) = urgency.rules
    assert rule.name == "networkUrgent" and not rule.passed and rule.threshold == 0.9
    assert "Chicago--Kansas City at 0.95" in str(rule.value) and "30s" in str(rule.value)


def test_cool_links_change_nothing_but_say_so() -> None:
    urgency = network_urgency(state(document({"a--b": 0.5})), {LINKS_ANNOTATION: "a--b"}, NOW)
    assert urgency.factor == 1.0 and urgency.rules[0].passed
    assert network_urgency(state(document({"a--b": 0.5})), {}, NOW).rules == []
    assert network_urgency(None, {LINKS_ANNOTATION: "a--b"}, NOW).rules == []


@pytest.mark.parametrize(("text", "says"), [
    (None, "could not be read"),
    ("not json", "malformed"),
    (json.dumps({"links": {"a--b": 1.0}}), "malformed"),
    (json.dumps({"observedAt": "2026-12-08T09:59:00", "links": {"a--b": 1.0}}), "time zone"),
    (document({"a--b": -1}), "malformed"),
    (document({"a--b": math.nan}), "malformed"),
    (document({"a--b": True}), "malformed"),
    (document({"ab": 1.0}), "malformed"),
    (document({f"{i}--x": 0 for i in range(MAX_LINKS + 1)}), "at most"),
    (document({"a--b": 1.0}, age=3600), "older than"),
    (document({"a--b": 1.0}) + " " * 1_000_000, "at most 1000000"),
    (document({"x--y": 1.0}), "none of the job's"),
])
def test_unusable_state_is_ignored_with_a_rule(text: str | None, says: str) -> None:
    urgency = network_urgency(state(text), {LINKS_ANNOTATION: "a--b"}, NOW)
    assert urgency.factor == 1.0
    (rule,) = urgency.rules
    assert rule.passed and str(rule.value).startswith("ignored") and says in str(rule.value)


def bell_job(annotated: bool) -> QuantumJob:
    meta: dict[str, Any] = {"name": "bell"}
    if annotated:
        meta["annotations"] = {LINKS_ANNOTATION: "a--b"}
    return QuantumJob.model_validate({"metadata": meta, "spec": {
        "circuit": {"qasm": BELL, "sampling": True}, "shots": 4000, "deadline": "6s"}})


def test_an_urgent_job_is_decided_with_the_shorter_deadline() -> None:
    # 4000 shots at 1 ms on the only QPU: about 4.1 s; the deadline (6 s) fits it, half of
    # it does not, and the classical fallback of a 2-qubit circuit does
    fleet = build_fleet([make_qpu("slow", qubits=4, shotTime="1ms")])
    policy = InvocationPolicy.model_validate({"metadata": {"name": "default"}, "spec": {
        "networkState": {"document": document({"a--b": 0.97})}}})
    paths = {}
    for annotated in (False, True):
        decided = decide_job(start_job(bell_job(annotated), now=NOW), fleet,
                             {"default": policy})
        assert decided.run.status.decision is not None
        paths[annotated] = (decided.qip.path, [r.name for r in decided.run.status.decision.rules
                                               if r.name == "networkUrgent"])
        assert decided.reduced.deadline_remaining == pytest.approx(6.0, abs=0.5)  # unchanged
    assert paths == {False: ("SingleQPU", []), True: ("Classical", ["networkUrgent"])}


def test_the_operator_records_the_state_as_read() -> None:
    policy = {"metadata": {"name": "p"}, "spec": {"networkState": {
        "configMapRef": {"name": "net", "key": "state.json"}}}}
    read = inline_network_state(policy, lambda name, key: f"{name}/{key}")
    assert read is not None and read["spec"]["networkState"]["document"] == "net/state.json"
    assert "document" not in policy["spec"]["networkState"]  # the input is not changed

    def missing(name: str, key: str) -> str:
        raise KeyError(name)

    gone = inline_network_state(policy, missing)
    assert gone is not None and "document" not in gone["spec"]["networkState"]
    assert inline_network_state(None, missing) is None


def test_qbackbone_run_reads_the_state_from_a_configmap_among_the_manifests(
        tmp_path: Path) -> None:
    docs = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "net"},
         "data": {"state.json": json.dumps({"observedAt": datetime.now(UTC).isoformat(),
                                            "links": {"a--b": 0.99}})}},
        {"apiVersion": "qbackbone.io/v1alpha1", "kind": "InvocationPolicy",
         "metadata": {"name": "default"},
         "spec": {"networkState": {"configMapRef": {"name": "net", "key": "state.json"}}}},
        {"apiVersion": "qbackbone.io/v1alpha1", "kind": "QuantumJob",
         "metadata": {"name": "bell", "annotations": {LINKS_ANNOTATION: "b--a"}},
         "spec": {"circuit": {"qasm": BELL, "sampling": True}, "shots": 200}},
    ]
    path = tmp_path / "jobs.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    proc = subprocess.run([sys.executable, "-m", "qbackbone.cli.main", "run", str(path), "-o",
                           "json", "--no-history", "-q"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)["status"]
    rule = next(r for r in status["decision"]["rules"] if r["name"] == "networkUrgent")
    assert rule["passed"] is False and "ConfigMap net/state.json" in rule["value"]
