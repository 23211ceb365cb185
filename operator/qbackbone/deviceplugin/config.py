"""The plugin's input: which QPUs this node hosts, read from a small YAML or JSON file.

The file is either a list of QPUs or a mapping with a ``qpus`` list; each entry is::

    name: ibm-torino                 # the QPUNode name; also the device ID
    provider: ibm-runtime            # aer | fake | ibm-runtime (others are passed through)
    backend: ibm_torino              # the backend the provider drives
    credentialsSecretRef:            # cloud QPUs: the Secret holding the API token
      name: ibm-token
      key: token                     # default "token"
    healthy: true                    # optional; the operator's view (e.g. calibration stale)
    nodes: [qpu-host-1]              # optional; the nodes hosting (or reaching) it

One file serves every node (a ConfigMap mounted by the DaemonSet): a plugin started with its
node's name advertises only the QPUs whose ``nodes`` name that node, and those without
``nodes`` (reachable from every node running the plugin).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

QPU_RESOURCE_PREFIX = "qpu.qbackbone.io/"
# The providers the worker knows; others are accepted (the plugin only passes the name on).
KNOWN_PROVIDERS = ("aer", "fake", "ibm-runtime")
CLOUD_PROVIDERS = ("ibm-runtime",)

# An extended resource name's last part is a qualified name of at most 63 characters, and a
# device ID may have at most 63; QPUNode names are lower-case DNS names, so both fit these.
_QPU_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_TOKEN = re.compile(r"[A-Za-z0-9][-A-Za-z0-9_.]*")
_FIELDS = {"name", "provider", "backend", "credentialsSecretRef", "healthy", "nodes"}
# A Node's name is a DNS subdomain (lower case, at most 253 characters).
_NODE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


class ConfigError(ValueError):
    """The QPU list is malformed; the message names the file, the entry and the field."""


@dataclass(frozen=True)
class SecretRef:
    """A key of a Secret holding a cloud QPU's API token."""

    name: str
    key: str = "token"


@dataclass(frozen=True)
class QPU:
    """One QPU hosted on (or reachable from) this node."""

    name: str
    provider: str
    backend: str
    credentials: SecretRef | None = None
    healthy: bool = True
    nodes: tuple[str, ...] = ()  # the nodes hosting it; empty: every node running the plugin

    def hosted_on(self, node: str | None) -> bool:
        """Whether the plugin of ``node`` advertises this QPU (None: a plugin that does not
        know its node advertises only the QPUs not tied to nodes)."""
        return not self.nodes or (node is not None and node in self.nodes)

    @property
    def resource_name(self) -> str:
        """The extended resource advertised for this QPU: ``qpu.qbackbone.io/<name>``."""
        return QPU_RESOURCE_PREFIX + self.name

    @property
    def device_id(self) -> str:
        """The ID of the QPU's one device (one unit per QPU)."""
        return self.name


def _string(entry: Mapping[str, Any], key: str, where: str, pattern: re.Pattern[str],
            what: str, max_len: int = 253) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {key} must be a non-empty string, got {value!r}")
    if len(value) > max_len or not pattern.fullmatch(value):
        raise ConfigError(f"{where}: {key} {value!r} is not {what}")
    return value


def _secret(value: Any, where: str) -> SecretRef:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: credentialsSecretRef must be a mapping with name (and key)")
    unknown = set(value) - {"name", "key"}
    if unknown:
        raise ConfigError(f"{where}: credentialsSecretRef has unknown fields {sorted(unknown)}")
    name = _string(value, "name", f"{where}: credentialsSecretRef", _SECRET_NAME,
                   "a Secret name (lower-case DNS name)")
    key = value.get("key", "token")
    if (not isinstance(key, str) or key in (".", "..") or len(key) > 253
            or not _SECRET_KEY.fullmatch(key)):
        raise ConfigError(f"{where}: credentialsSecretRef.key {key!r} is not a Secret key")
    return SecretRef(name=name, key=key)


def _nodes(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: nodes must be a non-empty list of node names, "
                          f"got {value!r}")
    for node in value:
        if not isinstance(node, str) or len(node) > 253 or not _NODE_NAME.fullmatch(node):
            raise ConfigError(f"{where}: nodes: {node!r} is not a node name "
                              "(lower-case DNS subdomain)")
    if len(set(value)) != len(value):
        raise ConfigError(f"{where}: nodes lists a node twice: {value!r}")
    return tuple(sorted(value))


def parse_qpu(entry: Any, where: str) -> QPU:
    """One entry of the list, validated."""
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(entry).__name__}")
    unknown = set(entry) - _FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown fields {sorted(unknown)} "
                          f"(allowed: {sorted(_FIELDS)})")
    name = _string(entry, "name", where, _QPU_NAME,
                   "a QPU name (lower-case DNS label-like name of at most 63 characters)",
                   max_len=63)
    where = f"{where} ({name})"
    provider = _string(entry, "provider", where, _TOKEN, "a provider name")
    backend = _string(entry, "backend", where, _TOKEN, "a backend name")
    ref = entry.get("credentialsSecretRef")
    credentials = None if ref is None else _secret(ref, where)
    if provider in CLOUD_PROVIDERS and credentials is None:
        raise ConfigError(f"{where}: provider {provider} needs credentialsSecretRef")
    healthy = entry.get("healthy", True)
    if not isinstance(healthy, bool):
        raise ConfigError(f"{where}: healthy must be true or false, got {healthy!r}")
    nodes = () if entry.get("nodes") is None else _nodes(entry["nodes"], where)
    return QPU(name=name, provider=provider, backend=backend, credentials=credentials,
               healthy=healthy, nodes=nodes)


def parse_config(data: Any, source: str = "config") -> tuple[QPU, ...]:
    """The QPUs of a loaded document (a list, or a mapping with ``qpus``), sorted by name."""
    if data is None:
        return ()
    if isinstance(data, Mapping):
        unknown = set(data) - {"qpus"}
        if unknown:
            raise ConfigError(f"{source}: unknown top-level fields {sorted(unknown)}")
        data = data.get("qpus") or []
    if not isinstance(data, list):
        raise ConfigError(f"{source}: expected a list of QPUs or a mapping with 'qpus'")
    qpus = [parse_qpu(entry, f"{source}: qpus[{i}]") for i, entry in enumerate(data)]
    seen: set[str] = set()
    for qpu in qpus:
        if qpu.name in seen:
            raise ConfigError(f"{source}: QPU {qpu.name!r} is listed twice")
        seen.add(qpu.name)
    return tuple(sorted(qpus, key=lambda q: q.name))


def load_config(path: str | os.PathLike[str]) -> tuple[QPU, ...]:
    """Read and validate the QPU list in ``path`` (YAML or JSON)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML or JSON: {exc}") from exc
    return parse_config(data, str(path))


def for_node(qpus: tuple[QPU, ...], node: str | None) -> tuple[QPU, ...]:
    """The QPUs the plugin on ``node`` advertises (see :meth:`QPU.hosted_on`)."""
    return tuple(q for q in qpus if q.hosted_on(node))
