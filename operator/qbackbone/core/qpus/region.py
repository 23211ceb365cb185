"""A device cut down to a QPU's region: a small backend whose simulator carries its noise.

A local run of a full 133-qubit fake device fails (Aer sizes memory by the device's width) or
takes minutes; the QPU's circuits never leave its region, so a BackendV2 over the restricted
target and ``AerSimulator.from_backend`` of it run the same noise on the qubits used, for
circuits compiled for the region (``QPU.transpile``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from qiskit import QuantumCircuit
from qiskit.providers import BackendV2, Options
from qiskit.quantum_info import SparsePauliOp
from qiskit.transpiler import Target
from qiskit_aer import AerSimulator

from qbackbone.core.qpus.descriptor import restrict_target
from qbackbone.core.qpus.devices import fake_backend


class RegionBackend(BackendV2):
    """A backend that only describes a region (its target); it runs nothing itself."""

    def __init__(self, target: Target, name: str) -> None:
        super().__init__(name=name)
        self._region_target = target

    @property
    def target(self) -> Target:
        """The region's target, qubits renumbered 0..k-1."""
        return self._region_target

    @property
    def max_circuits(self) -> None:
        """No limit of its own."""
        return None

    @classmethod
    def _default_options(cls) -> Options:
        return Options()

    def run(self, run_input: Any, **options: Any) -> Any:
        """Not a runnable backend: simulate with :func:`region_simulator`."""
        raise NotImplementedError("a RegionBackend only describes a region")


@functools.lru_cache(maxsize=64)
def region_simulator(device: str, region: tuple[int, ...], method: str = "automatic",
                     branching: bool = True) -> AerSimulator:
    """An Aer simulator with the calibrated noise of ``region`` of fake device ``device``.

    ``branching``: Aer's shot branching groups the shots that draw the same noise (same
    distribution, 7x faster for a noisy 12-qubit statevector run here; Aer runs each shot
    alone without it). It must be off for circuits that measure mid-circuit: with noise,
    Aer 0.17's branching then returns impossible outcomes (a GHZ whose mid-circuit and final
    reads of one qubit disagree in a quarter of the shots) that change from run to run with
    the same seed (tests/unit/test_region_simulator.py keeps this checked).
    """
    target = restrict_target(fake_backend(device).target, list(region))
    simulator = AerSimulator.from_backend(RegionBackend(target, f"{device}{list(region)}"))
    simulator.set_options(method=method, shot_branching_enable=branching)
    return simulator


def measures_mid_circuit(circuit: QuantumCircuit) -> bool:
    """Whether anything acts on a qubit after it was measured, or on a measured result."""
    measured: set[int] = set()
    for inst in circuit.data:
        name = inst.operation.name
        if name == "barrier":
            continue
        qubits = {circuit.find_bit(q).index for q in inst.qubits}
        if qubits & measured or (inst.clbits and name != "measure"):
            return True
        if name == "measure":
            measured |= qubits
    return False


def active_qubits(circuits: Sequence[QuantumCircuit],
                  observables: Sequence[SparsePauliOp] = ()) -> tuple[int, ...]:
    """Qubits any circuit acts on (barriers aside) or any observable reads, in order."""
    used: set[int] = set()
    for circuit in circuits:
        for inst in circuit.data:
            if inst.operation.name != "barrier":
                used.update(circuit.find_bit(q).index for q in inst.qubits)
    for op in observables:
        for pauli in op.paulis:
            used.update(i for i, (z, x) in enumerate(zip(pauli.z, pauli.x, strict=True))
                        if z or x)
    return tuple(sorted(used))


def compact_circuit(circuit: QuantumCircuit, active: Sequence[int]) -> QuantumCircuit:
    """The circuit on ``active`` qubits only, renumbered 0..k-1 (barriers kept on them).

    A compiled circuit spans its whole region, and a barrier over all of it stops Aer from
    dropping idle qubits: a 4-qubit circuit on a 16-qubit region then simulates all 16
    (87 s instead of 0.2 s measured). Only idle qubits go, so the noise is unchanged.
    """
    index = {q: i for i, q in enumerate(active)}
    small = QuantumCircuit(len(active), name=circuit.name)
    for creg in circuit.cregs:
        small.add_register(creg)
    loose = [c for c in circuit.clbits if not circuit.find_bit(c).registers]
    if loose:
        small.add_bits(loose)
    for inst in circuit.data:
        qubits = [circuit.find_bit(q).index for q in inst.qubits]
        if inst.operation.name == "barrier":
            qubits = [q for q in qubits if q in index]
            if not qubits:
                continue
            small.barrier([small.qubits[index[q]] for q in qubits])
            continue
        small.append(inst.operation, [small.qubits[index[q]] for q in qubits], inst.clbits)
    return small


def compact_observable(op: SparsePauliOp, active: Sequence[int]) -> SparsePauliOp:
    """The observable on ``active`` qubits only (it must act as identity elsewhere)."""
    labels = []
    for pauli in op.paulis:
        label = pauli.to_label().lstrip("-i")[::-1]  # qubit 0 first
        labels.append("".join(label[q] for q in active)[::-1])
    return SparsePauliOp(labels, op.coeffs)
