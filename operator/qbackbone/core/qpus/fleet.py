"""The fleet: QPUs built from QPUNode objects, or the built-in default fleet."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from typing import Any

from qiskit import QuantumCircuit, transpile
from qiskit.transpiler import Target
from qiskit_aer import AerSimulator

from qbackbone.api.conditions import Reason
from qbackbone.api.manifests import load_manifests
from qbackbone.api.qpunode import CalibrationSnapshot, QPUNode, QPUNodeSpec
from qbackbone.core.errors import JobFailure
from qbackbone.core.qpus.backends import AerExecutor, Executor, IBMRuntimeExecutor, RegionExecutor
from qbackbone.core.qpus.descriptor import (
    QPUDescriptor,
    best_region,
    calibration_from_target,
    restrict_target,
)
from qbackbone.core.qpus.devices import fake_backend
from qbackbone.core.qpus.fidelity import derive_max_depth

DEFAULT_AER_QUBITS = 24
_IDEAL_SIMULATOR = AerSimulator()  # its target accepts every gate Aer simulates
AER_SHOT_TIME = 20e-6
AER_SETUP_TIME = 0.05
DEVICE_SETUP_TIME = 1.0
DEFAULT_REP_DELAY = 250e-6


@dataclass(frozen=True)
class QPU:
    """A QPU ready to use: what it is (descriptor), how to compile for it, how to run on it."""

    descriptor: QPUDescriptor
    target: Target | None  # None: an ideal simulator needs no routing
    executor: Executor
    spec: QPUNodeSpec | None = None  # the QPUNode's spec it was built from (its DRA device)

    @property
    def name(self) -> str:
        """The QPUNode name."""
        return self.descriptor.name

    def transpile(self, circuits: Sequence[QuantumCircuit], seed: int = 7) -> list[QuantumCircuit]:
        """Compile for this QPU (layout and routing on its offered qubits)."""
        if self.target is None:
            return list(transpile(list(circuits), backend=_IDEAL_SIMULATOR, optimization_level=1,
                                  seed_transpiler=seed))
        return list(transpile(list(circuits), target=self.target, optimization_level=1,
                              seed_transpiler=seed))

    def calibration_snapshot(self) -> CalibrationSnapshot | None:
        """Medians for QPUNode status."""
        cal = self.descriptor.calibration
        if cal is None:
            return None

        def us(value: float | None) -> float | None:
            return None if value is None else round(value * 1e6, 3)

        dur = cal.median_duration("2q")
        return CalibrationSnapshot(
            median_t1_us=us(cal.median_t1()), median_t2_us=us(cal.median_t2()),
            median_1q_error=cal.median_error("1q"), median_2q_error=cal.median_error("2q"),
            median_readout_error=cal.median_error("readout"),
            median_2q_duration_ns=None if dur is None else round(dur * 1e9, 1),
            two_qubit_gate=cal.two_qubit_gate, taken_at=cal.taken_at,
        )


def _edges(target: Target) -> tuple[tuple[int, int], ...]:
    coupling = target.build_coupling_map()
    return () if coupling is None else tuple((a, b) for a, b in coupling.get_edges())


def _taken_at(device_name: str) -> datetime | None:
    try:
        props = fake_backend(device_name).properties()
        return props.last_update_date if props is not None else None
    except Exception:  # calibration dates are informative only
        return None


def build_qpu(node: QPUNode) -> QPU:
    """A usable QPU from a QPUNode; JobFailure(BackendUnavailable) when it cannot be built."""
    spec = node.spec
    backend = spec.backend
    device_name = backend.name if backend.provider == "fake" else backend.options.noise_from
    if backend.provider == "ibm-runtime":
        raise JobFailure(
            Reason.BACKEND_UNAVAILABLE,
            f"QPU {node.metadata.name}: ibm-runtime backends need the cloud service, which the "
            "embedded runner only reaches with a token and network access",
        )
    common: dict[str, Any] = dict(
        name=node.metadata.name, provider=backend.provider, backend_name=backend.name,
        site=spec.site, labels=dict(node.metadata.labels), cordoned=spec.cordoned)
    if device_name is None or (backend.provider == "fake" and not backend.options.noise):
        qubits = spec.qubits or DEFAULT_AER_QUBITS
        if device_name is not None:
            qubits = min(qubits, fake_backend(device_name).num_qubits)
        descriptor = QPUDescriptor(
            **common, qubits=qubits, device_qubits=qubits, ideal=True,
            shot_time=spec.shot_time or AER_SHOT_TIME,
            setup_time=AER_SETUP_TIME if spec.setup_time is None else spec.setup_time,
            max_depth=spec.max_depth, max_depth_derived=False, calibration=None,
        )
        return QPU(descriptor, None, AerExecutor(method=backend.options.method))
    device = fake_backend(device_name)
    qubits = spec.qubits or device.num_qubits
    if qubits > device.num_qubits:
        raise JobFailure(
            Reason.BACKEND_UNAVAILABLE,
            f"QPU {node.metadata.name}: spec.qubits {qubits} exceeds the {device.num_qubits} "
            f"qubits of {device_name}",
        )
    region = best_region(device.target, qubits)
    target = restrict_target(device.target, region)
    cal = calibration_from_target(target, taken_at=_taken_at(device_name))
    rep_delay = getattr(device.configuration(), "default_rep_delay", None) or DEFAULT_REP_DELAY
    readout = cal.median_duration("readout") or 0.0
    derived = derive_max_depth(cal)
    executor = RegionExecutor(device_name, region, runtime_sampler=backend.provider == "fake",
                              method=backend.options.method)
    descriptor = QPUDescriptor(
        **common, qubits=qubits, device_qubits=device.num_qubits, ideal=False,
        shot_time=spec.shot_time or (rep_delay + readout),
        setup_time=DEVICE_SETUP_TIME if spec.setup_time is None else spec.setup_time,
        max_depth=spec.max_depth or derived, max_depth_derived=spec.max_depth is None,
        calibration=cal, region=tuple(region),
        coupling=_edges(target),
        supports_control_flow="if_else" in target.operation_names,
    )
    return QPU(descriptor, target, executor)


def ibm_runtime_qpu(node: QPUNode, target: Target, device_qubits: int) -> QPU:
    """A QPU on a real IBM backend whose target was fetched from the service (operator use)."""
    spec = node.spec
    region = best_region(target, spec.qubits or target.num_qubits)
    restricted = restrict_target(target, region)
    cal = calibration_from_target(restricted)
    descriptor = QPUDescriptor(
        name=node.metadata.name, provider="ibm-runtime", backend_name=spec.backend.name,
        qubits=len(region), device_qubits=device_qubits, ideal=False,
        shot_time=spec.shot_time or DEFAULT_REP_DELAY,
        setup_time=DEVICE_SETUP_TIME if spec.setup_time is None else spec.setup_time,
        max_depth=spec.max_depth or derive_max_depth(cal), max_depth_derived=not spec.max_depth,
        calibration=cal, region=tuple(region), site=spec.site, labels=dict(node.metadata.labels),
        cordoned=spec.cordoned,
    )
    executor = IBMRuntimeExecutor(spec.backend.name, spec.backend.options.instance, region,
                                  device_qubits)
    return QPU(descriptor, restricted, executor)


@functools.cache
def default_fleet_nodes() -> tuple[QPUNode, ...]:
    """The QPUNodes of the built-in default fleet (package data default-fleet.yaml)."""
    path = resources.files("qbackbone") / "data" / "default-fleet.yaml"
    with resources.as_file(path) as file:
        return tuple(load_manifests([file]).qpus)


_BUILT: dict[str, QPU] = {}


def build_fleet(nodes: Sequence[QPUNode]) -> list[QPU]:
    """QPUs for the nodes (cached per spec, since building a device takes a second)."""
    fleet = []
    for node in nodes:
        key = node.metadata.name + node.spec.model_dump_json()
        if key not in _BUILT:
            _BUILT[key] = replace(build_qpu(node), spec=node.spec)
        qpu = _BUILT[key]
        status = node.status
        if status is not None and status.queue_depth:
            qpu = replace(qpu, descriptor=replace(qpu.descriptor, queue_depth=status.queue_depth))
        fleet.append(qpu)
    return fleet
