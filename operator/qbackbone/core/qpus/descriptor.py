"""Physics-informed descriptors of a QPU, derived from a backend's Target."""

from __future__ import annotations

import math
import numbers
import statistics
from dataclasses import dataclass, field
from datetime import datetime

from qiskit.circuit import ControlFlowOp
from qiskit.transpiler import InstructionProperties, Target

TWO_QUBIT_GATES = ("ecr", "cz", "cx")


@dataclass(frozen=True)
class Calibration:
    """Per-qubit and per-gate calibration of a device, restricted to the qubits a QPU offers."""

    t1: tuple[float | None, ...]  # seconds, per qubit
    t2: tuple[float | None, ...]
    gate_errors: dict[tuple[str, tuple[int, ...]], float]
    gate_durations: dict[tuple[str, tuple[int, ...]], float]  # seconds
    two_qubit_gate: str | None
    taken_at: datetime | None = None

    def _median(self, values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    def median_t1(self) -> float | None:
        """Median T1 in seconds."""
        return self._median([t for t in self.t1 if t])

    def median_t2(self) -> float | None:
        """Median T2 in seconds."""
        return self._median([t for t in self.t2 if t])

    def median_error(self, kind: str) -> float | None:
        """Median error of '1q' gates, '2q' gates or 'readout'."""
        return self._median([e for (name, qargs), e in self.gate_errors.items()
                             if _kind(name, qargs) == kind])

    def median_duration(self, kind: str) -> float | None:
        """Median duration in seconds of '1q' gates, '2q' gates or 'readout'."""
        return self._median([d for (name, qargs), d in self.gate_durations.items()
                             if _kind(name, qargs) == kind])


def _kind(name: str, qargs: tuple[int, ...]) -> str:
    if name == "measure":
        return "readout"
    if len(qargs) == 2:
        return "2q"
    if len(qargs) == 1 and name not in ("delay", "reset", "id", "rz"):
        return "1q"
    return "other"


@dataclass(frozen=True)
class QPUDescriptor:
    """What the QIP and scheduler know about one QPU."""

    name: str
    provider: str
    backend_name: str
    qubits: int
    device_qubits: int
    ideal: bool
    shot_time: float  # seconds per shot
    setup_time: float  # seconds per fragment
    max_depth: int | None  # two-qubit depth; None means unbounded (ideal simulators)
    max_depth_derived: bool
    calibration: Calibration | None
    coupling: tuple[tuple[int, int], ...] = ()
    region: tuple[int, ...] = ()  # device qubit of each offered qubit
    site: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    cordoned: bool = False
    queue_depth: int = 0
    supports_control_flow: bool = True


def restrict_target(target: Target, region: list[int]) -> Target:
    """A Target over ``region`` only, renumbered 0..len-1 (the qubits a QPUNode offers)."""
    index = {device: local for local, device in enumerate(region)}
    props = target.qubit_properties
    restricted = Target(
        num_qubits=len(region),
        dt=target.dt,
        qubit_properties=[props[q] for q in region] if props else None,
        concurrent_measurements=None,
    )
    for name in target.operation_names:
        operation = target.operation_from_name(name)
        if isinstance(operation, type | ControlFlowOp):
            restricted.add_instruction(operation, name=name)
            continue
        mapped: dict[tuple[int, ...] | None, InstructionProperties | None] = {}
        for qargs, inst_props in (target[name] or {}).items():
            if qargs is None:
                mapped[None] = inst_props
            elif all(q in index for q in qargs):
                mapped[tuple(index[q] for q in qargs)] = inst_props
        restricted.add_instruction(operation, mapped, name=name)
    return restricted


def calibration_from_target(target: Target, taken_at: datetime | None = None) -> Calibration:
    """Per-qubit coherence and per-instruction errors and durations of a target."""
    props = target.qubit_properties or [None] * target.num_qubits
    errors: dict[tuple[str, tuple[int, ...]], float] = {}
    durations: dict[tuple[str, tuple[int, ...]], float] = {}
    two_qubit = next((g for g in TWO_QUBIT_GATES if g in target.operation_names), None)
    for name in target.operation_names:
        inst_map = target.get(name, None)
        for qargs, inst_props in (inst_map or {}).items():
            if qargs is None or inst_props is None:
                continue
            error, duration = _number(inst_props.error), _number(inst_props.duration)
            if error is not None and error <= 1:  # a probability; anything else is unknown
                errors[(name, tuple(qargs))] = error
            if duration is not None:
                durations[(name, tuple(qargs))] = duration
    return Calibration(
        t1=tuple(_number(p.t1) or None if p is not None else None for p in props),
        t2=tuple(_number(p.t2) or None if p is not None else None for p in props),
        gate_errors=errors,
        gate_durations=durations,
        two_qubit_gate=two_qubit,
        taken_at=taken_at,
    )


def _number(value: object) -> float | None:
    """A calibration figure when it is a finite non-negative number, else None (unknown):
    backends report missing entries as None and, now and then, as NaN or negative."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def best_region(target: Target, size: int) -> list[int]:
    """A connected set of ``size`` device qubits with low errors, grown greedily.

    Starts at the qubit with the best readout, then repeatedly adds the neighbour reached by
    the lowest-error two-qubit link. Used when a QPUNode offers fewer qubits than its device.
    """
    n = target.num_qubits
    if size >= n:
        return list(range(n))
    cal = calibration_from_target(target)
    link_error: dict[tuple[int, int], float] = {}
    for (name, qargs), err in cal.gate_errors.items():
        if len(qargs) == 2 and name == cal.two_qubit_gate:
            a, b = sorted(qargs)
            link_error[(a, b)] = min(err, link_error.get((a, b), 1.0))
    readout = {q[0]: e for (name, q), e in cal.gate_errors.items() if name == "measure"}
    start = min(range(n), key=lambda q: (readout.get(q, 1.0), q))
    region = [start]
    chosen = {start}
    while len(region) < size:
        frontier = [
            (err, b if a in chosen else a)
            for (a, b), err in link_error.items()
            if (a in chosen) != (b in chosen)
        ]
        if not frontier:
            break
        _, nxt = min(frontier)
        region.append(nxt)
        chosen.add(nxt)
    return sorted(region)
