"""One QPUNode object (a plain dict, as the API returns it) -> one DRA device of driver
``qpu.qbackbone.io``, with the QPU's calibration as typed attributes.

Pure: no kubernetes imports, no I/O. DRA attributes have no float type, so physics is
published as scaled integers (docs/dra.md lists every attribute and its unit):

* times in microseconds (``t1Us``, ``t2Us``), gate errors in parts per million
  (``error1qPpm``, ``error2qPpm``, ``readoutErrorPpm``: 1e-2 -> 10000), calibration time in
  Unix seconds (``calibratedAt``);
* every device carries the same attribute names, because a CEL selector that reads an attribute
  a device lacks is a runtime error that fails the whole claim's allocation. Ideal simulators
  (no noise) therefore publish errors 0, ``ideal: true`` and ``UNBOUNDED`` for T1, T2 and max
  depth; a site-less QPU publishes ``site: ""``.

A QPUNode that cannot be published (not Ready, no or absurd calibration, a name no attribute
can hold, ...) raises :class:`Unpublishable` with a CamelCase reason; the publisher logs it and
skips that device.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from qbackbone.api.qpunode import CalibrationSnapshot

DRIVER = "qpu.qbackbone.io"  # driver name, attribute domain and DeviceClass name

# Attribute names (unprefixed names belong to the driver's domain: in CEL,
# device.attributes["qpu.qbackbone.io"].<name>).
QPU, QUBITS, DEVICE_QUBITS = "qpu", "qubits", "deviceQubits"
T1_US, T2_US = "t1Us", "t2Us"
ERROR_1Q_PPM, ERROR_2Q_PPM, READOUT_ERROR_PPM = "error1qPpm", "error2qPpm", "readoutErrorPpm"
MAX_DEPTH, CALIBRATED_AT = "maxDepth", "calibratedAt"
PROVIDER, BACKEND, SITE, TECHNOLOGY, IDEAL = "provider", "backend", "site", "technology", "ideal"
ATTRIBUTE_NAMES = (QPU, QUBITS, DEVICE_QUBITS, T1_US, T2_US, ERROR_1Q_PPM, ERROR_2Q_PPM,
                   READOUT_ERROR_PPM, MAX_DEPTH, CALIBRATED_AT, PROVIDER, BACKEND, SITE,
                   TECHNOLOGY, IDEAL)

# "No limit" for T1, T2 and max depth of ideal simulators (and a derived depth that is
# unbounded): 10^12 (microseconds: 11.6 days), so ``t1Us >= 100`` holds and arithmetic in CEL
# stays far from int64 overflow.
UNBOUNDED = 10**12
MAX_STRING = 64  # DRA string attribute values
MAX_QUBITS = 1_000_000
MAX_DEPTH_LIMIT = 1_000_000_000  # QPUNode spec.maxDepth's bound
MAX_TIME_US = float(UNBOUNDED)  # a larger T1/T2 is not a calibration
MAX_UNIX_SECONDS = 253_402_300_799  # 9999-12-31

# Technology by provider: fake devices are snapshots of IBM superconducting QPUs; Aer is a
# classical simulator (with or without a device's noise).
TECHNOLOGY_OF = {"aer": "simulator", "fake": "superconducting", "ibm-runtime": "superconducting"}

# The wire names of status.calibration's fields (the API model's aliases, e.g. median2QError).
_CAL = {field: info.alias or field for field, info in CalibrationSnapshot.model_fields.items()}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^(?=.{1,63}$)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(?=.{0,63}$)([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


class Unpublishable(ValueError):
    """This QPUNode cannot be a device; ``reason`` is CamelCase, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason, self.message = reason, message


@dataclass(frozen=True)
class Placement:
    """Where a device is reachable: one node (``node``), the nodes matching ``selector``, or
    every node (both None)."""

    node: str | None = None
    selector: tuple[tuple[str, str], ...] | None = None


@dataclass(frozen=True)
class Device:
    """One published device: the QPUNode it stands for, where it is reachable, and the
    ResourceSlice ``devices[]`` entry."""

    qpunode: str
    placement: Placement
    entry: Mapping[str, Any] = field(hash=False)

    @property
    def name(self) -> str:
        return str(self.entry["name"])


def device_name(qpunode: str) -> str:
    """A DNS label (unique per pool) for a QPUNode name: the name itself when it is one, else a
    lower-cased, cleaned prefix with 8 hex digits of its SHA-256 (so ``a.b`` and ``a-b`` differ)."""
    if _DNS_LABEL.match(qpunode):
        return qpunode
    cleaned = re.sub(r"[^a-z0-9-]+", "-", qpunode.lower()).strip("-")[:54].rstrip("-")
    digest = hashlib.sha256(qpunode.encode()).hexdigest()[:8]
    return f"{cleaned}-{digest}" if cleaned else f"qpu-{digest}"


def is_ready(obj: Mapping[str, Any]) -> bool:
    """The QPUNode's Ready condition is True (cordoned, invalid or unevaluated: False)."""
    conditions = _mapping(obj.get("status")).get("conditions")
    if not isinstance(conditions, list):
        return False
    return any(isinstance(c, Mapping) and c.get("type") == "Ready" and c.get("status") == "True"
               for c in conditions)


def is_ideal(spec: Mapping[str, Any]) -> bool:
    """The QPU simulates without noise (as ``core/qpus/fleet.py`` decides): aer without
    ``noiseFrom``, or a fake device with ``noise: false``."""
    backend = _mapping(spec.get("backend"))
    options = _mapping(backend.get("options"))
    provider = backend.get("provider")
    if provider == "aer":
        return not options.get("noiseFrom")
    return provider == "fake" and options.get("noise") is False


def placement_of(spec: Mapping[str, Any]) -> Placement:
    """``spec.nodeName`` (hosted QPU), else ``spec.nodeSelector`` (QPU reachable from the
    labelled nodes), else every node (network-attached or cloud QPU)."""
    node = spec.get("nodeName")
    if node:
        if not isinstance(node, str) or not _DNS_SUBDOMAIN.match(node):
            raise Unpublishable("InvalidNodeName",
                                f"spec.nodeName {_short(node)} is not a node name")
        return Placement(node=node)
    selector = spec.get("nodeSelector")
    if selector:
        if not isinstance(selector, Mapping):
            raise Unpublishable("InvalidNodeSelector", "spec.nodeSelector is not a map")
        pairs = []
        for key, value in selector.items():
            if not (isinstance(key, str) and _label_key_ok(key) and isinstance(value, str)
                    and _LABEL_VALUE.match(value)):
                raise Unpublishable("InvalidNodeSelector",
                                    f"spec.nodeSelector {_short(key)}={_short(value)} is not a "
                                    "valid label")
            pairs.append((key, value))
        return Placement(selector=tuple(sorted(pairs)))
    return Placement()


def device_of(obj: Mapping[str, Any]) -> Device:
    """The device for a Ready QPUNode; :class:`Unpublishable` when it cannot be one."""
    meta, spec = _mapping(obj.get("metadata")), _mapping(obj.get("spec"))
    status = _mapping(obj.get("status"))
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise Unpublishable("InvalidName", "the QPUNode has no name")
    if len(name) > MAX_STRING:
        raise Unpublishable("NameTooLong", f"the name has {len(name)} characters; the `qpu` "
                            f"attribute holds at most {MAX_STRING}")
    if not is_ready(obj):
        raise Unpublishable("NotReady", "the QPUNode is not Ready")
    backend = _mapping(spec.get("backend"))
    provider, backend_name = backend.get("provider"), backend.get("name")
    if not isinstance(provider, str) or provider not in TECHNOLOGY_OF:
        raise Unpublishable("InvalidBackend", f"unknown provider {_short(provider)}")
    placement = placement_of(spec)
    ideal = is_ideal(spec)

    device_qubits = _int(status.get("deviceQubits"), "status.deviceQubits", 1, MAX_QUBITS,
                         required=False)
    qubits = _int(spec.get("qubits"), "spec.qubits", 1, MAX_QUBITS, required=False)
    if qubits is None:
        qubits = device_qubits
    elif device_qubits is not None:
        qubits = min(qubits, device_qubits)
    if qubits is None:
        raise Unpublishable("MissingCalibration", "neither spec.qubits nor status.deviceQubits")

    attributes: dict[str, dict[str, Any]] = {
        QPU: {"string": name},
        QUBITS: {"int": qubits},
        DEVICE_QUBITS: {"int": device_qubits if device_qubits is not None else qubits},
        PROVIDER: {"string": provider},
        BACKEND: {"string": _string(backend_name, "spec.backend.name")},
        SITE: {"string": _string(spec.get("site") or "", "spec.site")},
        TECHNOLOGY: {"string": TECHNOLOGY_OF[provider]},
        IDEAL: {"bool": ideal},
    }
    max_depth = _int(spec.get("maxDepth"), "spec.maxDepth", 1, MAX_DEPTH_LIMIT, required=False)
    if ideal:
        attributes.update({T1_US: {"int": UNBOUNDED}, T2_US: {"int": UNBOUNDED},
                           ERROR_1Q_PPM: {"int": 0}, ERROR_2Q_PPM: {"int": 0},
                           READOUT_ERROR_PPM: {"int": 0}, CALIBRATED_AT: {"int": 0}})
    else:
        cal = status.get("calibration")
        if not isinstance(cal, Mapping) or not cal:
            raise Unpublishable("MissingCalibration", "a noisy QPU without status.calibration")
        attributes.update({
            T1_US: {"int": _time_us(cal, "median_t1_us")},
            T2_US: {"int": _time_us(cal, "median_t2_us")},
            ERROR_1Q_PPM: {"int": _ppm(cal, "median_1q_error")},
            ERROR_2Q_PPM: {"int": _ppm(cal, "median_2q_error")},
            READOUT_ERROR_PPM: {"int": _ppm(cal, "median_readout_error")},
            CALIBRATED_AT: {"int": _unix_seconds(cal.get(_CAL["taken_at"]))},
        })
        if max_depth is None:
            max_depth = _int(status.get("derivedMaxDepth"), "status.derivedMaxDepth", 1,
                             MAX_DEPTH_LIMIT, required=False)
    attributes[MAX_DEPTH] = {"int": UNBOUNDED if max_depth is None else max_depth}
    entry = {"name": device_name(name), "attributes": dict(sorted(attributes.items()))}
    return Device(qpunode=name, placement=placement, entry=entry)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _label_key_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    return bool(_LABEL_NAME.match(name)) and (not prefix or bool(_DNS_SUBDOMAIN.match(prefix)))


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise Unpublishable("InvalidAttribute", f"{what} is not a string")
    if len(value) > MAX_STRING:
        raise Unpublishable("InvalidAttribute",
                            f"{what} has {len(value)} characters; DRA strings hold {MAX_STRING}")
    return value


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unpublishable("InvalidCalibration", f"{what} is {_short(value)}, not a number")
    number = float(value) if not isinstance(value, int) or abs(value) < 2**63 else math.inf
    if not math.isfinite(number):
        raise Unpublishable("InvalidCalibration", f"{what} is {_short(value)}, not finite")
    return number


def _int(value: Any, what: str, low: int, high: int, required: bool = True) -> int | None:
    if value is None and not required:
        return None
    number = _number(value, what)
    if number != int(number) or not low <= number <= high:
        raise Unpublishable("InvalidCalibration",
                            f"{what} is {_short(value)}; expected an integer in [{low}, {high}]")
    return int(number)


def _calibration(cal: Mapping[str, Any], field: str) -> tuple[str, float]:
    """The calibration value ``field`` (its API name, and the number), present and finite."""
    what = _CAL[field]
    value = cal.get(what)
    if value is None:
        raise Unpublishable("MissingCalibration", f"status.calibration.{what} is missing")
    return what, _number(value, f"status.calibration.{what}")


def _time_us(cal: Mapping[str, Any], field: str) -> int:
    what, number = _calibration(cal, field)
    if not 0 < number <= MAX_TIME_US:
        raise Unpublishable("InvalidCalibration",
                            f"status.calibration.{what} is {number:g} us; expected (0, 1e12]")
    return max(1, round(number))


def _ppm(cal: Mapping[str, Any], field: str) -> int:
    what, number = _calibration(cal, field)
    if not 0 <= number <= 1:
        raise Unpublishable("InvalidCalibration",
                            f"status.calibration.{what} is {number:g}; expected [0, 1]")
    return round(number * 1_000_000)


def _unix_seconds(value: Any) -> int:
    """``takenAt`` (RFC 3339) in Unix seconds; 0 when absent or unreadable."""
    if not isinstance(value, str) or len(value) > 64:
        return 0
    try:
        taken = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if taken.tzinfo is None:
            taken = taken.replace(tzinfo=UTC)
        seconds = taken.timestamp()
    except (ValueError, OverflowError, OSError):
        return 0
    return int(seconds) if 0 <= seconds <= MAX_UNIX_SECONDS else 0
