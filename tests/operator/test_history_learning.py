"""The operator's job history and learning (issue 20, k8s/history.py) in a real cluster: the
operator restarted with ``$QBACKBONE_HISTORY`` records every finished job (fragment pod
times included) in the SQLite file; a policy with learning enabled shows its learned
adjustments in its status and later decisions name the learned values they used; the decision
ConfigMap keeps them, so an operator restarted after the history was reset re-derives the
same decision; with learning off decisions are nominal; an unwritable history path is a
warning, never a failed job."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from qbackbone.api.policy import LearningOptions
from qbackbone.core.history import HistoryStore, JobRecord
from qbackbone.core.learning import LearnedModel, learn
from qbackbone.dev.waiting import wait_for
from tests.operator.conftest import OperatorProcess
from tests.operator.kit import G, V, condition, create, get_job, policy, quantum_job, wait_job

pytestmark = pytest.mark.cluster

BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0], q[1];\n'
LEARNING = {"enabled": True, "minSamples": 2}


def _restart(operator: OperatorProcess) -> int:
    """Restart the operator with the current environment; the log offset it starts at."""
    operator.stop()
    offset = operator.log.stat().st_size if operator.log.exists() else 0
    operator.start()
    return offset


@pytest.fixture
def history_path(operator: OperatorProcess, tmp_path: Path,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The operator restarted with a history file of this test's own; afterwards restarted
    with the session's environment again."""
    path = tmp_path / "history" / "history.sqlite3"
    monkeypatch.setenv("QBACKBONE_HISTORY", str(path))
    _restart(operator)
    try:
        yield path
    finally:
        monkeypatch.undo()
        _restart(operator)


def _job(name: str, policy_name: str, shots: int = 2000) -> dict[str, Any]:
    return quantum_job(name, BELL, ["ZZ", "XX"], shots=shots, execution={"mode": "SingleQPU"},
                       policyRef={"name": policy_name})


def _run(api: client.ApiClient, namespace: str, name: str, policy_name: str) -> dict[str, Any]:
    create(api, namespace, _job(name, policy_name))
    job = wait_job(api, namespace, name)
    assert job["status"]["phase"] == "Succeeded", condition(job, "Failed")
    return job


def _recorded(path: Path, namespace: str, n: int) -> dict[str, JobRecord] | None:
    """The namespace's records by job name, once there are ``n`` of them."""
    with HistoryStore(path) as store:
        found = {r.name: r for r in store.recent(namespace=namespace)}
    return found if len(found) >= n else None


def _learned_rules(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in job["status"]["decision"]["rules"] if r["name"].startswith("learned")]


def _policy_status(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        G, V, namespace, "invocationpolicies", name)
    return found.get("status") or {}


def _set_learning(api: client.ApiClient, namespace: str, name: str, enabled: bool) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        G, V, namespace, "invocationpolicies", name,
        {"spec": {"learning": {**LEARNING, "enabled": enabled}}})


def test_jobs_are_recorded_learned_from_and_decisions_keep_what_they_used(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...],
        operator: OperatorProcess, core: client.CoreV1Api, history_path: Path) -> None:
    create(api, namespace, policy("learns", learning=LEARNING))
    first = [_run(api, namespace, f"teach-{i}", "learns") for i in range(3)]
    assert all(not _learned_rules(j) for j in first[:1])  # nothing to learn from yet
    for job in first:  # the operator's finish path writes the energy estimate
        assert job["status"]["result"]["energyJoules"] > 0

    # Recorded: every job, with its fragments' measured pod times (just after the status).
    records = wait_for(partial(_recorded, history_path, namespace, 3), 30,
                       what="3 jobs in the history")
    assert set(records) == {"teach-0", "teach-1", "teach-2"}
    for name in ("teach-0", "teach-1", "teach-2"):
        r = records[name]
        assert (r.policy, r.phase, r.path) == ("learns", "Succeeded", "SingleQPU")
        assert r.fragments and all(f.qpu in fleet for f in r.fragments)
        assert all(f.actual_seconds is not None and f.actual_wait_seconds is not None
                   for f in r.fragments), r.fragments
        assert r.energy_joules is not None and r.energy_joules > 0

    # The policy's status shows what it learned from these jobs (a QPU with at least
    # minSamples fragments): the adjustments learn() finds in the same records.
    want = learn(list(records.values()), LearningOptions.model_validate(LEARNING),
                 time.time()).adjustments()
    assert want, records

    def adjustments() -> dict[str, float] | None:
        found = _policy_status(api, namespace, "learns").get("learnedAdjustments") or {}
        return found if found == pytest.approx(want) else None

    shown = wait_for(adjustments, 30, what=f"learnedAdjustments {want} in the policy status")
    assert {key.split("/")[0] for key in shown} <= set(fleet)
    assert {key.split("/")[1] for key in shown} <= {"learnedShotTimeFactor",
                                                     "learnedSetupTimeFactor"}

    # A later decision names the learned values it used, with their provenance.
    later = _run(api, namespace, "taught", "learns")
    rules = _learned_rules(later)
    assert rules, later["status"]["decision"]["rules"]
    for rule in rules:
        assert rule["passed"] is True and rule["qpu"] in fleet
        assert "from " in rule["threshold"] and "job(s)" in rule["threshold"], rule
        assert shown[f"{rule['qpu']}/{rule['name']}"] == pytest.approx(rule["value"]), rule
    # The decision record keeps the model the decision used.
    decision = core.read_namespaced_config_map("taught-decision", namespace).data
    recorded = LearnedModel.from_data(json.loads(decision["learned.json"])).adjustments()
    assert {f"{r['qpu']}/{r['name']}": r["value"] for r in rules} == recorded

    # Learning off, the same history: nominal rules only, and no adjustments shown.
    _set_learning(api, namespace, "learns", False)
    nominal = _run(api, namespace, "nominal", "learns")
    assert _learned_rules(nominal) == []
    assert json.loads(core.read_namespaced_config_map(
        "nominal-decision", namespace).data["learned.json"]) is None
    wait_for(lambda: _policy_status(api, namespace, "learns").get("learnedAdjustments") in
             (None, {}), 30, what="no learnedAdjustments with learning off")

    # On again; the operator is killed once the decision is taken, the history is reset
    # while it is down: the new operator re-derives the recorded decision, learned values
    # and all, not a nominal one from the emptied history.
    _set_learning(api, namespace, "learns", True)
    create(api, namespace, _job("resumed", "learns", shots=200_000))

    def decided() -> dict[str, Any] | None:
        status = get_job(api, namespace, "resumed").get("status") or {}
        return status if status.get("decision") and status.get("phase") in (
            "Queued", "Running") else None

    before = wait_for(decided, 60, interval=0.05, what="job decided, not finished")["decision"]
    operator.stop(signal.SIGKILL)
    with HistoryStore(history_path) as store:
        assert store.reset() >= 4  # the teaching jobs and "taught" at least
    operator.start()
    job = wait_job(api, namespace, "resumed")
    assert job["status"]["phase"] == "Succeeded", condition(job, "Failed")
    assert _learned_rules(job) and job["status"]["decision"]["rules"] == before["rules"]

    def resumed() -> bool:  # events are posted after the status write
        return any(e.reason == "Resumed" and e.involved_object.name == "resumed"
                   for e in core.list_namespaced_event(namespace).items)

    wait_for(resumed, 30, what="the Resumed event of the restarted operator")
    again = wait_for(partial(_recorded, history_path, namespace, 1), 30,
                     what="the resumed job in the emptied history")
    assert list(again) == ["resumed"]


@pytest.fixture
def unwritable_history(operator: OperatorProcess, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, int]]:
    """The operator restarted with a history path under a regular file (no directory can be
    made there, whoever runs it); yields the path and the log offset of this start."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the history's directory should be\n")
    path = blocker / "history.sqlite3"
    monkeypatch.setenv("QBACKBONE_HISTORY", str(path))
    offset = _restart(operator)
    try:
        yield path, offset
    finally:
        monkeypatch.undo()
        _restart(operator)


def test_an_unwritable_history_is_a_warning_and_jobs_still_succeed(
        api: client.ApiClient, namespace: str, fleet: tuple[str, ...],
        operator: OperatorProcess, unwritable_history: tuple[Path, int]) -> None:
    path, offset = unwritable_history
    create(api, namespace, policy("learns", learning=LEARNING))
    for name in ("still-0", "still-1"):
        job = _run(api, namespace, name, "learns")
        assert _learned_rules(job) == []  # nothing to learn from: nominal
    # The classical path's energy is its worker pod's seconds at 10 W (written after them).
    create(api, namespace, quantum_job("still-classical", BELL, ["ZZ", "XX"],
                                       execution={"mode": "Classical"}))
    classical = wait_job(api, namespace, "still-classical")
    assert classical["status"]["phase"] == "Succeeded", condition(classical, "Failed")
    seconds = classical["status"]["timings"]["executeSeconds"]
    assert seconds > 0
    assert classical["status"]["result"]["energyJoules"] == pytest.approx(10.0 * seconds,
                                                                          abs=1e-3)
    log = operator.log.read_bytes()[offset:].decode(errors="replace")
    assert "job history: cannot open" in log and str(path) in log, log[-3000:]
    assert not path.exists()
