"""Devices -> ResourceSlices per pool, and the changes that bring the cluster's slices there.

Pure: no kubernetes imports. Pools:

* a hosted QPU (``spec.nodeName``) is in the pool named after its node, ``nodeName: <node>``;
* a QPU reachable from labelled nodes (``spec.nodeSelector``) is in pool
  ``cloud/selector-<hash>`` (one per distinct selector), ``nodeSelector`` with one term;
* any other QPU (network-attached, cloud) is in pool ``cloud/all-nodes``, ``allNodes: true``.

Node names cannot contain ``/``, so the cloud pools never clash with a node's pool. A pool holds
at most 128 devices per slice; larger pools are split over several slices (sorted by device
name), each naming the pool's slice count. When anything in a pool changes, every slice of the
pool is rewritten with the next generation (the highest existing one plus one); a pool that did
not change is not touched.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qbackbone.dra.attributes import DRIVER, Device, Placement

log = logging.getLogger(__name__)

API_VERSION = "resource.k8s.io/v1"
MAX_DEVICES_PER_SLICE = 128
CLOUD_POOL = "cloud/all-nodes"
# Slices this publisher manages carry this label (other publishers of the driver, such as a
# future kubelet plugin, keep theirs).
MANAGED_BY_LABEL = "qbackbone.io/dra-publisher"
MANAGED_BY = "central"
MANAGED_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"


@dataclass(frozen=True)
class Pool:
    """One pool's devices (sorted by name) and where they are reachable."""

    name: str
    placement: Placement
    devices: tuple[Mapping[str, Any], ...] = field(hash=False)


@dataclass
class Changes:
    """What to send to the API server: new slices, slices to replace (with their
    ``resourceVersion``), slice names to delete."""

    create: list[dict[str, Any]] = field(default_factory=list)
    update: list[dict[str, Any]] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.create or self.update or self.delete)


def pool_name(placement: Placement) -> str:
    if placement.node is not None:
        return placement.node
    if placement.selector is not None:
        text = ",".join(f"{k}={v}" for k, v in placement.selector)
        return f"cloud/selector-{hashlib.sha256(text.encode()).hexdigest()[:12]}"
    return CLOUD_POOL


def pools_of(devices: Iterable[Device]) -> tuple[dict[str, Pool], list[tuple[Device, str]]]:
    """Group devices into pools; a device whose name another device of its pool already has is
    refused (returned with the reason)."""
    grouped: dict[str, dict[str, Device]] = {}
    placements: dict[str, Placement] = {}
    refused: list[tuple[Device, str]] = []
    for device in sorted(devices, key=lambda d: d.qpunode):
        name = pool_name(device.placement)
        members = grouped.setdefault(name, {})
        placements.setdefault(name, device.placement)
        if device.name in members:
            refused.append((device, f"DuplicateDeviceName: device name {device.name} is "
                            f"QPUNode {members[device.name].qpunode}'s in pool {name}"))
            continue
        members[device.name] = device
    pools = {name: Pool(name, placements[name],
                        tuple(members[d].entry for d in sorted(members)))
             for name, members in grouped.items()}
    return pools, refused


def placement_fields(placement: Placement) -> dict[str, Any]:
    if placement.node is not None:
        return {"nodeName": placement.node}
    if placement.selector is not None:
        return {"nodeSelector": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": k, "operator": "In", "values": [v]} for k, v in placement.selector]}]}}
    return {"allNodes": True}


def slice_specs(pool: Pool, generation: int) -> list[dict[str, Any]]:
    """The specs of the pool's slices at ``generation``."""
    chunks = [pool.devices[i:i + MAX_DEVICES_PER_SLICE]
              for i in range(0, len(pool.devices), MAX_DEVICES_PER_SLICE)]
    return [{"driver": DRIVER,
             "pool": {"name": pool.name, "generation": generation,
                      "resourceSliceCount": len(chunks)},
             **placement_fields(pool.placement),
             "devices": [dict(d) for d in chunk]} for chunk in chunks]


def generate_name(pool: str) -> str:
    """``generateName`` of a pool's slices, as the Go helper names them:
    ``<driver>-<pool>-`` cleaned to a DNS subdomain and cut to leave room for the suffix."""
    base = f"{DRIVER}-{pool}".replace("/", "-").lower()
    return base[:200].rstrip("-.") + "-"


def new_slice(pool: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "ResourceSlice",
            "metadata": {"generateName": generate_name(pool),
                         "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
            "spec": dict(spec)}


def _comparable(spec: Mapping[str, Any]) -> Any:
    """What this publisher sets in a slice spec, without the generation (fields the server may
    default are left out)."""
    pool = spec.get("pool") or {}
    devices = [{"name": d.get("name"), "attributes": d.get("attributes") or {}}
               for d in spec.get("devices") or []]
    return (spec.get("driver"), pool.get("name"), pool.get("resourceSliceCount"),
            spec.get("nodeName"), spec.get("nodeSelector"), bool(spec.get("allNodes")),
            devices)


def _generation(obj: Mapping[str, Any]) -> int:
    value = ((obj.get("spec") or {}).get("pool") or {}).get("generation")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def plan(pools: Mapping[str, Pool], existing: Sequence[Mapping[str, Any]]) -> Changes:
    """The changes that make ``existing`` (this publisher's slices, as listed) publish exactly
    ``pools``: unchanged pools untouched; a changed pool rewritten at the next generation
    (slices replaced in place where the placement allows, surplus deleted, missing created);
    pools no longer published deleted."""
    by_pool: dict[str, list[Mapping[str, Any]]] = {}
    for obj in existing:
        name = ((obj.get("spec") or {}).get("pool") or {}).get("name")
        by_pool.setdefault(str(name), []).append(obj)
    changes = Changes()
    for name in sorted(set(by_pool) - set(pools)):
        changes.delete.extend(sorted(_name(o) for o in by_pool[name]))
    for name, pool in sorted(pools.items()):
        current = sorted(by_pool.get(name, []), key=_name)
        generations = {_generation(o) for o in current}
        desired = slice_specs(pool, max(generations, default=0))
        if len(generations) == 1 and len(current) == len(desired) and all(
                _comparable(o.get("spec") or {}) == _comparable(s)
                for o, s in zip(_in_device_order(current), desired, strict=True)):
            continue
        desired = slice_specs(pool, max(generations, default=0) + 1)
        reusable = [o for o in current if _same_placement(o.get("spec") or {}, pool)]
        changes.delete.extend(_name(o) for o in current if o not in reusable)
        for spec in desired:
            if reusable:
                old = reusable.pop(0)
                meta = old.get("metadata") or {}
                body = new_slice(name, spec)
                body["metadata"] = {"name": meta.get("name"),
                                    "resourceVersion": meta.get("resourceVersion"),
                                    "labels": {**(meta.get("labels") or {}),
                                               MANAGED_BY_LABEL: MANAGED_BY}}
                changes.update.append(body)
            else:
                changes.create.append(new_slice(name, spec))
        changes.delete.extend(_name(o) for o in reusable)
    return changes


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def _in_device_order(slices: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Slices ordered by their first device's name (the order ``slice_specs`` chunks in)."""
    def first(obj: Mapping[str, Any]) -> str:
        devices = (obj.get("spec") or {}).get("devices") or [{}]
        return str(devices[0].get("name") or "")
    return sorted(slices, key=first)


def _same_placement(spec: Mapping[str, Any], pool: Pool) -> bool:
    """Node placement is immutable: a slice can be replaced in place only when it is already
    where the pool is."""
    wanted = placement_fields(pool.placement)
    return (spec.get("nodeName") == wanted.get("nodeName")
            and spec.get("nodeSelector") == wanted.get("nodeSelector")
            and bool(spec.get("allNodes")) == bool(wanted.get("allNodes")))
