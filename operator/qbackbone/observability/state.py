"""In-memory views of what the operator sees, read at scrape time (kube-state-metrics style).

``JobsView``: every QuantumJob the operator watches, by uid, as (namespace, phase, path).
``QPUView``: every QPUNode, with its Ready condition, queue depth and utilisation as its status
reports them (the QPUNode controller derives those from the fragment pods), so the metrics and
``kubectl get qpu`` never disagree. Both are thread-safe: kopf's handlers update them from its
worker threads while the metrics server reads them from its own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

JobKey = tuple[str, str, str]  # (namespace, phase, path)


class JobsView:
    """QuantumJobs by uid; counts by (namespace, phase, path), zero for combinations seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, JobKey] = {}
        self._seen: set[JobKey] = set()

    def set(self, uid: str, key: JobKey) -> None:
        """Record (or move) one job."""
        with self._lock:
            self._jobs[uid] = key
            self._seen.add(key)

    def remove(self, uid: str) -> None:
        """Forget a deleted job."""
        with self._lock:
            self._jobs.pop(uid, None)

    def counts(self) -> dict[JobKey, int]:
        """Jobs per key; a key that had jobs once stays, at 0, so its series does not vanish."""
        with self._lock:
            out = dict.fromkeys(self._seen, 0)
            for key in self._jobs.values():
                out[key] += 1
        return out


@dataclass(frozen=True)
class QPULoad:
    """One QPUNode as its status reports it."""

    ready: bool
    queue_depth: int
    utilisation: float


class QPUView:
    """QPUNodes by name: Ready, ``status.queueDepth`` and ``status.utilisation``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._qpus: dict[str, QPULoad] = {}

    def set(self, name: str, load: QPULoad) -> None:
        """A QPUNode as just seen."""
        with self._lock:
            self._qpus[name] = load

    def remove(self, name: str) -> None:
        """A QPUNode was deleted."""
        with self._lock:
            self._qpus.pop(name, None)

    def snapshot(self) -> dict[str, QPULoad]:
        """Every QPUNode known, by name."""
        with self._lock:
            return dict(sorted(self._qpus.items()))


def qpu_load(status: Mapping[str, Any] | None) -> QPULoad:
    """Ready, queue depth and utilisation from a QPUNode's stored status (absent: idle)."""
    status = status or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in status.get("conditions") or [])
    return QPULoad(ready, max(int(status.get("queueDepth") or 0), 0),
                   min(max(float(status.get("utilisation") or 0.0), 0.0), 1.0))
