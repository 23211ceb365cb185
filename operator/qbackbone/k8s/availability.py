"""Which QPUNodes can keep or take fragments: a shared view, and the rule for acting on it.

The shared view (``QPUView``) is listed at most every few seconds for all jobs and is marked
stale at once when the QPUNode watch reports a change of a node's availability (deleted, being
deleted, Ready flipped). A watch can lag, so the view only says where to look: every action
that depends on a QPU being there (creating a fragment's input or pod, removing its scheduling
gate, declaring its QPU lost and moving it) first reads the QPUNodes from the API server
(``Pass.fresh``), at most once per pass over a job's fragments.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qbackbone.api.qpunode import CORDONED
from qbackbone.k8s import QPUNODES
from qbackbone.k8s.kube import Kube


@dataclass(frozen=True)
class QPUAvailability:
    """QPUNodes now: ``alive`` keep the fragments they have (they exist, are not being
    deleted, and are Ready, being validated, or cordoned); ``ready`` may take new attempts."""

    alive: frozenset[str]
    ready: frozenset[str]


def node_state(body: Mapping[str, Any] | None) -> tuple[bool, bool]:
    """(alive, ready) of one QPUNode body; None (deleted) is neither."""
    if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
        return False, False  # being deleted: gone for the fragments on it
    cond = next((c for c in (body.get("status") or {}).get("conditions") or []
                 if c.get("type") == "Ready"), None)
    alive = cond is None or cond.get("status") != "False" or cond.get("reason") == CORDONED
    return alive, cond is not None and cond.get("status") == "True"


def qpu_availability(kube: Kube) -> QPUAvailability:
    """Read every QPUNode's Ready condition from the API server."""
    alive, ready = set(), set()
    for body in kube.list_objects(QPUNODES):
        name = body["metadata"]["name"]
        is_alive, is_ready = node_state(body)
        if is_alive:
            alive.add(name)
        if is_ready:
            ready.add(name)
    return QPUAvailability(frozenset(alive), frozenset(ready))


class QPUView:
    """QPUNode availability for all jobs: listed at most every ``max_age`` seconds, and again
    as soon as the watch reports that a node's availability changed (``observe``)."""

    def __init__(self, kube: Kube, max_age: float) -> None:
        self.kube, self.max_age = kube, max_age
        self._lock = threading.Lock()
        self._changes = 0  # bumped by observe(); a view listed before a bump is stale
        self._seen: tuple[float, int, QPUAvailability] | None = None

    def get(self, fresh: bool = False) -> QPUAvailability:
        """The view; ``fresh`` reads the API server now."""
        seen = self._seen
        if (fresh or seen is None or seen[1] != self._changes
                or time.monotonic() - seen[0] > self.max_age):
            changes = self._changes
            view = qpu_availability(self.kube)
            self._seen = (time.monotonic(), changes, view)
            return view
        return seen[2]

    def observe(self, name: str, body: Mapping[str, Any] | None) -> None:
        """A QPUNode watch event (``None``: deleted): the view is stale when it changes the
        node's availability (queue depth and utilisation updates do not)."""
        seen = self._seen
        if seen is None:
            return
        alive, ready = node_state(body)
        if (name in seen[2].alive) != alive or (name in seen[2].ready) != ready:
            with self._lock:
                self._changes += 1


class Pass:
    """The view for one pass over a job's fragments: the shared one, or the API server's
    state read at most once (``fresh``) before anything is created, released or moved."""

    def __init__(self, view: QPUView) -> None:
        self.view = view
        self._fresh: QPUAvailability | None = None

    def cached(self) -> QPUAvailability:
        return self._fresh or self.view.get()

    def fresh(self) -> QPUAvailability:
        if self._fresh is None:
            self._fresh = self.view.get(True)
        return self._fresh

    def lost(self, qpu: str) -> bool:
        """Whether ``qpu`` can no longer keep its fragments, as the API server says now
        (the shared view is enough to know it is still there when nothing is done on it)."""
        return qpu not in self.cached().alive and qpu not in self.fresh().alive
