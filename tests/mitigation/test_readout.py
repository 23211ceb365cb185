"""Readout calibration belongs to the QPU; M3 corrects sampling jobs' counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from qiskit import QuantumCircuit, qasm2

from qbackbone.core.execute.readout import is_current, readout_calibration
from qbackbone.core.mitigation.readout import (
    calibration_circuits,
    calibration_from_counts,
    correct_counts,
)
from qbackbone.core.pipeline.run import run_job
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.core.verify.checks import total_variation
from qbackbone.core.verify.exact import exact_distribution
from tests.conftest import make_job, make_qpu

NOW = datetime(2026, 12, 7, tzinfo=UTC)


def test_calibration_reads_each_qubits_flip_rates() -> None:
    counts = [{"000": 90, "001": 10}, {"111": 80, "011": 20}]  # qubit 0 flips 0->1, qubit 2 1->0
    cal = calibration_from_counts(counts, 3, NOW, "stamp")
    assert cal.flip_from_0 == (0.1, 0.0, 0.0) and cal.flip_from_1 == (0.0, 0.0, 0.2)
    assert cal.readout_fidelity([0, 2]) == pytest.approx(0.95 * 0.9)
    assert [c.count_ops()["measure"] for c in calibration_circuits(3)] == [3, 3]


def test_m3_undoes_a_known_flip() -> None:
    cal = calibration_from_counts([{"00": 80, "01": 20}, {"11": 100}], 2, NOW, "s")
    # |00> read through a 20 % 0->1 flip on qubit 0
    corrected = correct_counts({"00": 800, "01": 200}, cal, {0: 0, 1: 1})
    assert corrected.probabilities.get("00", 0.0) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.slow
def test_the_qpus_calibration_is_reused_until_it_ages() -> None:
    (qpu,) = build_fleet([make_qpu("lima-cal", provider="fake", backend="fake_lima")])
    first = readout_calibration(qpu, NOW, 3600, 2000, seed=1)
    assert readout_calibration(qpu, NOW + timedelta(minutes=30), 3600, 2000) is first
    assert max(first.flip_from_0 + first.flip_from_1) > 0.005  # fake_lima has readout error
    later = NOW + timedelta(hours=2)
    assert not is_current(first, qpu, later, 3600)
    assert readout_calibration(qpu, later, 3600, 2000, seed=2) is not first


@pytest.mark.slow
def test_sampling_on_a_noisy_qpu_is_readout_mitigated() -> None:
    fleet = build_fleet([make_qpu("lima", provider="fake", backend="fake_lima")])
    circuit = QuantumCircuit(4, 4)
    circuit.h(0)
    for q in range(3):
        circuit.cx(q, q + 1)
    circuit.measure(range(4), range(4))
    status = run_job(make_job(qasm2.dumps(circuit), shots=8000), fleet, {}, seed=6)
    assert status.phase == "Succeeded", status.conditions
    r = status.result
    assert r is not None and r.counts is not None and r.mitigated_probabilities is not None
    assert r.mitigation is not None and r.mitigation[0].techniques == ["M3"]
    exact = exact_distribution(circuit)
    raw = total_variation(r.counts, exact)
    keys = set(exact) | set(r.mitigated_probabilities)
    mitigated = 0.5 * sum(abs(r.mitigated_probabilities.get(k, 0.0) - exact.get(k, 0.0))
                          for k in keys)
    assert mitigated < 0.7 * raw  # readout is most of a 4-qubit GHZ's error on fake_lima
    assert status.verification is not None and "M3" in status.verification.details
