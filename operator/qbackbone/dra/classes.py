"""One DeviceClass per published QPU: how a claim pins a QPU so that kueue can count it.

kueue 0.17 refuses a claim whose request carries a CEL selector (``Inadmissible: CEL selectors
are not supported``, docs/kueue.md), so the plan's choice cannot be a selector in the claim.
It can be the class: ``<device>.qpu.qbackbone.io`` selects exactly the device of one QPUNode
(by its ``qpu`` attribute), and kueue's ``deviceClassMappings`` counts each such class as one
``qpu.qbackbone.io/qpus``. The publisher keeps one class per published device (created when
the device appears, deleted when it leaves); the operator's claim templates name it.

Pure: no kubernetes imports.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qbackbone.dra.attributes import DRIVER, Device, device_name
from qbackbone.dra.slices import MANAGED_BY, MANAGED_BY_LABEL

QPU_LABEL = "qbackbone.io/qpu-device"  # the device a per-QPU class selects
QUOTA_RESOURCE = "qpu.qbackbone.io/qpus"  # what kueue charges per QPU device (docs/kueue.md)


def qpu_class_name(qpunode: str) -> str:
    """The DeviceClass that selects exactly QPUNode ``qpunode``'s device."""
    return f"{device_name(qpunode)}.{DRIVER}"


def qpu_class(qpunode: str) -> dict[str, Any]:
    """The per-QPU DeviceClass: the driver's devices whose ``qpu`` attribute is the name."""
    expression = (f'device.driver == "{DRIVER}" && '
                  f'device.attributes["{DRIVER}"].qpu == {json.dumps(qpunode)}')
    return {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
            "metadata": {"name": qpu_class_name(qpunode),
                         "labels": {MANAGED_BY_LABEL: MANAGED_BY,
                                    QPU_LABEL: device_name(qpunode)}},
            "spec": {"selectors": [{"cel": {"expression": expression}}]}}


@dataclass
class ClassChanges:
    """Per-QPU classes to create and to delete (a class edited by hand is deleted and made
    again: its selector is what pins the QPU)."""

    create: list[dict[str, Any]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.delete)


def plan_classes(devices: Iterable[Device],
                 existing: Sequence[Mapping[str, Any]]) -> ClassChanges:
    """What to send so that exactly the published devices have their class, as built here."""
    wanted = {qpu_class_name(d.qpunode): qpu_class(d.qpunode) for d in devices}
    changes = ClassChanges()
    have = set()
    for obj in existing:
        name = str((obj.get("metadata") or {}).get("name") or "")
        if not name or name == DRIVER:
            continue
        want = wanted.get(name)
        if want is not None and obj.get("spec", {}).get("selectors") == want["spec"]["selectors"]:
            have.add(name)
        else:
            changes.delete.append(name)
    changes.create = [body for name, body in sorted(wanted.items()) if name not in have]
    return changes


def kueue_mappings(qpunodes: Iterable[str],
                   resource: str = QUOTA_RESOURCE) -> list[dict[str, Any]]:
    """kueue's ``resources.deviceClassMappings`` that count ``qpu.qbackbone.io`` and every
    listed QPU's class as one ``resource`` each."""
    classes = [DRIVER, *sorted({qpu_class_name(q) for q in qpunodes})]
    return [{"name": resource, "deviceClassNames": classes}]
