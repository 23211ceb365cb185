"""Readout calibration of a QPU and M3 readout mitigation of counts (``mthree``).

A calibration prepares all-0 and all-1 on the QPU's qubits and records each qubit's flip
probabilities P(1|0) and P(0|1) (the tensored model M3's ``independent`` calibration uses).
It belongs to the QPU: it is measured once, reused by every job and refreshed when the
QPU's calibration changes or it ages. Correction is M3's: the assignment matrix restricted
to the observed bitstrings, solved iteratively, then the nearest probability distribution.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from qiskit import QuantumCircuit


@dataclass(frozen=True)
class ReadoutCalibration:
    """Per-qubit readout flip probabilities of a QPU's region (qubits 0..k-1)."""

    flip_from_0: tuple[float, ...]  # P(read 1 | prepared 0)
    flip_from_1: tuple[float, ...]  # P(read 0 | prepared 1)
    shots: int
    taken_at: datetime
    qpu_calibration: str  # the QPU calibration it was measured under (refresh when it moves)

    def matrices(self) -> list[np.ndarray]:
        """M3's single-qubit assignment matrices [[P(0|0), P(0|1)], [P(1|0), P(1|1)]]."""
        return [np.array([[1.0 - e0, e1], [e0, 1.0 - e1]])
                for e0, e1 in zip(self.flip_from_0, self.flip_from_1, strict=True)]

    def readout_fidelity(self, qubits: Sequence[int]) -> float:
        """Probability that reading ``qubits`` flips none of them (mean of both flips)."""
        return math.prod(1.0 - 0.5 * (self.flip_from_0[q] + self.flip_from_1[q])
                         for q in qubits)


def calibration_circuits(width: int) -> list[QuantumCircuit]:
    """All-0 and all-1 preparations, every qubit measured into clbit of the same index."""
    zeros = QuantumCircuit(width, width, name="readout-cal-0")
    ones = QuantumCircuit(width, width, name="readout-cal-1")
    ones.x(range(width))
    for circuit in (zeros, ones):
        circuit.measure(range(width), range(width))
    return [zeros, ones]


def calibration_from_counts(counts: Sequence[Mapping[str, int]], width: int, taken_at: datetime,
                            qpu_calibration: str) -> ReadoutCalibration:
    """The flip probabilities from the counts of :func:`calibration_circuits`."""
    zeros, ones = counts
    shots = sum(zeros.values())

    def rate(c: Mapping[str, int], qubit: int, read: str) -> float:
        total = sum(c.values())
        return sum(n for key, n in c.items() if key.replace(" ", "")[::-1][qubit] == read) / total

    return ReadoutCalibration(
        flip_from_0=tuple(round(rate(zeros, q, "1"), 6) for q in range(width)),
        flip_from_1=tuple(round(rate(ones, q, "0"), 6) for q in range(width)),
        shots=shots, taken_at=taken_at, qpu_calibration=qpu_calibration)


@dataclass(frozen=True)
class CorrectedDistribution:
    """A readout-mitigated distribution and what mitigation cost in variance."""

    probabilities: dict[str, float]
    mitigation_overhead: float  # variance multiplier of expectation values (M3's overhead)


def measured_qubits(circuit: QuantumCircuit) -> dict[int, int]:
    """clbit -> qubit of the last measurement into each clbit of a compiled circuit (its
    final measurements: the pipeline only corrects circuits whose measurements are final)."""
    mapping: dict[int, int] = {}
    for inst in circuit.data:
        if inst.operation.name == "measure":
            mapping[circuit.find_bit(inst.clbits[0]).index] = circuit.find_bit(
                inst.qubits[0]).index
    return dict(sorted(mapping.items()))


def correct_counts(counts: Mapping[str, int], calibration: ReadoutCalibration,
                   clbit_qubits: Mapping[int, int]) -> CorrectedDistribution:
    """M3-correct ``counts`` whose clbit i was read from qubit ``clbit_qubits[i]``."""
    import mthree

    mitigator = mthree.M3Mitigation()
    mitigator.single_qubit_cals = calibration.matrices()
    quasi = mitigator.apply_correction(dict(counts), dict(clbit_qubits),
                                       return_mitigation_overhead=True)
    nearest = quasi.nearest_probability_distribution()
    return CorrectedDistribution({k: float(v) for k, v in sorted(nearest.items()) if v > 0},
                                 float(quasi.mitigation_overhead))
