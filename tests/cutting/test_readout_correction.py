"""Readout correction of cut fragments (issue 15): counts that carry their QPU's readout model
are corrected shot by shot, mid-circuit measurements included, and the result is unbiased
where the raw reconstruction is many standard errors off."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from qiskit import QuantumCircuit

from qbackbone.core.cutting import AerRunner, QPUCapacity, execute_plan, plan_cuts
from qbackbone.core.cutting.readout import (
    ClbitReadout,
    MeasuredCounts,
    ReadoutModelError,
    parity_estimate,
)
from qbackbone.core.mitigation.readout import measured_qubits
from tests.pipeline.test_distributed import chain_circuit

from .circuits import assert_close, exact

TWO_FOURS = [QPUCapacity("a", 4, None), QPUCapacity("b", 4, None)]
FLIP_0, FLIP_1 = 0.04, 0.09  # P(1|0), P(0|1) of every qubit: a poor but usable readout


class ReadoutNoiseRunner:
    """Ideal Aer counts with every clbit read through the readout channel (flip 0->1 with
    FLIP_0, 1->0 with FLIP_1); returned corrected (with the model) or as read."""

    def __init__(self, seed: int, correct: bool) -> None:
        self.ideal = AerRunner(seed=seed)
        self.rng = np.random.default_rng(seed + 1000)
        self.correct = correct

    def run(self, subcircuit: str, circuits: Sequence[QuantumCircuit],
            shots: Sequence[int]) -> list[dict[str, int] | MeasuredCounts]:
        out: list[dict[str, int] | MeasuredCounts] = []
        for circuit, counts in zip(circuits, self.ideal.run(subcircuit, circuits, shots),
                                   strict=True):
            noisy = self._read(counts, set(measured_qubits(circuit)))
            if not self.correct:
                out.append(noisy)
                continue
            model = ClbitReadout.from_flips([FLIP_0] * circuit.num_qubits,
                                            [FLIP_1] * circuit.num_qubits,
                                            measured_qubits(circuit), circuit.num_clbits)
            out.append(MeasuredCounts([(noisy, model)]))
        return out

    def _read(self, counts: dict[str, int], measured: set[int]) -> dict[str, int]:
        """Counts as read: only clbits a measurement wrote pass the readout channel."""
        read: dict[str, int] = {}
        for key, n in counts.items():
            bits = np.array([c == "1" for c in key], dtype=bool)
            width = len(bits)
            read_out = np.array([width - 1 - i in measured for i in range(width)])
            flip = np.where(read_out, np.where(bits, FLIP_1, FLIP_0), 0.0)
            draws = self.rng.random((n, len(bits))) < flip
            outcomes, times = np.unique(bits ^ draws, axis=0, return_counts=True)
            for row, k in zip(outcomes, times, strict=True):
                text = "".join("1" if b else "0" for b in row)
                read[text] = read.get(text, 0) + int(k)
        return read


def test_a_parity_read_through_a_known_channel_is_restored_exactly() -> None:
    # |1>, read 0 one time in five (P(0|1) = 0.2): the raw mean is -0.6, the corrected -1.
    model = ClbitReadout.from_flips([0.1], [0.2], {0: 0}, 1)
    signs, weights = MeasuredCounts([({"1": 800, "0": 200}, model)]).signs()
    mean, variance = parity_estimate(signs, weights, [0])
    assert mean == pytest.approx(-1.0)
    raw_signs, raw_weights = MeasuredCounts([({"1": 800, "0": 200}, None)]).signs()
    raw_mean, raw_variance = parity_estimate(raw_signs, raw_weights, [0])
    assert raw_mean == pytest.approx(-0.6)
    assert variance > raw_variance  # the correction's cost is in the error bar


def test_parts_from_different_qpus_are_corrected_each_with_its_own_model() -> None:
    good = ClbitReadout.from_flips([0.0], [0.0], {0: 0}, 1)
    poor = ClbitReadout.from_flips([0.1], [0.3], {0: 0}, 1)
    # |0> on both: the poor QPU reads 1 one time in ten.
    measured = MeasuredCounts([({"0": 500}, good), ({"0": 450, "1": 50}, poor)])
    mean, _ = parity_estimate(*measured.signs(), [0])
    assert mean == pytest.approx(1.0)
    assert measured.shots == 1000 and measured.raw() == {"0": 950, "1": 50}


def test_a_readout_that_says_nothing_or_a_qubit_never_calibrated_is_refused() -> None:
    with pytest.raises(ReadoutModelError, match="contrast"):
        ClbitReadout.from_flips([0.45], [0.4], {0: 0}, 1)
    with pytest.raises(ReadoutModelError, match="outside"):
        ClbitReadout.from_flips([0.01], [0.01], {0: 3}, 1)


@pytest.mark.parametrize("kinds", [["gate"], ["loWire"]])
def test_lo_cut_results_are_unbiased_once_corrected_and_biased_as_read(
        kinds: list[str]) -> None:
    circuit = chain_circuit(6, seed=5)
    observables = ["Z" * 6, "IIIZZI", "ZIIIIZ"]
    plan = plan_cuts(circuit, observables, TWO_FOURS, kinds, 1e4, 4, 20_000, seed=2)
    assert plan.cuts and plan.method == "lo"
    truth = exact(circuit, observables)
    raw = execute_plan(plan, ReadoutNoiseRunner(7, correct=False), seed=7)
    corrected = execute_plan(plan, ReadoutNoiseRunner(7, correct=True), seed=7)
    assert_close(corrected.values, corrected.std_errors, truth, max_se=0.2)
    worst_raw = max(abs(v - t) / e for v, e, t in zip(raw.values, raw.std_errors, truth,
                                                      strict=True))
    assert worst_raw > 6, "the readout channel must bias the raw reconstruction"


def test_locc_observable_outcomes_are_corrected_and_the_bias_shrinks() -> None:
    circuit = chain_circuit(6, seed=5)
    observables = ["Z" * 6, "IIIZZI"]
    plan = plan_cuts(circuit, observables, TWO_FOURS, ["loccWire"], 1e4, 4, 20_000, seed=2)
    assert plan.method == "locc"
    truth = np.array(exact(circuit, observables))
    raw = execute_plan(plan, ReadoutNoiseRunner(9, correct=False), seed=9)
    corrected = execute_plan(plan, ReadoutNoiseRunner(9, correct=True), seed=9)
    # The cut outcomes choose the successors' preparations and stay as read, so only the
    # observables' share of the bias goes; it is the larger share here.
    assert (np.abs(np.array(corrected.values) - truth).sum()
            < 0.6 * np.abs(np.array(raw.values) - truth).sum())
