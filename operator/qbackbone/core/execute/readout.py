"""Each QPU's readout calibration: measured once, reused by every job, refreshed when stale.

In ``qbackbone run`` the calibrations live for the run; the operator also seeds them from
(and writes them to) each QPUNode's status, so every job and restart shares one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from qiskit import QuantumCircuit

from qbackbone.core.mitigation.readout import (
    CorrectedDistribution,
    ReadoutCalibration,
    calibration_circuits,
    calibration_from_counts,
    correct_counts,
    measured_qubits,
)
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.core.qpus.descriptor import QPUDescriptor
from qbackbone.core.qpus.fleet import QPU

_CALIBRATIONS: dict[str, ReadoutCalibration] = {}


def calibration_stamp(d: QPUDescriptor) -> str:
    """What a readout calibration depends on: the device, the region and its calibration."""
    taken = (d.calibration.taken_at.isoformat()
             if d.calibration is not None and d.calibration.taken_at is not None else "undated")
    return f"{d.provider}/{d.backend_name} qubits {list(d.region)} calibrated {taken}"


def is_current(calibration: ReadoutCalibration, qpu: QPU, now: datetime,
               max_age_seconds: float) -> bool:
    """Whether a calibration still describes the QPU: same stamp, young enough, same width."""
    return (calibration.qpu_calibration == calibration_stamp(qpu.descriptor)
            and len(calibration.flip_from_0) == qpu.descriptor.qubits
            and (now - calibration.taken_at).total_seconds() <= max_age_seconds)


def remember_calibration(qpu_name: str, calibration: ReadoutCalibration) -> None:
    """Adopt a calibration measured elsewhere (e.g. read from the QPUNode's status)."""
    _CALIBRATIONS[qpu_name] = calibration


def readout_calibration(qpu: QPU, now: datetime, max_age_seconds: float, shots: int,
                        seed: int | None = None) -> ReadoutCalibration:
    """The QPU's current readout calibration, measured now if there is none or it is stale.

    The calibration circuits hold only X and measurements, native on every device, so they
    run uncompiled: qubit i of the region is read into clbit i, with no layout to undo.
    """
    known = _CALIBRATIONS.get(qpu.name)
    if known is not None and is_current(known, qpu, now, max_age_seconds):
        return known
    width = qpu.descriptor.qubits
    counts = qpu.executor.run(calibration_circuits(width), shots,
                              derive_seed(seed, "readout-calibration", qpu.name))
    calibration = calibration_from_counts(counts, width, now, calibration_stamp(qpu.descriptor))
    _CALIBRATIONS[qpu.name] = calibration
    return calibration


def m3_correct(counts: Mapping[str, int], compiled: QuantumCircuit,
               calibration: ReadoutCalibration) -> CorrectedDistribution:
    """M3-correct one QPU's counts of a compiled circuit whose measurements are final."""
    return correct_counts(counts, calibration, measured_qubits(compiled))


def combine_distributions(parts: Sequence[tuple[int, CorrectedDistribution]]
                          ) -> tuple[dict[str, float], float]:
    """Shot-weighted mixture of corrected distributions, and the weighted variance overhead."""
    total = sum(n for n, _ in parts)
    mixed: dict[str, float] = {}
    for n, part in parts:
        for key, p in part.probabilities.items():
            mixed[key] = mixed.get(key, 0.0) + p * n / total
    overhead = sum(n / total * part.mitigation_overhead for n, part in parts)
    return {k: round(v, 6) for k, v in sorted(mixed.items()) if round(v, 6) > 0}, overhead
