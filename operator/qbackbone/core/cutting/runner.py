"""The runner protocol the pipeline implements, and an ideal seeded Aer runner for tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from qiskit import QuantumCircuit

from .readout import MeasuredCounts


class SubcircuitRunner(Protocol):
    """Runs one subcircuit's circuits (logical, measured) as one backend call."""

    def run(
        self, subcircuit: str, circuits: Sequence[QuantumCircuit], shots: Sequence[int]
    ) -> Sequence[dict[str, int] | MeasuredCounts]:
        """Counts per circuit; keys are bitstrings over all clbits, clbit 0 rightmost. Counts
        that carry their QPU's readout model (:class:`.readout.MeasuredCounts`) are corrected
        in reconstruction."""
        ...


def merge_counts(parts: Sequence[Sequence[dict[str, int]]]) -> list[dict[str, int]]:
    """Merge counts of shot-split fragments of the same circuit list (elementwise sum)."""
    if not parts:
        return []
    lengths = {len(p) for p in parts}
    if len(lengths) != 1:
        raise ValueError(f"fragments disagree on the number of circuits: {sorted(lengths)}")
    merged: list[dict[str, int]] = [{} for _ in parts[0]]
    for part in parts:
        for acc, counts in zip(merged, part, strict=True):
            for key, value in counts.items():
                acc[key] = acc.get(key, 0) + int(value)
    return merged


class AerRunner:
    """Ideal (noiseless) reference runner: Aer's SamplerV2, seeded, one call per subcircuit."""

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self._entropy = np.random.SeedSequence(seed).entropy
        self.calls: list[tuple[str, int, int]] = []  # (subcircuit, circuits, shots)

    def run(
        self, subcircuit: str, circuits: Sequence[QuantumCircuit], shots: Sequence[int]
    ) -> list[dict[str, int]]:
        """Counts per circuit (circuits with zero shots get empty counts)."""
        from qiskit_aer.primitives import SamplerV2

        if len(circuits) != len(shots):
            raise ValueError(f"{len(circuits)} circuits but {len(shots)} shot counts")
        call = len(self.calls)
        self.calls.append((subcircuit, len(circuits), int(sum(shots))))
        out: list[dict[str, int]] = [{} for _ in circuits]
        # Aer's SamplerV2 runs each distinct shot count as its own backend job with the SAME
        # seed, so circuits with different shot counts would share one random stream (and
        # seed + call index overlaps between calls and runners). One independent seed per
        # (runner, call, shot count) keeps every circuit's samples independent.
        by_shots: dict[int, list[int]] = {}
        for i, s in enumerate(shots):
            if s > 0:
                by_shots.setdefault(int(s), []).append(i)
        for group, (count, todo) in enumerate(by_shots.items()):
            seq = np.random.SeedSequence(self._entropy, spawn_key=(call, group))
            sampler = SamplerV2(seed=int(seq.generate_state(1)[0] & 0x7FFFFFFF))
            result = sampler.run([(circuits[i], None, count) for i in todo]).result()
            for i, pub in zip(todo, result, strict=True):
                out[i] = _pub_counts(circuits[i], pub.data)
        return out


def _pub_counts(circuit: QuantumCircuit, data: object) -> dict[str, int]:
    width = circuit.num_clbits
    rows: np.ndarray | None = None
    for creg in circuit.cregs:
        bits = getattr(data, creg.name).to_bool_array(order="little")
        if rows is None:
            rows = np.zeros((bits.shape[0], width), dtype=np.uint8)
        for k, clbit in enumerate(creg):
            rows[:, circuit.find_bit(clbit).index] = bits[:, k]
    if rows is None:
        raise ValueError("circuit has no classical registers to count")
    uniq, counts = np.unique(rows[:, ::-1], axis=0, return_counts=True)
    return {"".join(map(str, row)): int(c) for row, c in zip(uniq, counts, strict=True)}
