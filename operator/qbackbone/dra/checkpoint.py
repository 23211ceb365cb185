"""The checkpoint of prepared claims, so a restarted plugin answers prepare and unprepare as
before: ``<plugin dir>/checkpoint.json``, written atomically after every change.

Content: ``{"version": 1, "checksum": sha256 of the canonical claims JSON, "claims": {uid:
{namespace, name, devices: [{requests, pool, device, cdiDeviceIds}]}}}``. A checkpoint whose
checksum or shape is wrong is refused (:class:`CheckpointError`): the caller keeps it aside
and starts empty (unprepare still works, spec files are named by claim uid).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

VERSION = 1
FILE_NAME = "checkpoint.json"


class CheckpointError(ValueError):
    """The checkpoint file cannot be trusted."""


@dataclass(frozen=True)
class PreparedDevice:
    """One device of a prepared claim, as returned to the kubelet."""

    requests: tuple[str, ...]
    pool: str
    device: str
    cdi_device_ids: tuple[str, ...]


@dataclass(frozen=True)
class PreparedClaim:
    """A claim prepared on this node."""

    uid: str
    namespace: str
    name: str
    devices: tuple[PreparedDevice, ...]


def _claims_json(claims: Mapping[str, PreparedClaim]) -> dict[str, Any]:
    return {uid: {"namespace": c.namespace, "name": c.name,
                  "devices": [{"requests": list(d.requests), "pool": d.pool,
                               "device": d.device, "cdiDeviceIds": list(d.cdi_device_ids)}
                              for d in c.devices]}
            for uid, c in sorted(claims.items())}


def _checksum(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":"))
                          .encode()).hexdigest()


def encode(claims: Mapping[str, PreparedClaim]) -> str:
    """The checkpoint file's text for ``claims``."""
    data = _claims_json(claims)
    return json.dumps({"version": VERSION, "checksum": _checksum(data), "claims": data},
                      indent=2, sort_keys=True) + "\n"


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CheckpointError(f"{what} is not a list of strings")
    return tuple(value)


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise CheckpointError(f"{what} is not a string")
    return value


def decode(text: str) -> dict[str, PreparedClaim]:
    """The claims of a checkpoint file's text; :class:`CheckpointError` when it is wrong."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("version") != VERSION:
        raise CheckpointError(f"not a version {VERSION} checkpoint")
    data = doc.get("claims")
    if not isinstance(data, dict) or doc.get("checksum") != _checksum(data):
        raise CheckpointError("checksum mismatch")
    claims = {}
    for uid, entry in data.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("devices"), list):
            raise CheckpointError(f"claim {uid}: malformed")
        devices = []
        for d in entry["devices"]:
            if not isinstance(d, dict):
                raise CheckpointError(f"claim {uid}: malformed device")
            devices.append(PreparedDevice(
                _strings(d.get("requests"), "requests"), _string(d.get("pool"), "pool"),
                _string(d.get("device"), "device"),
                _strings(d.get("cdiDeviceIds"), "cdiDeviceIds")))
        claims[uid] = PreparedClaim(uid, _string(entry.get("namespace"), "namespace"),
                                    _string(entry.get("name"), "name"), tuple(devices))
    return claims


def load(path: Path) -> dict[str, PreparedClaim]:
    """The checkpointed claims (none when the file does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    return decode(text)


def save(path: Path, claims: Mapping[str, PreparedClaim]) -> None:
    """Write the checkpoint atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(encode(claims))
    os.replace(tmp, path)
