"""How long a mitigation level takes to *simulate* on a fake (or noisy Aer) QPU.

On a real QPU a level costs its shot multiplier. Simulated locally, a noisy circuit costs far
more with each qubit (Aer runs density matrices up to 10 qubits, 4^n), and ZNE runs folded
circuits 3x and 5x as long with twirling: measured on fake_torino, GHZ circuits, 4,000 shots,
two bases, 2 cores (benchmarks and docs/mitigation.md):

| qubits | operations | None | Readout | ZNE |
|---:|---:|---:|---:|---:|
| 4 | 24 | 0.4 s | 1.6 s | 5.5 s |
| 6 | 38 | 1.4 s | 3.7 s | 15 s |
| 8 | 52 | 2.2 s | 12 s | 240 s |
| 10 | 66 | 4.3 s | 15 s | 415 s |

The estimates below bound these from above (a level is only chosen when its estimate fits
the job's time), growing 4x per qubit for ZNE and 1.5x for the others.
"""

from __future__ import annotations

from qbackbone.api.mitigation import MitigationLevel

_BASE_SECONDS: dict[MitigationLevel, float] = {"None": 0.5, "Readout": 1.0, "ZNE": 2.0}
_PER_OPERATION: dict[MitigationLevel, float] = {"None": 0.02, "Readout": 0.11, "ZNE": 2.3}
_GROWTH_PER_QUBIT: dict[MitigationLevel, float] = {"None": 1.5, "Readout": 1.5, "ZNE": 4.0}
_REFERENCE_QUBITS = 8
_REFERENCE_SHOTS = 4000


def simulated_seconds(level: MitigationLevel, qubits: int, operations: int, bases: int,
                      shots: int) -> float:
    """Estimated local simulation time of one share at ``level`` (seconds)."""
    scale = _GROWTH_PER_QUBIT[level] ** (qubits - _REFERENCE_QUBITS)
    work = bases * (shots / _REFERENCE_SHOTS) * operations * scale
    return _BASE_SECONDS[level] + _PER_OPERATION[level] * work
