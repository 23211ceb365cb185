"""The operator's side of the job history (k8s/history.py): opening from the environment,
recording with fragment pod times, pruning, learning cached per policy, the decision record
keeping what was learned, the policy status showing it."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from qbackbone.api.policy import LearningOptions
from qbackbone.core.history import HistoryStore, Retention
from qbackbone.core.learning.model import (
    ClassOutcomes,
    Learned,
    LearnedModel,
    QPULearning,
    learn,
)
from qbackbone.k8s import history as operator_history
from qbackbone.k8s.decision import DecisionRecord
from qbackbone.k8s.history import (
    OperatorHistory,
    fragment_times,
    learning_options,
    pod_times,
    retention_from_env,
)
from qbackbone.k8s.names import LABEL_ATTEMPT, LABEL_QPU, LABEL_ROLE, LABEL_SUBCIRCUIT
from qbackbone.k8s.usage import PolicyUse, policy_usage
from tests.history.builders import fragment, record
from tests.history.test_collect import finished, qpu

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def pod(subcircuit: str, qpu_name: str, created: float, started: float, ended: float,
        phase: str = "Succeeded", attempt: int = 0) -> client.V1Pod:
    """A fragment pod as the API returns it (times in seconds after T0)."""
    at = [T0 + timedelta(seconds=s) for s in (created, started, ended)]
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=f"{subcircuit}-{qpu_name}-{attempt}",
                                     creation_timestamp=at[0],
                                     labels={LABEL_ROLE: "fragment", LABEL_QPU: qpu_name,
                                             LABEL_SUBCIRCUIT: subcircuit,
                                             LABEL_ATTEMPT: str(attempt)}),
        status=client.V1PodStatus(phase=phase, container_statuses=[client.V1ContainerStatus(
            name="worker", image="i", image_id="", ready=False, restart_count=0,
            state=client.V1ContainerState(terminated=client.V1ContainerStateTerminated(
                exit_code=0, started_at=at[1], finished_at=at[2])))]))


def policy_body(name: str = "p", **learning: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"learning": learning}}


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_pod_times_are_creation_to_start_and_start_to_finish() -> None:
    assert pod_times(pod("main", "a", 0, 3, 10)) == (3.0, 7.0)
    running = pod("main", "a", 0, 3, 10, phase="Running")
    running.status.container_statuses[0].state = client.V1ContainerState(
        running=client.V1ContainerStateRunning(started_at=T0 + timedelta(seconds=2)))
    # Its result written, the worker is exiting: it ran until the job's terminal write.
    assert pod_times(running, T0 + timedelta(seconds=6)) == (2.0, 4.0)
    assert pod_times(running) == (2.0, None)
    waiting = pod("main", "a", 0, 3, 10, phase="Pending")
    waiting.status.container_statuses = None
    assert pod_times(waiting) == (None, None)


def test_fragment_times_match_plan_fragments_by_subcircuit_and_qpu() -> None:
    _, status = finished()  # plan: main-a on a, main-b on b
    pods = [pod("main", "a", 0, 2, 9, phase="Failed", attempt=0),  # retried: not this one
            pod("main", "a", 10, 11, 15, attempt=1),
            pod("main", "b", 0, 4, 5),
            pod("other", "a", 0, 1, 100)]  # no such plan fragment
    seconds, waits = fragment_times(status, pods)
    assert seconds == {"main-a": 4.0, "main-b": 1.0}
    assert waits == {"main-a": 1.0, "main-b": 4.0}
    still = pod("main", "b", 0, 4, 5, phase="Running")
    still.status.container_statuses[0].state = client.V1ContainerState(
        running=client.V1ContainerStateRunning(started_at=T0 + timedelta(seconds=4)))
    seconds, waits = fragment_times(status, [pods[1], still], T0 + timedelta(seconds=7))
    assert seconds == {"main-a": 4.0, "main-b": 3.0}
    assert waits == {"main-a": 1.0, "main-b": 4.0}


def test_record_finished_stores_measured_times_and_prunes_every_n(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operator_history, "PRUNE_EVERY", 3)
    clock = Clock(T0.timestamp())
    store = HistoryStore(tmp_path / "h.sqlite3", Retention(max_age_seconds=100.0, max_jobs=50),
                         shared=True)
    history = OperatorHistory(store, clock)
    job, status = finished()
    fleet = {"a": qpu("a"), "b": qpu("b")}
    assert history.record_finished(job, status, fleet, {"main-a": 4.0}, {"main-a": 1.5})
    (stored,) = store.recent()
    by_qpu = {f.qpu: f for f in stored.fragments}
    assert (by_qpu["a"].actual_seconds, by_qpu["a"].actual_wait_seconds) == (4.0, 1.5)
    assert by_qpu["b"].actual_seconds is None  # no pod time: unknown, not guessed
    assert stored.finished_at == T0.timestamp()
    clock.now += 1_000.0  # the first record is now older than maxAge
    assert history.record_finished(job, status, fleet, {}, {})
    assert store.count() == 2  # no prune yet (2 appends)
    # The same job at the same time is stored once; the 3rd append prunes the old record.
    assert history.record_finished(job, status, fleet, {}, {}) is False
    assert [r.finished_at for r in store.recent()] == [T0.timestamp() + 1_000.0]


def test_a_store_that_cannot_be_opened_or_written_is_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert not OperatorHistory.from_env({}).enabled  # unset: no history, quietly
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with caplog.at_level("WARNING", logger="qbackbone.k8s.history"):
        history = OperatorHistory.from_env(
            {"QBACKBONE_HISTORY": str(blocker / "history.sqlite3")})
    assert not history.enabled
    assert "cannot open" in caplog.text and str(blocker) in caplog.text
    job, status = finished()
    assert history.record_finished(job, status, {}, None, None) is False
    assert history.learned_for(policy_body(enabled=True), "ns") is None
    # Opened, then the file goes read-only underneath: the write fails, the call does not.
    path = tmp_path / "ro.sqlite3"
    writable = OperatorHistory.from_env({"QBACKBONE_HISTORY": str(path),
                                         "QBACKBONE_HISTORY_MAX_JOBS": "7"})
    assert writable.enabled and writable.store is not None
    assert writable.store.retention.max_jobs == 7
    writable.store._db.close()  # the same file, opened read-only (SQLITE_READONLY on write)
    writable.store._db = sqlite3.connect(f"file:{path}?mode=ro", uri=True,
                                         check_same_thread=False)
    caplog.clear()
    with caplog.at_level("WARNING", logger="qbackbone.k8s.history"):
        assert writable.record_finished(job, status, {}, None, None) is False
    assert "cannot record ns/j" in caplog.text


def test_retention_from_env() -> None:
    assert retention_from_env({}) == Retention()
    r = retention_from_env({"QBACKBONE_HISTORY_MAX_AGE": "12h",
                            "QBACKBONE_HISTORY_MAX_JOBS": "42"})
    assert (r.max_age_seconds, r.max_jobs) == (43_200.0, 42)


def test_learned_for_only_when_enabled_per_namespace_and_cached_by_revision(
        tmp_path: Path) -> None:
    clock = Clock(10_000.0)
    store = HistoryStore(tmp_path / "h.sqlite3", shared=True)
    history = OperatorHistory(store, clock)
    slow = [fragment("a", actual=6.0) for _ in range(1)]  # nominal 2 s, took 6 s
    for i in range(3):
        store.append(record(name=f"j{i}", at=9_000.0 + i, fragments=slow, policy="p"))
    other = record(name="elsewhere", at=9_500.0, fragments=[fragment("a", actual=0.5)],
                   policy="p")
    store.append(other.__class__(**{**other.to_dict(), "namespace": "other",
                                    "fragments": other.fragments}))
    assert learning_options(None) is None
    assert learning_options(policy_body()) is None  # learning off
    assert history.learned_for(policy_body(), "ns") is None
    assert history.learned_for(None, "ns") is None  # the built-in policy does not learn
    model = history.learned_for(policy_body(enabled=True, minSamples=2), "ns")
    assert model is not None and model.jobs == 3  # only namespace ns's jobs of policy p
    assert model.adjustments() == {"a/learnedShotTimeFactor": 3.0,
                                   "a/learnedSetupTimeFactor": 3.0}
    assert history.learned_for(policy_body(enabled=True, minSamples=2), "ns") is model  # cached
    assert history.adjustments("ns", policy_body(enabled=True, minSamples=2)) == \
        model.adjustments()
    assert history.adjustments("ns", policy_body()) == {}
    store.append(record(name="j9", at=9_999.0, fragments=slow, policy="p"))
    again = history.learned_for(policy_body(enabled=True, minSamples=2), "ns")
    assert again is not model and again is not None and again.jobs == 4


def test_the_store_serves_the_handler_threads(tmp_path: Path) -> None:
    """kopf runs handlers in worker threads: the shared connection is used from them."""
    history = OperatorHistory(HistoryStore(tmp_path / "h.sqlite3", shared=True))
    job, status = finished()
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            mine = job.model_copy(update={"metadata": job.metadata.model_copy(
                update={"name": f"j{i}"})})
            # record_finished swallows errors (a warning): count what landed below
            history.record_finished(mine, status, {"a": qpu("a")}, None, None)
            history.learned_for(policy_body(enabled=True), "ns")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert history.store is not None and history.store.count() == 8
    history.close()
    assert not history.enabled


def model() -> LearnedModel:
    return LearnedModel(
        LearningOptions(enabled=True, min_samples=2, half_life=3600.0),
        {"a": QPULearning(Learned("learnedShotTimeFactor", 1.5, 3, 1.5, "ratio"), None,
                          Learned("learnedSuccessScale", 4.0, 5, 7.2, "weighted median"))},
        {"sampling/q<=4/d<=10": ClassOutcomes(0.5, 3, 0.9, 4, 2.0, 1.0, None, 0.1)}, 7)


def test_learned_model_round_trips_through_json() -> None:
    m = model()
    assert LearnedModel.from_data(json.loads(json.dumps(m.to_data()))) == m
    real = learn([record(name=f"j{i}", at=1_000.0 + i) for i in range(6)],
                 LearningOptions(enabled=True), 2_000.0)
    assert LearnedModel.from_data(json.loads(json.dumps(real.to_data()))) == real


def test_decision_record_keeps_the_learned_model_and_reads_old_records() -> None:
    base = DecisionRecord(job={"metadata": {"name": "j"}}, fleet=[], policy=None, now=T0,
                          seed=3)
    data = base.to_data()
    assert json.loads(data["learned.json"]) is None
    assert DecisionRecord.from_data(data) == base
    old = {k: v for k, v in data.items() if k != "learned.json"}  # written before issue 20
    assert DecisionRecord.from_data(old) == base
    learned = DecisionRecord(job=base.job, fleet=[], policy=None, now=T0, seed=3,
                             learned=model())
    again = DecisionRecord.from_data(learned.to_data())
    assert again == learned and again.learned == model()
    assert again.to_data() == learned.to_data()


def test_policy_status_shows_learned_adjustments_only_when_given() -> None:
    stored = {"observedGeneration": 1, "jobsDecided": 0, "quantumShare": 0.0,
              "learnedAdjustments": {"a/learnedShotTimeFactor": 2.0}}
    on = policy_usage(stored, ["SingleQPU"], {"a/learnedShotTimeFactor": 1.5})
    assert on is not None and on.learned_adjustments == {"a/learnedShotTimeFactor": 1.5}
    off = policy_usage(stored, ["SingleQPU"], {})
    assert off is not None and off.learned_adjustments == {}
    kept = policy_usage(stored, ["SingleQPU"])  # no history: left as it was
    assert kept is not None and kept.learned_adjustments == {"a/learnedShotTimeFactor": 2.0}
    seen: list[tuple[str, dict[str, Any]]] = []

    def learned(namespace: str, body: Any) -> dict[str, float]:
        seen.append((namespace, dict(body)))
        return {"a/learnedSetupTimeFactor": 2.0} if body["spec"].get("learning") else {}

    use = PolicyUse(learned)
    use.see_policy("ns", "learns", {"spec": {"learning": {"enabled": True}},
                                    "status": {"observedGeneration": 1}})
    use.see_policy("ns", "static", {"spec": {}, "status": {
        "observedGeneration": 1, "learnedAdjustments": {"a/x": 1.0}}})
    writes = {w.name: w.new.model_dump(by_alias=True) for w in use.writes()}
    assert writes["learns"]["learnedAdjustments"] == {"a/learnedSetupTimeFactor": 2.0}
    assert writes["static"]["learnedAdjustments"] == {}  # learning off shows none
    assert ("ns", {"metadata": {"name": "learns"},
                   "spec": {"learning": {"enabled": True}}}) in seen


def test_the_operator_default_is_no_history() -> None:
    env = {k: v for k, v in os.environ.items() if k != "QBACKBONE_HISTORY"}
    assert OperatorHistory.from_env(env).store is None


def test_job_finished_records_on_a_thread_and_an_unreachable_api_is_a_warning(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The reconciler hands the job over and goes on; the recorder thread's failure to read
    the decision record (no API server answers here) is a warning, not an exception."""
    from qbackbone.dev.procs import free_port
    from qbackbone.k8s.kube import Kube

    config = client.Configuration(host=f"http://127.0.0.1:{free_port()}")
    config.retries = 0
    kube = Kube(client.ApiClient(config))
    history = OperatorHistory(HistoryStore(tmp_path / "h.sqlite3", shared=True))
    _, status = finished()
    with caplog.at_level("WARNING", logger="qbackbone.k8s.history"):
        history.job_finished(kube, "ns", "j", status)
        assert history.flush(30)
    assert "cannot record ns/j" in caplog.text
    assert history.store is not None and history.store.count() == 0
    history.close()
    assert not history.enabled and history._recorder is None
