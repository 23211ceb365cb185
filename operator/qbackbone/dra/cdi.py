"""CDI specs of prepared claims: what a container allocated a QPU through DRA is given.

Pure content plus two small file operations. One spec file per claim,
``<cdi dir>/qpu.qbackbone.io-<claim uid>.json``, of kind ``qpu.qbackbone.io/qpu``, with one CDI
device per allocated QPU named ``<claim uid>-<device>`` (unique across claims, as CDI requires
within a kind). Each device's ``containerEdits`` are exactly what the device plugin's Allocate
gives (:func:`qbackbone.deviceplugin.allocate.container_allocation`): ``QBACKBONE_QPU``,
``QBACKBONE_QPUS``, ``QBACKBONE_QPU_BACKEND``, ``QBACKBONE_QPU_RESOURCE``, and for a QPU with
credentials the credentials-file variables and (with a credentials host dir) a read-only bind
mount. A claim holding several QPUs lists them all in ``QBACKBONE_QPUS`` (comma-separated).
The container runtime (containerd with CDI enabled) injects the devices the kubelet names.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qbackbone.deviceplugin.allocate import ENV_QPUS, container_allocation
from qbackbone.deviceplugin.config import QPU
from qbackbone.dra.attributes import DRIVER

CDI_VERSION = "0.6.0"
CDI_KIND = f"{DRIVER}/qpu"
_CDI_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


def spec_file(cdi_dir: Path, claim_uid: str) -> Path:
    """The claim's spec file in ``cdi_dir``."""
    return cdi_dir / f"{DRIVER}-{_checked(claim_uid, 'claim uid')}.json"


def device_name(claim_uid: str, device: str) -> str:
    """The CDI device name of ``device`` prepared for the claim."""
    return _checked(f"{claim_uid}-{device}", "CDI device name")


def device_id(claim_uid: str, device: str) -> str:
    """The fully qualified CDI device ID the kubelet hands the runtime."""
    return f"{CDI_KIND}={device_name(claim_uid, device)}"


def _checked(text: str, what: str) -> str:
    if not _CDI_NAME.match(text) or "/" in text:
        raise ValueError(f"{what} {text!r} is not usable in a CDI name")
    return text


def claim_spec(claim_uid: str, devices: Sequence[tuple[str, QPU]],
               credentials_host_dir: Path | None = None) -> dict[str, Any]:
    """The CDI spec for a claim: one CDI device per ``(device name, QPU)``."""
    names = ",".join(qpu.name for _, qpu in devices)
    cdi_devices = []
    for device, qpu in devices:
        allocation = container_allocation(qpu, credentials_host_dir)
        envs = dict(allocation.envs)
        if len(devices) > 1:
            envs[ENV_QPUS] = names
        edits: dict[str, Any] = {"env": [f"{k}={v}" for k, v in envs.items()]}
        if allocation.mounts:
            edits["mounts"] = [{"hostPath": m.host_path, "containerPath": m.container_path,
                                "options": ["bind", "ro" if m.read_only else "rw"]}
                               for m in allocation.mounts]
        cdi_devices.append({"name": device_name(claim_uid, device), "containerEdits": edits})
    return {"cdiVersion": CDI_VERSION, "kind": CDI_KIND, "devices": cdi_devices}


def write_spec(cdi_dir: Path, claim_uid: str, spec: Mapping[str, Any]) -> Path:
    """Write the claim's spec atomically (a temporary file the runtime ignores, renamed)."""
    cdi_dir.mkdir(parents=True, exist_ok=True)
    path = spec_file(cdi_dir, claim_uid)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(spec, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path


def read_spec(cdi_dir: Path, claim_uid: str) -> dict[str, Any] | None:
    """The claim's spec as written, or None (missing or unreadable)."""
    try:
        data = json.loads(spec_file(cdi_dir, claim_uid).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_spec(cdi_dir: Path, claim_uid: str) -> bool:
    """Remove the claim's spec; False when there was none."""
    try:
        spec_file(cdi_dir, claim_uid).unlink()
    except FileNotFoundError:
        return False
    return True
