"""Resource managers: what QPUs exist on this node and whether each one is healthy.

The gRPC side (:mod:`qbackbone.deviceplugin.manager`) only sees the :class:`ResourceManager`
interface, so it is tested with :class:`FakeResourceManager` and no hardware or cloud account.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from qbackbone.deviceplugin.config import QPU, ConfigError, for_node, load_config

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QPUState:
    """A QPU and its health, as the plugin advertises it."""

    qpu: QPU
    healthy: bool = True
    reason: str = ""  # why it is unhealthy (logged; the device-plugin API has no field for it)


class ResourceManager(Protocol):
    """The source of truth for the QPUs a plugin process serves."""

    def refresh(self, force: bool = False) -> None:
        """Re-read the sources if they changed (always when ``force``) and re-check health.

        Called periodically by the plugin manager; must not raise for bad input (keep the last
        good state and log instead)."""

    def states(self) -> Mapping[str, QPUState]:
        """The QPUs by name, with their current health."""


def credentials_file(host_dir: Path, qpu: QPU) -> Path | None:
    """Where a cloud QPU's token sits on the host, when credentials are provisioned there."""
    if qpu.credentials is None:
        return None
    return host_dir / qpu.credentials.name / qpu.credentials.key


def check_health(qpu: QPU, credentials_host_dir: Path | None) -> QPUState:
    """Health of one QPU: the config's ``healthy`` flag (the operator's view), and, when tokens
    are provisioned on the host, that the QPU's token file is there and not empty."""
    if not qpu.healthy:
        return QPUState(qpu, False, "marked unhealthy in the QPU list")
    if credentials_host_dir is not None:
        path = credentials_file(credentials_host_dir, qpu)
        if path is not None:
            try:
                empty = path.stat().st_size == 0
            except OSError:
                return QPUState(qpu, False, f"credentials file {path} is missing")
            if empty:
                return QPUState(qpu, False, f"credentials file {path} is empty")
    return QPUState(qpu, True)


class ConfigResourceManager:
    """QPUs from the config file; re-read when the file changes or on :meth:`refresh(force)`.

    A file that fails validation after a change is logged and ignored: the last good list stays
    advertised, so a typo does not withdraw every QPU from the node."""

    def __init__(self, path: str | os.PathLike[str],
                 credentials_host_dir: str | os.PathLike[str] | None = None,
                 node: str | None = None) -> None:
        """``node``: this node's name; only the QPUs hosted on it (or on no node in
        particular) are served. None: only those not tied to nodes."""
        self.path = Path(path)
        self.credentials_host_dir = (None if credentials_host_dir is None
                                     else Path(credentials_host_dir))
        self.node = node
        self._lock = threading.Lock()
        self.last_error: str | None = None
        # The first read must succeed (raises ConfigError); later bad reads keep the last good.
        self._qpus: tuple[QPU, ...] = self._load()
        self._signature: tuple[int, int, int] | None = self._stat()
        self._states: dict[str, QPUState] = self._check()

    def _load(self) -> tuple[QPU, ...]:
        listed = load_config(self.path)
        mine = for_node(listed, self.node)
        skipped = [q.name for q in listed if q not in mine]
        if skipped and self.node is None:
            log.warning("not serving %s: they name their nodes and this plugin was not told "
                        "its node (--node-name)", ", ".join(skipped))
        return mine

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()  # follows symlinks: a ConfigMap volume swaps ..data
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _check(self) -> dict[str, QPUState]:
        return {q.name: check_health(q, self.credentials_host_dir) for q in self._qpus}

    def refresh(self, force: bool = False) -> None:
        signature = self._stat()
        if force or signature != self._signature:
            try:
                qpus = self._load()
            except ConfigError as exc:
                if str(exc) != self.last_error:
                    log.error("keeping the last good QPU list: %s", exc)
                self.last_error = str(exc)
            else:
                if qpus != self._qpus:
                    log.info("QPU list reloaded from %s: %s", self.path,
                             ", ".join(q.name for q in qpus) or "(none)")
                self._qpus, self.last_error = qpus, None
            self._signature = signature
        states = self._check()
        with self._lock:
            self._states = states

    def states(self) -> Mapping[str, QPUState]:
        with self._lock:
            return dict(self._states)


class FakeResourceManager:
    """A resource manager driven by the caller (tests, demos): set QPUs and health directly."""

    def __init__(self, qpus: Iterable[QPU] = ()) -> None:
        self._lock = threading.Lock()
        self._states = {q.name: QPUState(q, q.healthy) for q in qpus}
        self.refreshes = 0
        self.forced_refreshes = 0

    def set_qpus(self, qpus: Iterable[QPU]) -> None:
        """Replace the QPU list (health taken from each QPU's ``healthy``)."""
        with self._lock:
            self._states = {q.name: QPUState(q, q.healthy) for q in qpus}

    def set_health(self, name: str, healthy: bool, reason: str = "") -> None:
        """Mark one QPU healthy or unhealthy."""
        with self._lock:
            if name not in self._states:
                raise KeyError(f"no QPU named {name!r}")
            self._states[name] = replace(self._states[name], healthy=healthy,
                                         reason="" if healthy else reason or "set unhealthy")

    def refresh(self, force: bool = False) -> None:
        with self._lock:
            self.refreshes += 1
            self.forced_refreshes += int(force)

    def states(self) -> Mapping[str, QPUState]:
        with self._lock:
            return dict(self._states)
