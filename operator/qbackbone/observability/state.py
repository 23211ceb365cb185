"""What the gauges read at scrape time: the operator's indexes of the objects it watches
(kube-state-metrics style; kopf keeps them current from its watch streams, deleted objects
included).

- jobs: ``(namespace, phase, path) -> one entry per QuantumJob``;
- QPUs: ``name -> [QPULoad]``, each QPUNode's Ready condition, queue depth and utilisation as
  its status reports them (the QPUNode controller derives those from the fragment pods), so
  the metrics and ``kubectl get qpu`` never disagree.

The indexes change on kopf's event loop while the metrics server reads them from its own
thread: a read that races a change is retried, and a key that vanished counts as empty.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from qbackbone.observability.transitions import job_path, job_phase

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
JobKey = tuple[str, str, str]  # (namespace, phase, path)
READ_ATTEMPTS = 5


@dataclass(frozen=True)
class QPULoad:
    """One QPUNode as its status reports it."""

    ready: bool
    queue_depth: int
    utilisation: float


def job_key(namespace: str | None, status: Mapping[str, Any] | None) -> JobKey:
    """The gauge labels of one QuantumJob."""
    return (namespace or "", job_phase(status), job_path(status))


def qpu_load(status: Mapping[str, Any] | None) -> QPULoad:
    """Ready, queue depth and utilisation from a QPUNode's stored status (absent: idle)."""
    status = status or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    return QPULoad(ready, max(int(status.get("queueDepth") or 0), 0),
                   min(max(float(status.get("utilisation") or 0.0), 0.0), 1.0))


def read_index(index: Mapping[K, Collection[V]] | None) -> dict[K, list[V]]:
    """A copy of an index that another thread may be changing."""
    if index is None:
        return {}
    for _ in range(READ_ATTEMPTS):
        try:
            return {key: list(index.get(key, ())) for key in list(index)}
        except RuntimeError:  # changed during iteration
            continue
    return {}


class JobCounts:
    """Jobs per (namespace, phase, path); a key that had jobs once stays, at 0, so its series
    does not vanish when the last job leaves it (e.g. Running)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: set[JobKey] = set()

    def counts(self, index: Mapping[JobKey, Collection[Any]] | None) -> dict[JobKey, int]:
        """Counts from the index, zeros for the keys seen before."""
        now = {key: len(entries) for key, entries in read_index(index).items()
               if isinstance(key, tuple) and len(key) == 3}
        with self._lock:
            self._seen |= set(now)
            return {key: now.get(key, 0) for key in sorted(self._seen)}
