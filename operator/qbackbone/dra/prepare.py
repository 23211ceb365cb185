"""Preparing one claim, pure: which of the claim's allocated devices are this driver's, which
QPU each one is, and what the node then holds (CDI spec, checkpoint entry).

The ResourceClaim is read as a plain dict (``resource.k8s.io/v1``); a device is resolved to
its QPU by a :data:`Resolver`: from the cluster's QPUNodes (:func:`resolve_from_qpunodes`,
recomputing the publisher's device and pool names) or, in the fake mode, from the plugin's own
fake QPUs (``dra/fake.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qbackbone.deviceplugin.config import QPU, ConfigError
from qbackbone.deviceplugin.qpunodes import qpu_of
from qbackbone.dra import cdi
from qbackbone.dra.attributes import DRIVER, Unpublishable, device_name, is_ready, placement_of
from qbackbone.dra.checkpoint import PreparedClaim, PreparedDevice
from qbackbone.dra.slices import pool_name


class PrepareError(Exception):
    """The claim cannot be prepared on this node (reported in the claim's response)."""


@dataclass(frozen=True)
class ClaimRef:
    """A claim as the kubelet names it."""

    namespace: str
    name: str
    uid: str


@dataclass(frozen=True)
class Allocated:
    """One allocation result of this driver."""

    request: str
    pool: str
    device: str


Resolver = Callable[[str, str], QPU]  # (pool, device) -> QPU; raises PrepareError


def allocated_devices(ref: ClaimRef, claim: Mapping[str, Any]) -> list[Allocated]:
    """This driver's allocation results of the claim read from the API server; PrepareError
    when the object is another claim of the same name (uid), or not allocated."""
    meta = claim.get("metadata") or {}
    uid = meta.get("uid")
    if uid != ref.uid:
        raise PrepareError(f"ResourceClaim {ref.namespace}/{ref.name} has uid {uid}, not "
                           f"{ref.uid}: the claim was replaced")
    allocation = (claim.get("status") or {}).get("allocation")
    if not isinstance(allocation, Mapping):
        raise PrepareError(f"ResourceClaim {ref.namespace}/{ref.name} is not allocated")
    results = (allocation.get("devices") or {}).get("results") or []
    found = []
    for result in results:
        if not isinstance(result, Mapping) or result.get("driver") != DRIVER:
            continue
        request, pool, device = (result.get(k) for k in ("request", "pool", "device"))
        if not (isinstance(request, str) and isinstance(pool, str) and isinstance(device, str)):
            raise PrepareError(f"malformed allocation result {dict(result)}")
        found.append(Allocated(request, pool, device))
    return found


def resolve_from_qpunodes(qpunodes: Sequence[Mapping[str, Any]], pool: str, device: str) -> QPU:
    """The QPU of ``device`` in ``pool`` among the QPUNodes, as the publisher named it."""
    for obj in qpunodes:
        name = (obj.get("metadata") or {}).get("name")
        if not isinstance(name, str) or device_name(name) != device:
            continue
        try:
            if pool_name(placement_of(obj.get("spec") or {})) != pool:
                continue
        except Unpublishable:
            continue
        if not is_ready(obj):
            raise PrepareError(f"QPUNode {name} (device {device}) is not Ready")
        try:
            return qpu_of(obj)
        except ConfigError as exc:
            raise PrepareError(f"QPUNode {name}: {exc}") from None
    raise PrepareError(f"no QPUNode is device {device} of pool {pool}")


def prepare(ref: ClaimRef, claim: Mapping[str, Any], resolve: Resolver,
            credentials_host_dir: Path | None = None
            ) -> tuple[PreparedClaim, dict[str, Any] | None]:
    """The prepared claim and its CDI spec (None: no device of this driver in the claim)."""
    allocated = allocated_devices(ref, claim)
    if not allocated:
        return PreparedClaim(ref.uid, ref.namespace, ref.name, ()), None
    qpus: dict[tuple[str, str], QPU] = {}
    for a in allocated:
        if (a.pool, a.device) not in qpus:
            qpus[(a.pool, a.device)] = resolve(a.pool, a.device)
    requests: dict[tuple[str, str], list[str]] = {}
    for a in allocated:
        requests.setdefault((a.pool, a.device), []).append(a.request)
    # CDI names by device; two pools with the same device name in one claim: pool-qualified
    names = [d for _, d in qpus]
    unique = len(set(names)) == len(names)
    label = {key: key[1] if unique else f"{key[0].replace('/', '.')}.{key[1]}" for key in qpus}
    try:
        spec = cdi.claim_spec(ref.uid, [(label[key], qpu) for key, qpu in qpus.items()],
                              credentials_host_dir)
        devices = tuple(PreparedDevice(tuple(requests[key]), key[0], key[1],
                                       (cdi.device_id(ref.uid, label[key]),)) for key in qpus)
    except ValueError as exc:
        raise PrepareError(str(exc)) from None
    return PreparedClaim(ref.uid, ref.namespace, ref.name, devices), spec
