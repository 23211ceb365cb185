"""QPUs from the cluster's QPUNode objects, beside the QPU list file (``--qpunodes``).

With it, a QPUNode applied with kubectl is advertised by the plugin of the node it names
(``spec.nodeName``; no nodeName: every node running the plugin), so its fragment pods can be
scheduled without editing the DaemonSet's QPU list. A QPU in the file wins over a QPUNode of
the same name (the file may carry health or credentials the QPUNode does not).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qbackbone.deviceplugin.config import QPU, ConfigError, parse_qpu
from qbackbone.deviceplugin.resources import QPUState, ResourceManager

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "qbackbone.io", "v1alpha1", "qpunodes"
MIN_LIST_INTERVAL = 5.0  # seconds between API lists (the plugin polls every second)

Lister = Callable[[], Sequence[Mapping[str, Any]]]


def qpu_of(obj: Mapping[str, Any]) -> QPU:
    """The QPU a QPUNode object describes; ConfigError when it cannot be one."""
    name = (obj.get("metadata") or {}).get("name")
    spec = obj.get("spec") or {}
    backend = spec.get("backend") or {}
    entry: dict[str, Any] = {"name": name, "provider": backend.get("provider"),
                             "backend": backend.get("name")}
    if spec.get("credentialsSecretRef") is not None:
        entry["credentialsSecretRef"] = spec["credentialsSecretRef"]
    if spec.get("nodeName"):
        entry["nodes"] = [spec["nodeName"]]
    return parse_qpu(entry, f"QPUNode {name}")


def cluster_lister() -> Lister:
    """List QPUNodes with the in-cluster service account (or ``$KUBECONFIG`` outside)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    api = client.CustomObjectsApi()

    def list_qpunodes() -> Sequence[Mapping[str, Any]]:
        found = api.list_cluster_custom_object(GROUP, VERSION, PLURAL, _request_timeout=10)
        return list(found.get("items") or []) if isinstance(found, dict) else []

    return list_qpunodes


class QPUNodeResourceManager:
    """The file's QPUs (``files``) plus the QPUNodes hosted on ``node``; the last good list
    of QPUNodes stays when the API cannot be reached."""

    def __init__(self, files: ResourceManager, node: str | None, lister: Lister,
                 min_interval: float = MIN_LIST_INTERVAL) -> None:
        self.files, self.node, self.lister = files, node, lister
        self.min_interval = min_interval
        self._lock = threading.Lock()
        self._listed: dict[str, QPUState] = {}
        self._last_list = float("-inf")
        self.last_error: str | None = None
        self._list()

    def _list(self) -> None:
        self._last_list = time.monotonic()
        try:
            objects = self.lister()
        except Exception as exc:  # the API may be down; keep what we had
            if str(exc) != self.last_error:
                log.error("keeping the last QPUNode list: %s", exc)
            self.last_error = str(exc)
            return
        listed: dict[str, QPUState] = {}
        for obj in objects:
            try:
                qpu = qpu_of(obj)
            except ConfigError as exc:
                log.warning("not serving %s", exc)
                continue
            if qpu.hosted_on(self.node):
                listed[qpu.name] = QPUState(qpu)
        with self._lock:
            if set(listed) != set(self._listed):
                log.info("QPUNodes served: %s", ", ".join(sorted(listed)) or "(none)")
            self._listed, self.last_error = listed, None

    def refresh(self, force: bool = False) -> None:
        self.files.refresh(force)
        if force or time.monotonic() - self._last_list >= self.min_interval:
            self._list()

    def states(self) -> Mapping[str, QPUState]:
        with self._lock:
            merged = dict(self._listed)
        merged.update(self.files.states())
        return merged
