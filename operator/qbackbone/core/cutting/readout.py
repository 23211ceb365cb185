"""Readout-mitigated counts of cut subexperiments: the tensored inverse, shot by shot.

A cut subexperiment's value is a parity over some of its clbits, mid-circuit (QPD or LOCC
measurements) and final ones alike. With independent readout errors of flip probabilities
``p0 = P(1|0)`` and ``p1 = P(0|1)``, a read sign ``r = (-1)^m`` has ``E[r | s] = a + b s`` for
the true sign ``s``, ``a = p1 - p0`` and ``b = 1 - p0 - p1``. So ``(r - a) / b`` is an unbiased
estimate of ``s``, and the product of these over a parity's clbits is an unbiased estimate of
the true parity: the tensored readout inverse M3 also solves, applied to each shot, so it holds
for mid-circuit measurements and needs no extra circuits. Its variance comes from the corrected
products themselves (larger than the raw parities': that is the mitigation's cost).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from qbackbone.core.circuits.observables import parity_std_error

# Below this a qubit's readout says (almost) nothing about its state: dividing by b would only
# amplify noise without bound, so such a calibration is refused rather than used.
MIN_READOUT_CONTRAST = 0.2


class ReadoutModelError(ValueError):
    """A readout calibration that cannot correct these counts (too noisy, wrong width)."""


@dataclass(frozen=True)
class ClbitReadout:
    """Each clbit's readout model for one circuit on one QPU: ``E[r | s] = a + b s``."""

    offset: tuple[float, ...]  # a = p1 - p0 per clbit (0 for a clbit never measured)
    contrast: tuple[float, ...]  # b = 1 - p0 - p1 per clbit (1 for a clbit never measured)

    @classmethod
    def from_flips(cls, flip_from_0: Sequence[float], flip_from_1: Sequence[float],
                   clbit_qubits: Mapping[int, int], num_clbits: int) -> ClbitReadout:
        """The model of a circuit whose clbit ``i`` was read from qubit ``clbit_qubits[i]``."""
        offset, contrast = [0.0] * num_clbits, [1.0] * num_clbits
        for clbit, qubit in clbit_qubits.items():
            if not 0 <= clbit < num_clbits or not 0 <= qubit < len(flip_from_0):
                raise ReadoutModelError(f"clbit {clbit} read from qubit {qubit}: outside the "
                                        f"calibrated {len(flip_from_0)} qubits")
            p0, p1 = float(flip_from_0[qubit]), float(flip_from_1[qubit])
            if 1.0 - p0 - p1 < MIN_READOUT_CONTRAST:
                raise ReadoutModelError(f"qubit {qubit} reads its state with contrast "
                                        f"{1.0 - p0 - p1:.3f} < {MIN_READOUT_CONTRAST}")
            offset[clbit], contrast[clbit] = p1 - p0, 1.0 - p0 - p1
        return cls(tuple(offset), tuple(contrast))


@dataclass
class MeasuredCounts:
    """One circuit's counts, in parts that ran on different QPUs, each with its readout
    model (None: taken as read, e.g. an ideal simulator's)."""

    parts: list[tuple[dict[str, int], ClbitReadout | None]] = field(default_factory=list)

    @property
    def shots(self) -> int:
        return sum(sum(c.values()) for c, _ in self.parts)

    def raw(self) -> dict[str, int]:
        """The counts of all parts added up, as read."""
        merged: dict[str, int] = {}
        for counts, _ in self.parts:
            for key, n in counts.items():
                merged[key] = merged.get(key, 0) + n
        return merged

    def signs(self) -> tuple[np.ndarray, np.ndarray]:
        """Per distinct (outcome, part): each clbit's estimated true sign (rows, clbit 0
        first) and how many shots read that outcome."""
        rows, weights = [], []
        for counts, model in self.parts:
            if not counts:
                continue
            bits = _bits(list(counts))
            read = 1.0 - 2.0 * bits
            if model is not None:
                if len(model.offset) != bits.shape[1]:
                    raise ReadoutModelError(f"readout model for {len(model.offset)} clbits, "
                                            f"counts over {bits.shape[1]}")
                read = (read - np.asarray(model.offset)) / np.asarray(model.contrast)
            rows.append(read)
            weights.append(np.array(list(counts.values()), dtype=float))
        if not rows:
            return np.zeros((0, 0)), np.zeros(0)
        return np.vstack(rows), np.concatenate(weights)

    def per_shot(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """One entry per shot, in random order: the outcome as read (an integer, clbit 0 the
        lowest bit) and each clbit's estimated true sign (a row, clbit 0 first)."""
        keys, rows = [], []
        for counts, model in self.parts:
            if not counts:
                continue
            shots = [int(n) for n in counts.values()]
            keys.append(np.repeat(np.array([int(k.replace(" ", ""), 2) for k in counts],
                                           dtype=np.int64), shots))
            rows.append(np.repeat(MeasuredCounts([(counts, model)]).signs()[0], shots, axis=0))
        if not keys:
            return np.zeros(0, dtype=np.int64), np.zeros((0, 0))
        order = rng.permutation(sum(len(k) for k in keys))
        return np.concatenate(keys)[order], np.vstack(rows)[order]


def _bits(keys: Sequence[str]) -> np.ndarray:
    """0/1 matrix (outcome, clbit) of bitstrings whose clbit 0 is the rightmost character."""
    clean = [k.replace(" ", "")[::-1] for k in keys]
    width = len(clean[0])
    if any(len(k) != width for k in clean):
        raise ReadoutModelError("outcomes of different widths in one circuit's counts")
    return np.array([[c == "1" for c in k] for k in clean], dtype=float).reshape(len(clean),
                                                                                  width)


def as_measured(counts: Mapping[str, int] | MeasuredCounts) -> MeasuredCounts:
    """Plain counts as one uncorrected part; measured counts as they are."""
    if isinstance(counts, MeasuredCounts):
        return counts
    return MeasuredCounts([(dict(counts), None)])


def parity_estimate(signs: np.ndarray, weights: np.ndarray, clbits: Sequence[int]
                    ) -> tuple[float, float]:
    """Mean of the product of ``clbits``' signs over the shots, and its variance.

    The variance is the larger of the corrected products' own spread and the plain-parity
    bound (:func:`parity_std_error`, never 0): with no correction both agree up to O(1/N).
    """
    shots = float(weights.sum())
    if shots <= 0:
        raise ValueError("no shots to estimate from")
    values = np.prod(signs[:, list(clbits)], axis=1) if clbits else np.ones(len(weights))
    mean = float(np.dot(weights, values) / shots)
    spread = float(np.dot(weights, (values - mean) ** 2) / max(shots - 1.0, 1.0)) / shots
    bound = parity_std_error(min(max(mean, -1.0), 1.0), round(shots)) ** 2
    return mean, max(spread, bound)
