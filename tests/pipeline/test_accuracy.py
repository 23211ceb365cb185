"""End-to-end answers checked against exact simulation (ideal fleet) and honest noise reports."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit import QuantumCircuit, qasm2
from qiskit.circuit.random import random_circuit

from qbackbone.api.policy import InvocationPolicy
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import exact_values, ghz_circuit, make_job, make_qpu

IDEAL = build_fleet([make_qpu("ideal-a"), make_qpu("ideal-b", shotTime="40us")])
# Shots split over both ideal QPUs (the stratified estimator), deadline or not.
SPLIT = {"default": InvocationPolicy.model_validate(
    {"metadata": {"name": "default"}, "spec": {"scheduler": {"shotSplitting": "Always"}}})}


@pytest.mark.parametrize("seed", range(6))
def test_random_circuits_match_exact_within_reported_error(seed: int) -> None:
    rng = np.random.default_rng(seed)
    width = int(rng.integers(3, 7))
    circuit = random_circuit(width, 6, max_operands=2, seed=seed)
    observables = ["".join(rng.choice(list("IXYZ"), width)) for _ in range(4)]
    observables = [o if set(o) != {"I"} else "Z" * width for o in observables]
    job = make_job(qasm2.dumps(circuit), observables, shots=6000)
    status = run_job(job, IDEAL, SPLIT, seed=seed)
    assert status.phase == "Succeeded", status.conditions
    assert status.result is not None and status.result.expectation_values is not None
    assert status.result.path == "SingleQPU"
    assert sorted(status.result.qpus) == ["ideal-a", "ideal-b"]  # shots were split
    for ev, exact in zip(status.result.expectation_values, exact_values(circuit, observables),
                         strict=True):
        assert ev.std_error > 0
        assert abs(ev.value - exact) <= 4 * ev.std_error + 1e-9, (ev, exact)
    assert status.verification is not None
    assert status.verification.method == "ExactStatevector" and not status.verification.noisy
    assert status.verification.passed


def test_precision_sets_the_shots_and_the_error_meets_it() -> None:
    circuit = QuantumCircuit(2)
    circuit.h(0)
    circuit.cx(0, 1)
    status = run_job(make_job(qasm2.dumps(circuit), ["XX", "ZI"], precision=0.02), IDEAL, {},
                     seed=1)
    assert status.decision is not None
    assert status.decision.features["shotsPerBasis"] == 2501  # 1/precision^2 + 1 (n - 1)
    assert status.result is not None and status.result.expectation_values is not None
    assert all(ev.std_error <= 0.02 for ev in status.result.expectation_values)


def test_sampling_counts_match_the_exact_distribution() -> None:
    circuit = QuantumCircuit(3, 3)
    circuit.h(0)
    circuit.cx(0, 1)
    circuit.x(2)
    circuit.measure([0, 1, 2], [0, 1, 2])
    status = run_job(make_job(qasm2.dumps(circuit), shots=4000), IDEAL, {}, seed=2)
    assert status.phase == "Succeeded"
    assert status.result is not None and status.result.counts is not None
    assert set(status.result.counts) == {"100", "111"}
    assert sum(status.result.counts.values()) == 4000
    assert status.verification is not None and status.verification.method == "ExactDistribution"


def _policy(**mitigation: object) -> dict[str, InvocationPolicy]:
    return {"default": InvocationPolicy.model_validate(
        {"metadata": {"name": "default"}, "spec": {"mitigation": mitigation}})}


@pytest.mark.slow
def test_unmitigated_noise_is_covered_by_the_residual_model() -> None:
    """Shot noise alone misses a noisy device's bias by many sigma; the reported
    systematicError (residual-bias model) covers it."""
    fleet = build_fleet([make_qpu("nairobi", provider="fake", backend="fake_nairobi")])
    circuit = ghz_circuit(4)
    observables = ["XXXX", "ZZII"]
    status = run_job(make_job(qasm2.dumps(circuit), observables, shots=8000), fleet,
                     _policy(enabled=False), seed=5)
    assert status.phase == "Succeeded", status.conditions
    r = status.result
    assert r is not None and r.expectation_values is not None and r.backends == ["fake_nairobi"]
    assert r.mitigation is not None and r.mitigation[0].level == "None"
    exact = exact_values(circuit, observables)
    deviations = [abs(ev.value - e) for ev, e in zip(r.expectation_values, exact, strict=True)]
    assert max(deviations) > 4 * max(ev.std_error for ev in r.expectation_values)  # real noise
    for ev, dev in zip(r.expectation_values, deviations, strict=True):
        assert dev <= 3 * math.hypot(ev.std_error, ev.systematic_error), ev


@pytest.mark.slow
def test_mitigated_noisy_result_is_honest_and_never_matches_exact() -> None:
    fleet = build_fleet([make_qpu("nairobi", provider="fake", backend="fake_nairobi")])
    circuit = ghz_circuit(4)
    observables = ["XXXX", "ZZII", "ZIIZ", "IIIZ"]
    status = run_job(make_job(qasm2.dumps(circuit), observables, shots=4000), fleet, {}, seed=5)
    assert status.phase == "Succeeded", status.conditions
    v, r = status.verification, status.result
    assert v is not None and r is not None and r.expectation_values is not None
    assert v.noisy and v.noise_allowance == 0.0  # no blanket allowance
    assert r.mitigation is not None and r.mitigation[0].level == "ZNE"
    assert "TREX" in r.mitigation[0].techniques and r.mitigation[0].shot_multiplier == 4.0
    for ev, e in zip(r.expectation_values, exact_values(circuit, observables), strict=True):
        total = math.hypot(ev.std_error, ev.systematic_error)
        assert 0 < total <= 0.08 and ev.systematic_error > 0
        assert abs(ev.value - e) <= 3 * total, ev
    cond = {c.type: c.reason for c in status.conditions}
    assert cond["Verified"] == "WithinReportedUncertainty"  # never "MatchesExact" for noisy


def test_classical_fallback_matches_exact() -> None:
    circuit = random_circuit(5, 5, max_operands=2, seed=11)
    observables = ["ZZIII", "XIXIY", "IIIIZ"]
    status = run_job(make_job(qasm2.dumps(circuit), observables,
                              execution={"mode": "Classical"}), IDEAL, {})
    assert status.phase == "Succeeded"
    assert status.result is not None and status.result.path == "Classical"
    assert status.result.expectation_values is not None
    exact = exact_values(circuit, observables)
    for ev, e in zip(status.result.expectation_values, exact, strict=True):
        assert ev.value == pytest.approx(e, abs=1e-6)


def test_mps_fallback_agrees_with_statevector_on_a_small_circuit() -> None:
    from qbackbone.core.classical.fallback import run_classical

    circuit = random_circuit(6, 6, max_operands=2, seed=3)
    observables = ["ZZZZZZ", "XIIIIX"]
    out = run_classical(circuit, observables, 0, "matrix_product_state", seed=1)
    assert out.values == pytest.approx(exact_values(circuit, observables), abs=1e-6)
