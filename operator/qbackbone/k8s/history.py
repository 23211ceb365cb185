"""The operator's job history (docs/learning-energy.md): every finished job recorded in the
SQLite store ``$QBACKBONE_HISTORY`` names (the chart's persistent volume), and what each
policy learned from it handed to decisions and to the policy's status.

The store is optional: without ``$QBACKBONE_HISTORY`` nothing is recorded or learned and
the operator works as before. A store that cannot be opened or written is a logged warning,
never a failed job. One operator writes the file (the chart runs one replica, kopf
standalone); the calls of the handler threads are serialised here, and finished jobs are
recorded by a thread of their own, so a reconcile never waits for the file.

Measured fragment times come from the fragment pods: pod creation to container start is
the queue wait, container start to finish the run time (Kubernetes keeps these to the
second). The job finishes as soon as the last result is written, often before that worker's
container has exited: a container still running then is taken to have run until the terminal
status write (the result that ended the job was written just before it).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from qbackbone.api.common import parse_duration
from qbackbone.api.manifests import ManifestError
from qbackbone.api.policy import LearningOptions
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus
from qbackbone.core.history import HistoryStore, Retention, record_from_status
from qbackbone.core.history.store import DEFAULT_MAX_AGE_SECONDS, DEFAULT_MAX_JOBS, ENV_PATH
from qbackbone.core.learning import LearnedModel, learn
from qbackbone.core.qpus.descriptor import QPUDescriptor
from qbackbone.k8s import GROUP, JOBS, VERSION
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.names import (
    LABEL_ATTEMPT,
    LABEL_JOB,
    LABEL_QPU,
    LABEL_ROLE,
    LABEL_SUBCIRCUIT,
    decision_name,
    label_value,
)
from qbackbone.k8s.objects import job_from_body, qpunodes

log = logging.getLogger(__name__)

ENV_MAX_AGE = "QBACKBONE_HISTORY_MAX_AGE"  # e.g. 30d (default), 12h
ENV_MAX_JOBS = "QBACKBONE_HISTORY_MAX_JOBS"  # default 10000
PRUNE_EVERY = 100  # appends between two prunes ...
PRUNE_SECONDS = 3600.0  # ... or at the first append after this long
LEARNED_SECONDS = 60.0  # a learned model is recomputed after this long even without new jobs
Times = dict[str, float]  # seconds by plan fragment name


@dataclass(frozen=True)
class Finished:
    """A job whose terminal status the reconciler wrote at ``at`` (Unix seconds)."""

    kube: Kube
    namespace: str
    name: str
    status: QuantumJobStatus
    at: float


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max((end - start).total_seconds(), 0.0)


def pod_times(pod: Any, now: datetime | None = None) -> tuple[float | None, float | None]:
    """(queue wait, run seconds) of a fragment pod (a V1Pod): creation to container start,
    container start to finish (or to ``now`` while the container still runs, when given);
    None where the pod does not say."""
    created = getattr(pod.metadata, "creation_timestamp", None)
    for container in (getattr(pod.status, "container_statuses", None) or []):
        state = container.state
        ended = getattr(state, "terminated", None) if state else None
        if ended is not None:
            return _seconds(created, ended.started_at), _seconds(ended.started_at,
                                                                 ended.finished_at)
        running = getattr(state, "running", None) if state else None
        if running is not None and running.started_at is not None:
            return _seconds(created, running.started_at), _seconds(running.started_at, now)
    return None, None


def fragment_times(status: QuantumJobStatus, pods: Iterable[Any],
                   now: datetime | None = None) -> tuple[Times, Times]:
    """Measured (run seconds, queue waits) by plan fragment name: each fragment of
    ``status.plan`` matched to the Succeeded (or, its result written, still Running) fragment
    pod of its subcircuit and QPU, the last attempt when a pod was retried; ``now`` ends a
    container still running (``pod_times``)."""
    best: dict[tuple[str, str], tuple[int, Any]] = {}
    for pod in pods:
        labels = pod.metadata.labels or {}
        phase = getattr(pod.status, "phase", "")
        if labels.get(LABEL_ROLE) != "fragment" or phase not in ("Succeeded", "Running"):
            continue
        key = (labels.get(LABEL_SUBCIRCUIT, ""), labels.get(LABEL_QPU, ""))
        attempt = int(labels.get(LABEL_ATTEMPT, "0") or 0)
        if key not in best or attempt > best[key][0]:
            best[key] = (attempt, pod)
    seconds: Times = {}
    waits: Times = {}
    for fragment in status.plan.fragments if status.plan is not None else []:
        found = best.get((label_value(fragment.subcircuit), fragment.qpu[:63]))
        if found is None:
            continue
        wait, run = pod_times(found[1], now)
        if run is not None:
            seconds[fragment.name] = run
        if wait is not None:
            waits[fragment.name] = wait
    return seconds, waits


def retention_from_env(env: Mapping[str, str]) -> Retention:
    """``$QBACKBONE_HISTORY_MAX_AGE`` (a duration) and ``$QBACKBONE_HISTORY_MAX_JOBS``."""
    age = env.get(ENV_MAX_AGE)
    jobs = env.get(ENV_MAX_JOBS)
    return Retention(parse_duration(age) if age else DEFAULT_MAX_AGE_SECONDS,
                     int(jobs) if jobs else DEFAULT_MAX_JOBS)


def learning_options(policy: Mapping[str, Any] | None) -> LearningOptions | None:
    """The policy body's ``spec.learning`` when it is enabled (None: the built-in policy, or
    learning off)."""
    if policy is None:
        return None
    options = LearningOptions.model_validate((policy.get("spec") or {}).get("learning") or {})
    return options if options.enabled else None


class OperatorHistory:
    """The store (None: no history) with the operator's recording, pruning and learning."""

    def __init__(self, store: HistoryStore | None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._appends = 0
        self._pruned_at = clock()
        self._learned: dict[tuple[str, str, str], tuple[tuple[int, int], float, LearnedModel]] = {}
        self._pending: queue.Queue[Finished | None] = queue.Queue()
        self._recorder: threading.Thread | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorHistory:
        """The history ``$QBACKBONE_HISTORY`` names; without it, or when the file cannot be
        opened (logged), one that records and learns nothing."""
        env = os.environ if env is None else env
        path = env.get(ENV_PATH)
        if not path:
            log.info("job history: %s is not set; jobs are not recorded, nothing is learned",
                     ENV_PATH)
            return cls(None)
        try:
            store = HistoryStore(path, retention_from_env(env), shared=True)
        except Exception as err:  # an unwritable volume must not stop the operator
            log.warning("job history: cannot open %s (%s); jobs are not recorded and "
                        "decisions use nominal values", path, err)
            return cls(None)
        log.info("job history: %s (%d job(s), keeping %gs and at most %d)", path,
                 store.count(), store.retention.max_age_seconds, store.retention.max_jobs)
        return cls(store)

    @property
    def enabled(self) -> bool:
        """Whether there is a store."""
        return self.store is not None

    def close(self) -> None:
        """Record what is pending, stop the recorder thread and close the store."""
        if self._recorder is not None:
            self._pending.put(None)
            self._recorder.join(timeout=30)
            self._recorder = None
        with self._lock:
            if self.store is not None:
                self.store.close()
                self.store = None

    # -- recording -------------------------------------------------------------------------

    def record_finished(self, job: QuantumJob, status: QuantumJobStatus,
                        fleet: Mapping[str, QPUDescriptor], fragment_seconds: Times | None,
                        fragment_waits: Times | None, finished_at: float | None = None) -> bool:
        """Record a finished job (at ``finished_at``, Unix seconds; default now); True when
        stored. Prunes every ``PRUNE_EVERY`` appends or ``PRUNE_SECONDS``. Never raises: a
        failed write is a warning."""
        if self.store is None:
            return False
        try:
            at = self.clock() if finished_at is None else finished_at
            record = record_from_status(job, status, fleet, datetime.fromtimestamp(at, UTC),
                                        fragment_seconds=fragment_seconds,
                                        fragment_waits=fragment_waits)
            with self._lock:
                if self.store is None:
                    return False
                added = self.store.append(record)
                self._appends += 1
                now = self.clock()
                if self._appends >= PRUNE_EVERY or now - self._pruned_at >= PRUNE_SECONDS:
                    self.store.prune(now)
                    self._appends, self._pruned_at = 0, now
            return added
        except Exception as err:
            log.warning("job history: cannot record %s/%s (%s)", job.metadata.namespace,
                        job.metadata.name, err)
            return False

    def job_finished(self, kube: Kube, namespace: str, name: str,
                     status: QuantumJobStatus) -> None:
        """The reconciler wrote a terminal status: the job is recorded by a thread of its own
        (``record_job``), so the reconcile and the events it posts wait for nothing."""
        if self.store is None:
            return
        with self._lock:
            if self._recorder is None:
                self._recorder = threading.Thread(target=self._record_pending,
                                                  name="job-history", daemon=True)
                self._recorder.start()
        self._pending.put(Finished(kube, namespace, name, status.model_copy(deep=True),
                                   self.clock()))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every finished job handed over so far is recorded (tests)."""
        deadline = time.monotonic() + timeout
        while self._pending.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._pending.unfinished_tasks == 0

    def _record_pending(self) -> None:
        while True:
            item = self._pending.get()
            try:
                if item is None:
                    return
                self.record_job(item)
            finally:
                self._pending.task_done()

    def record_job(self, done: Finished) -> bool:
        """Record a finished job with the fleet it was decided on (its decision record) and
        its fragment pods' times. Never raises."""
        try:
            job, fleet = self._decided_as(done.kube, done.namespace, done.name)
            if job is None:
                return False
            pods = done.kube.pods(done.namespace, {LABEL_JOB: done.name[:63]}).values()
            seconds, waits = fragment_times(done.status, pods,
                                            datetime.fromtimestamp(done.at, UTC))
        except Exception as err:  # the API server, a record that does not parse
            log.warning("job history: cannot record %s/%s (%s)", done.namespace, done.name, err)
            return False
        return self.record_finished(job, done.status, fleet, seconds, waits, done.at)

    @staticmethod
    def _decided_as(kube: Kube, namespace: str, name: str
                    ) -> tuple[QuantumJob | None, dict[str, QPUDescriptor]]:
        from qbackbone.core.qpus.fleet import build_fleet

        data = kube.configmap(namespace, decision_name(name))
        if data is None:  # refused or failed before a decision was recorded
            try:
                body: Any = kube.custom.get_namespaced_custom_object(GROUP, VERSION,
                                                                     namespace, JOBS, name)
                return job_from_body(body), {}
            except (ApiException, ManifestError):  # gone, or a manifest no job parses from
                return None, {}
        fleet: dict[str, QPUDescriptor] = {}
        for node in qpunodes(json.loads(data["fleet.json"])):
            try:
                fleet.update({q.name: q.descriptor for q in build_fleet([node])})
            except Exception:  # e.g. a cloud QPU this process cannot build: no times for it
                continue
        return job_from_body(json.loads(data["job.json"])), fleet

    # -- learning --------------------------------------------------------------------------

    def learned_for(self, policy: Mapping[str, Any] | None,
                    namespace: str | None) -> LearnedModel | None:
        """What the policy (a body; None: the built-in one, which does not learn) learned
        from its namespace's jobs, when its learning is enabled; cached per policy until the
        store changes (or ``LEARNED_SECONDS`` pass). None on errors (logged): nominal."""
        if self.store is None or policy is None:
            return None
        try:
            options = learning_options(policy)
            if options is None:
                return None
            name = str(policy["metadata"]["name"])
            key = (namespace or "", name, options.model_dump_json())
            with self._lock:
                if self.store is None:
                    return None
                revision = self.store.revision
                now = self.clock()
                cached = self._learned.get(key)
                if cached is not None and cached[0] == revision and \
                        now - cached[1] < LEARNED_SECONDS:
                    return cached[2]
                limit = min(options.window * 20, self.store.retention.max_jobs)
                records = self.store.recent(limit, policy=name, namespace=namespace)
            model = learn(records, options, now)
            with self._lock:
                self._learned[key] = (revision, now, model)
            return model
        except Exception as err:
            log.warning("job history: cannot learn for policy %s (%s); nominal values",
                        (policy.get("metadata") or {}).get("name"), err)
            return None

    def adjustments(self, namespace: str, policy: Mapping[str, Any] | None) -> dict[str, float]:
        """The policy's ``status.learnedAdjustments``: empty unless it learns."""
        model = self.learned_for(policy, namespace)
        return {} if model is None else model.adjustments()
