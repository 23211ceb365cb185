"""The operator's Prometheus metrics, on a dedicated registry (docs/observability.md).

Counters and histograms count what the operator causes, where it causes it (a status write
that decides or finishes a job), at most once per job and event; gauges are derived at scrape
time from the operator's indexes of the objects it watches (``state.py``). Every entry point
swallows its own errors: metrics never fail a reconcile.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, ParamSpec, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from qbackbone.api.conditions import Reason
from qbackbone.api.quantumjob import QuantumJobStatus
from qbackbone.observability.state import JobCounts, JobKey, QPULoad, read_index
from qbackbone.observability.transitions import NO_PATH, decided, finished

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

PREFIX = "qbackbone"
PATHS = ("SingleQPU", "Distributed", "Classical")
# The QIP's possible answers (core/qip/engine.py), refusals included.
DECISIONS = (("SingleQPU", Reason.QUANTUM_SELECTED), ("Distributed", Reason.QUANTUM_SELECTED),
             ("Classical", Reason.CLASSICAL_SELECTED), (NO_PATH, Reason.NO_ELIGIBLE_QPU),
             (NO_PATH, Reason.DEADLINE_INFEASIBLE), (NO_PATH, Reason.CLASSICAL_INFEASIBLE))
# Reasons a job can fail with: the Reason members from InvalidManifest on (the enum lists the
# success-side reasons first). Pre-created so that rate() sees a job's first failure.
_ORDER = list(Reason)
FAILURE_REASONS = tuple(r.value for r in _ORDER[_ORDER.index(Reason.INVALID_MANIFEST):])
CONTROLLERS = ("quantumjob", "qpunode", "invocationpolicy")
ERROR_KINDS = ("api", "permanent", "internal")
DECISION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)
# Joules: an ideal simulator's job is about 1 J, a superconducting QPU's tens of kJ
# (core/energy/model.py).
ENERGY_BUCKETS = (1.0, 10.0, 100.0, 1e3, 1e4, 3e4, 1e5, 3e5, 1e6, 1e7)
DEDUPE_SIZE = 50_000  # (job uid, event) pairs remembered to count each event once

disable_created_metrics()  # no *_created series: they double the exposition for nothing


def never_raises(method: Callable[P, R]) -> Callable[P, R | None]:
    """Log (once per method at WARNING, then at DEBUG) instead of raising."""
    warned = threading.Event()

    @functools.wraps(method)
    def safe(*args: P.args, **kwargs: P.kwargs) -> R | None:
        try:
            return method(*args, **kwargs)
        except Exception:
            level = logging.DEBUG if warned.is_set() else logging.WARNING
            warned.set()
            log.log(level, "metrics: %s failed (ignored)", method.__name__, exc_info=True)
            return None
    return safe


class StateCollector(Collector):
    """Gauges read from the operator's indexes at scrape time."""

    def __init__(self) -> None:
        self.jobs: Mapping[JobKey, Collection[Any]] | None = None
        self.qpus: Mapping[str, Collection[QPULoad]] | None = None
        self._job_counts = JobCounts()

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        families = self._families()
        self._add_jobs(families[0])
        self._add_qpus(*families[1:])
        return families

    @never_raises
    def _add_jobs(self, jobs: GaugeMetricFamily) -> None:
        for (namespace, phase, path), count in self._job_counts.counts(self.jobs).items():
            jobs.add_metric([namespace, phase, path], count)

    @never_raises
    def _add_qpus(self, depth: GaugeMetricFamily, busy: GaugeMetricFamily,
                  ready: GaugeMetricFamily) -> None:
        for qpu, loads in sorted(read_index(self.qpus).items()):
            load = loads[-1] if loads else None
            if isinstance(load, QPULoad):
                depth.add_metric([qpu], load.queue_depth)
                busy.add_metric([qpu], load.utilisation)
                ready.add_metric([qpu], 1.0 if load.ready else 0.0)

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(f"{PREFIX}_jobs", "QuantumJobs the operator watches, by "
                              "namespace, phase and path (None: no path chosen)",
                              labels=["namespace", "phase", "path"]),
            GaugeMetricFamily(f"{PREFIX}_qpu_queue_depth", "Fragment pods of the QPU that are "
                              "Pending or Running (QPUNode status.queueDepth)", labels=["qpu"]),
            GaugeMetricFamily(f"{PREFIX}_qpu_utilisation_ratio", "Busy share of the QPU over "
                              "the QPUNode's window (status.utilisation)", labels=["qpu"]),
            GaugeMetricFamily(f"{PREFIX}_qpu_ready", "1 when the QPUNode is Ready, else 0",
                              labels=["qpu"]),
        ]


class OperatorMetrics:
    """The registry, the counters and histograms, and the views behind the gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.state = StateCollector()
        r = self.registry
        self.decisions = Counter(f"{PREFIX}_qip_decisions", "QIP decisions by chosen path "
                                 "(None: refused) and reason", ["path", "reason"], registry=r)
        self.deadlines = Counter(f"{PREFIX}_job_deadline", "Finished jobs with a deadline, by "
                                 "outcome (met: verified result in time)", ["outcome"],
                                 registry=r)
        self.failures = Counter(f"{PREFIX}_job_failures", "Jobs that ended Failed, by the "
                                "Failed condition's reason", ["reason"], registry=r)
        self.reconcile_errors = Counter(f"{PREFIX}_reconcile_errors", "Handler calls that "
                                        "raised, by controller and kind (api, permanent, "
                                        "internal)", ["controller", "kind"], registry=r)
        self.decision_seconds = Histogram(f"{PREFIX}_scheduler_decision_seconds", "Time to "
                                          "decide and plan a job (reduce, QIP, cut, schedule)",
                                          buckets=DECISION_BUCKETS, registry=r)
        self.plan_seconds = Histogram(f"{PREFIX}_joint_plan_seconds", "Time to plan the "
                                      "waiting jobs together (one plan serves every waiting "
                                      "job until it is made again)", buckets=DECISION_BUCKETS,
                                      registry=r)
        self.plan_jobs = Gauge(f"{PREFIX}_joint_plan_jobs", "Waiting jobs in the last joint "
                               "plan", registry=r)
        self.job_seconds = Histogram(f"{PREFIX}_job_duration_seconds", "Decision to verified "
                                     "result of Succeeded jobs (status.timings.totalSeconds)",
                                     ["path"], buckets=JOB_BUCKETS, registry=r)
        self.job_energy = Histogram(f"{PREFIX}_job_energy_joules", "Estimated energy of what "
                                    "finished jobs ran (status.result.energyJoules; "
                                    "docs/learning-energy.md)", ["path"],
                                    buckets=ENERGY_BUCKETS, registry=r)
        r.register(self.state)
        for outcome in ("met", "missed"):
            self.deadlines.labels(outcome)
        for path, reason in DECISIONS:
            self.decisions.labels(path, reason)
        for failure in FAILURE_REASONS:
            self.failures.labels(failure)
        for path in PATHS:
            self.job_seconds.labels(path)
            self.job_energy.labels(path)
        for controller in CONTROLLERS:
            for kind in ERROR_KINDS:
                self.reconcile_errors.labels(controller, kind)
        self._counted: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)

    def _first(self, uid: str, event: str) -> bool:
        """True the first time (uid, event) is seen in this process."""
        with self._lock:
            if (uid, event) in self._counted:
                return False
            self._counted[(uid, event)] = None
            while len(self._counted) > DEDUPE_SIZE:
                self._counted.popitem(last=False)
            return True

    # -- counted where the operator causes it -----------------------------------------------

    @never_raises
    def job_status_written(self, uid: str, stored: Mapping[str, Any] | None,
                           status: QuantumJobStatus | Mapping[str, Any]) -> None:
        """The operator wrote ``status`` over ``stored``: count a decision or a finish."""
        after = status.to_wire() if isinstance(status, QuantumJobStatus) else dict(status)
        decision = decided(stored, after)
        if decision is not None and self._first(uid, "decided"):
            self.decisions.labels(decision.path, decision.reason).inc()
            if decision.seconds is not None:
                self.decision_seconds.observe(decision.seconds)
        done = finished(stored, after)
        if done is not None:
            if not self._first(uid, "finished"):
                return
            if done.failure_reason is not None:
                self.failures.labels(done.failure_reason).inc()
            if done.seconds is not None and done.path != NO_PATH:
                self.job_seconds.labels(done.path).observe(done.seconds)
            if done.deadline is not None:
                self.deadlines.labels(done.deadline).inc()
            energy = (after.get("result") or {}).get("energyJoules")
            if isinstance(energy, int | float) and done.path != NO_PATH:
                self.job_energy.labels(done.path).observe(float(energy))

    @never_raises
    def joint_plan_made(self, seconds: float, jobs: int) -> None:
        """The queue planned ``jobs`` waiting jobs together in ``seconds``."""
        self.plan_seconds.observe(seconds)
        self.plan_jobs.set(jobs)

    @never_raises
    def reconcile_error(self, controller: str, kind: str) -> None:
        """A handler raised (kind: api, permanent or internal)."""
        self.reconcile_errors.labels(controller, kind).inc()

    # -- what the operator sees ------------------------------------------------------------

    def watch(self, jobs: Mapping[JobKey, Collection[Any]] | None,
              qpus: Mapping[str, Collection[QPULoad]] | None) -> None:
        """The indexes the gauges read (kopf's, in the operator): jobs by ``job_key``, QPU
        loads by QPUNode name."""
        self.state.jobs, self.state.qpus = jobs, qpus


_current = OperatorMetrics()


def current() -> OperatorMetrics:
    """The process's metrics (one per process, like prometheus_client's default registry)."""
    return _current


def joint_plan_made(seconds: float, jobs: int) -> None:
    """Called by the job queue after each joint plan."""
    _current.joint_plan_made(seconds, jobs)


def job_status_written(uid: str, stored: Mapping[str, Any] | None,
                       status: QuantumJobStatus) -> None:
    """Called by the job reconciler after each status write it made (``stored``: the status
    it wrote over)."""
    _current.job_status_written(uid, stored, status)
