"""A container's command line and environment, resolved as the kubelet resolves them."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from typing import Any

from qbackbone.api.qpunode import QPU_RESOURCE_PREFIX
from qbackbone.dev.nodeagent.config import QPU_ENV

# (kind, namespace, name) -> the object's data, or None if it does not exist;
# kind is "ConfigMap" or "Secret" (Secret values already decoded).
DataLookup = Callable[[str, str, str], "Mapping[str, str] | None"]

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ConfigError(ValueError):
    """The container cannot start: a referenced ConfigMap, Secret or key is missing."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined references replaced, ``$$`` escapes ``$``."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env[name] if name in env else match.group(0)

    return _REF.sub(sub, text)


def container_qpus(container: Any) -> list[str]:
    """The QPUs a container requests (extended resources under ``qpu.qbackbone.io/``)."""
    resources = container.resources
    wanted: dict[str, Any] = {}
    if resources is not None:
        wanted.update(resources.requests or {})
        wanted.update(resources.limits or {})
    return sorted(k[len(QPU_RESOURCE_PREFIX):] for k, v in wanted.items()
                  if k.startswith(QPU_RESOURCE_PREFIX) and str(v) not in ("0", ""))


def _field(pod: Any, path: str) -> str:
    meta, spec = pod.metadata, pod.spec
    simple = {
        "metadata.name": meta.name,
        "metadata.namespace": meta.namespace,
        "metadata.uid": meta.uid,
        "spec.nodeName": spec.node_name,
        "spec.serviceAccountName": spec.service_account_name,
        "status.hostIP": "127.0.0.1",
        "status.podIP": "127.0.0.1",
        "status.hostIPs": "127.0.0.1",
        "status.podIPs": "127.0.0.1",
    }
    if path in simple:
        return simple[path] or ""
    match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if match:
        source = (meta.labels if match.group(1) == "labels" else meta.annotations) or {}
        return str(source.get(match.group(2), ""))
    raise ConfigError(f"unsupported fieldRef {path!r}")


def _data(lookup: DataLookup, kind: str, namespace: str, name: str,
          optional: bool) -> Mapping[str, str]:
    data = lookup(kind, namespace, name)
    if data is None:
        if optional:
            return {}
        raise ConfigError(f"{kind.lower()} {name!r} not found")
    return data


def container_env(
    pod: Any, container: Any, base: Mapping[str, str], lookup: DataLookup,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one container process.

    Order of precedence, lowest first: ``base`` (PATH, HOME, ... from the agent), pod identity
    (HOSTNAME), the device-plugin variables (``QBACKBONE_QPUS``), ``extra`` (agent-set),
    ``envFrom``, then ``env`` (with ``$(VAR)`` expansion against what is already defined).
    """
    ns = pod.metadata.namespace
    env = dict(base)
    env["HOSTNAME"] = pod.metadata.name
    qpus = container_qpus(container)
    if qpus:
        env[QPU_ENV] = ",".join(qpus)
    env.update(extra or {})
    for source in container.env_from or []:
        prefix = source.prefix or ""
        if source.config_map_ref is not None:
            ref = source.config_map_ref
            env.update({prefix + k: v for k, v in _data(
                lookup, "ConfigMap", ns, ref.name, bool(ref.optional)).items()})
        if source.secret_ref is not None:
            ref = source.secret_ref
            env.update({prefix + k: v for k, v in _data(
                lookup, "Secret", ns, ref.name, bool(ref.optional)).items()})
    for var in container.env or []:
        if var.value_from is None:
            env[var.name] = expand(var.value or "", env)
            continue
        vf = var.value_from
        if vf.field_ref is not None:
            env[var.name] = _field(pod, vf.field_ref.field_path)
        elif vf.config_map_key_ref is not None or vf.secret_key_ref is not None:
            kind = "ConfigMap" if vf.config_map_key_ref is not None else "Secret"
            ref = vf.config_map_key_ref or vf.secret_key_ref
            data = _data(lookup, kind, ns, ref.name, bool(ref.optional))
            if ref.key in data:
                env[var.name] = data[ref.key]
            elif not ref.optional:
                raise ConfigError(f"key {ref.key!r} not in {kind.lower()} {ref.name!r}")
        else:
            raise ConfigError(f"env {var.name}: only value, fieldRef, configMapKeyRef and "
                              "secretKeyRef are supported by the node agent")
    return env


def command_line(container: Any, env: Mapping[str, str]) -> list[str]:
    """``command`` + ``args`` with ``$(VAR)`` expanded; images' entrypoints are unknown here."""
    if not container.command:
        raise ConfigError(
            f"container {container.name!r} has no command: the node agent runs commands as "
            "local processes and cannot use an image's entrypoint"
        )
    return [expand(part, env) for part in [*container.command, *(container.args or [])]]


def decode_secret(data: Mapping[str, bytes | str] | None) -> dict[str, str]:
    """Secret ``data`` values are base64 on the wire (the client may hand them over as str or
    bytes, still encoded)."""
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (data or {}).items()}
