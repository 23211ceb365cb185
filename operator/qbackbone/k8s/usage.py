"""How busy each QPU is and how each policy is used, from the objects in the cluster.

Pure functions over raw bodies (as kopf's event handlers in ``controllers/`` see them):
- a fragment pod (label ``qbackbone.io/role=fragment``) counts in its QPU's ``queueDepth``
  while it is Pending (scheduling-gated ones too) or Running, and its container's run time
  in ``utilisation`` (the busy share of the last ``UTILISATION_WINDOW`` seconds);
- a job whose ``status.decision`` has a path counts in its policy's ``jobsDecided``, and in
  ``quantumShare`` (the share of those decided for a QPU: SingleQPU or Distributed).
Only objects that exist count: deleting a job or its pods removes them from the figures.

The controllers feed ``QPULoad`` and ``PolicyUse`` from kopf event handlers (no finalizers,
unlike per-object timers) and a ``StatusLoop`` thread writes what changed every few seconds,
so utilisation also decays while nothing happens.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel

from qbackbone.api.policy import InvocationPolicyStatus
from qbackbone.api.qpunode import QPUNodeStatus
from qbackbone.k8s import POLICIES, QPUNODES
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.names import LABEL_QPU, LABEL_ROLE
from qbackbone.k8s.status import parse_status, write_status

log = logging.getLogger(__name__)

UTILISATION_WINDOW = 300.0  # seconds
QUANTUM_PATHS = frozenset({"SingleQPU", "Distributed"})
_ACTIVE_PHASES = frozenset({"Pending", "Running"})


class FragmentRun(NamedTuple):
    """One fragment pod, as far as its QPU's load is concerned."""

    qpu: str
    active: bool  # Pending or Running, not being deleted: waiting for or holding the QPU
    started: datetime | None  # when its container started, if it did
    finished: datetime | None  # when it ended, if it did


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def fragment_run(pod: Mapping[str, Any]) -> FragmentRun | None:
    """The fragment pod's QPU, whether it is queued or running, and its run interval;
    None for pods that are not fragments of a QPU."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    qpu = labels.get(LABEL_QPU)
    if labels.get(LABEL_ROLE) != "fragment" or not qpu:
        return None
    status = pod.get("status") or {}
    active = status.get("phase", "Pending") in _ACTIVE_PHASES and \
        not meta.get("deletionTimestamp")
    started = finished = None
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        if "running" in state:
            started = _time((state["running"] or {}).get("startedAt"))
        elif "terminated" in state:
            ended = state["terminated"] or {}
            started, finished = _time(ended.get("startedAt")), _time(ended.get("finishedAt"))
    return FragmentRun(str(qpu), active, started, finished)


def busy_share(runs: Iterable[FragmentRun], now: datetime,
               window: float = UTILISATION_WINDOW) -> float:
    """The share of ``[now - window, now]`` during which some fragment ran (overlaps once)."""
    start = now.timestamp() - window
    spans = sorted((max(r.started.timestamp(), start),
                    min((r.finished or now).timestamp(), now.timestamp()))
                   for r in runs if r.started is not None)
    busy, edge = 0.0, start
    for begin, end in spans:
        begin = max(begin, edge)
        if end > begin:
            busy, edge = busy + end - begin, end
    return min(1.0, busy / window)


def qpunode_usage(stored: Mapping[str, Any] | None, runs: Iterable[FragmentRun],
                  now: datetime | None = None) -> QPUNodeStatus | None:
    """The stored status with ``queueDepth`` and ``utilisation`` from ``runs``; None while
    the QPUNode controller has not written a status yet (it owns the conditions)."""
    old = parse_status(QPUNodeStatus, stored)
    if old is None or old.observed_generation is None:
        return None
    runs = list(runs)
    now = now or datetime.now(UTC)
    return old.model_copy(update={"queue_depth": sum(1 for r in runs if r.active),
                                  "utilisation": round(busy_share(runs, now), 3)})


def job_decision(job: Mapping[str, Any]) -> tuple[str, str] | None:
    """(policy name, path) of a decided job; None before the decision or for a refusal."""
    decision = (job.get("status") or {}).get("decision") or {}
    policy, path = decision.get("policy"), decision.get("path")
    if not policy or not path:
        return None
    return str(policy), str(path)


def policy_usage(stored: Mapping[str, Any] | None, paths: Iterable[str],
                 learned: Mapping[str, float] | None = None) -> InvocationPolicyStatus | None:
    """The stored status with ``jobsDecided`` and ``quantumShare`` from the decided paths of
    the policy's jobs (and ``learnedAdjustments`` when given); None while the policy
    controller has not written a status yet."""
    old = parse_status(InvocationPolicyStatus, stored)
    if old is None or old.observed_generation is None:
        return None
    paths = list(paths)
    quantum = sum(1 for p in paths if p in QUANTUM_PATHS)
    share = round(quantum / len(paths), 4) if paths else 0.0
    update: dict[str, Any] = {"jobs_decided": len(paths), "quantum_share": share}
    if learned is not None:
        update["learned_adjustments"] = dict(learned)
    return old.model_copy(update=update)



class StatusWrite(NamedTuple):
    """A status to write: kind (plural), namespace, name, the stored status, the new one."""

    plural: str
    namespace: str | None
    name: str
    stored: Mapping[str, Any] | None
    new: BaseModel


class QPULoad:
    """The fragment pods and QPUNode statuses seen so far (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, FragmentRun] = {}  # by pod uid
        self._nodes: dict[str, Mapping[str, Any] | None] = {}  # stored status by name

    def see_pod(self, uid: str, pod: Mapping[str, Any] | None) -> None:
        """A pod event (None: deleted)."""
        run = None if pod is None else fragment_run(pod)
        with self._lock:
            if run is None:
                self._runs.pop(uid, None)
            else:
                self._runs[uid] = run

    def see_qpunode(self, name: str, body: Mapping[str, Any] | None) -> None:
        """A QPUNode event (None: deleted)."""
        with self._lock:
            if body is None:
                self._nodes.pop(name, None)
            else:
                self._nodes[name] = body.get("status")

    def writes(self, now: datetime | None = None) -> list[StatusWrite]:
        """New statuses of the QPUNodes whose queue depth or utilisation changed."""
        now = now or datetime.now(UTC)
        with self._lock:
            runs, nodes = list(self._runs.values()), dict(self._nodes)
        out = []
        for name, stored in nodes.items():
            new = qpunode_usage(stored, [r for r in runs if r.qpu == name], now)
            if new is not None and _differs(stored, new, "queueDepth", "utilisation"):
                out.append(StatusWrite(QPUNODES, None, name, stored, new))
        return out


Learned = Callable[[str, Mapping[str, Any]], Mapping[str, float] | None]


class PolicyUse:
    """The decided jobs and policy statuses seen so far (thread-safe); with ``learned``
    (namespace, policy body -> its learned adjustments, k8s.history) also each policy's
    ``learnedAdjustments``."""

    def __init__(self, learned: Learned | None = None) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, tuple[str, str, str]] = {}  # uid -> (namespace, policy, path)
        self._policies: dict[tuple[str, str], Mapping[str, Any] | None] = {}
        self._bodies: dict[tuple[str, str], Mapping[str, Any]] = {}  # metadata and spec
        self.learned = learned

    def see_job(self, uid: str, namespace: str, job: Mapping[str, Any] | None) -> None:
        """A QuantumJob event (None: deleted)."""
        decided = None if job is None else job_decision(job)
        with self._lock:
            if decided is None:
                self._jobs.pop(uid, None)
            else:
                self._jobs[uid] = (namespace, *decided)

    def see_policy(self, namespace: str, name: str, body: Mapping[str, Any] | None) -> None:
        """An InvocationPolicy event (None: deleted)."""
        with self._lock:
            if body is None:
                self._policies.pop((namespace, name), None)
                self._bodies.pop((namespace, name), None)
            else:
                self._policies[(namespace, name)] = body.get("status")
                self._bodies[(namespace, name)] = {"metadata": {"name": name},
                                                   "spec": body.get("spec") or {}}

    def writes(self) -> list[StatusWrite]:
        """New statuses of the policies whose jobs decided, quantum share or learned
        adjustments changed."""
        with self._lock:
            jobs, policies = list(self._jobs.values()), dict(self._policies)
            bodies = dict(self._bodies)
        out = []
        for (namespace, name), stored in policies.items():
            paths = [path for ns, policy, path in jobs if (ns, policy) == (namespace, name)]
            body = bodies.get((namespace, name))
            learned = (self.learned(namespace, body)
                       if self.learned is not None and body is not None else None)
            new = policy_usage(stored, paths, learned)
            if new is not None and _differs(stored, new, "jobsDecided", "quantumShare",
                                            "learnedAdjustments"):
                out.append(StatusWrite(POLICIES, namespace, name, stored, new))
        return out


def _differs(stored: Mapping[str, Any] | None, new: BaseModel, *fields: str) -> bool:
    wire = new.model_dump(mode="json", by_alias=True)
    return any(wire.get(f) != (stored or {}).get(f) for f in fields)


class StatusLoop:
    """A daemon thread that writes ``source()``'s statuses every ``interval`` seconds, with
    the client ``kube()`` returns (None: not configured yet); errors are logged, never fatal."""

    def __init__(self, name: str, source: Callable[[], list[StatusWrite]],
                 kube: Callable[[], Kube | None], interval: float = 2.0) -> None:
        self.source, self.kube, self.interval = source, kube, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval + 5)

    def tick(self) -> int:
        """Write what changed now; how many statuses were written."""
        kube = self.kube()
        if kube is None:
            return 0
        written = 0
        for w in self.source():
            try:
                written += write_status(kube, w.plural, w.namespace, w.name, w.stored, w.new)
            except ApiException as exc:
                if exc.status != 404:  # a deleted object: its DELETED event follows
                    log.warning("status of %s %s: %s %s", w.plural, w.name, exc.status,
                                exc.reason)
        return written

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("usage status loop failed; continuing")
