"""Verification statistics: honest errors for unanimous shots, a family-wise threshold over many
observables, no inf or NaN, and exact references bounded by memory. Checked against exact
simulation (statevectors, ideal Aer), never mocks."""

from __future__ import annotations

import itertools
import math
from statistics import NormalDist

import numpy as np
import pytest
from qiskit import QuantumCircuit, qasm2
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Pauli, Statevector

from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import ExpectationValue
from qbackbone.core.circuits.observables import (
    MeasurementBasis,
    combine_strata,
    parity_estimate,
    parity_std_error,
)
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.core.verify.checks import (
    NoiseProfile,
    familywise_threshold,
    verify_counts,
    verify_expectations,
)
from qbackbone.core.verify.exact import EXACT_MAX_QUBITS, exact_expectations, no_exact_reason
from tests.conftest import make_job, make_qpu

IDEAL = build_fleet([make_qpu("ideal", qubits=6)])
NOISE_FREE = NoiseProfile(((1.0, 1.0),))
RX01 = 'OPENQASM 2.0; include "qelib1.inc"; qreg q[1]; rx(0.1) q[0];'


def policy(name: str, **spec: object) -> InvocationPolicy:
    return InvocationPolicy.model_validate({"metadata": {"name": name}, "spec": spec})


def test_unanimous_shots_have_an_honest_nonzero_error() -> None:
    est = parity_estimate({"0": 100}, "Z")
    assert est.value == 1.0
    # Agresti-Coull with two pseudo-successes and two pseudo-failures: about 2 sqrt(2) / N.
    p = 102 / 104
    assert est.std_error == pytest.approx(2 * math.sqrt(p * (1 - p) / 104))
    assert 2.0 / 100 < est.std_error < 3.0 / 100
    assert parity_estimate({"1": 7}, "Z").std_error > 0
    assert parity_std_error(1.0, 1) == 1.0  # one shot: nothing known about the spread
    # Inside (0, 1) the usual unbiased plug-in is kept.
    assert parity_std_error(0.2, 4000) == pytest.approx(math.sqrt((1 - 0.04) / 3999))
    assert combine_strata([parity_estimate({"0": 50}, "Z"),
                           parity_estimate({"0": 70}, "Z")]).std_error > 0


@pytest.mark.parametrize("seed", range(4))
def test_unanimous_one_qubit_job_verifies_on_ideal_aer(seed: int) -> None:
    status = run_job(make_job(RX01, ["Z"], shots=100), IDEAL, {}, seed=seed)
    assert status.phase == "Succeeded", status.conditions
    v, r = status.verification, status.result
    assert v is not None and r is not None and r.expectation_values is not None
    assert v.method == "ExactStatevector" and v.passed
    assert r.expectation_values[0].std_error > 0
    assert v.max_deviation_sigma is not None and math.isfinite(v.max_deviation_sigma)
    assert v.exact_values == [pytest.approx(math.cos(0.1))]
    assert "nan" not in status.model_dump_json().lower()
    assert "inf" not in (v.details or "")


def test_zero_std_error_never_gives_inf_or_nan() -> None:
    exact = [math.cos(0.1)]
    same = [ExpectationValue(observable="Z", value=round(exact[0], 9), std_error=0.0)]
    ok = verify_expectations(same, exact, NOISE_FREE, 4.0)
    assert ok.passed and ok.max_deviation_sigma is not None and ok.max_deviation_sigma < 1
    off = [ExpectationValue(observable="Z", value=exact[0] - 0.01, std_error=0.0)]
    bad = verify_expectations(off, exact, NOISE_FREE, 4.0)
    assert not bad.passed
    assert bad.max_deviation_sigma is not None and math.isfinite(bad.max_deviation_sigma)
    assert "beyond the allowance: Z" in bad.details
    for value, err in ((math.nan, 0.01), (0.5, math.nan), (math.inf, 0.01), (0.5, -0.1)):
        # The API refuses such numbers; a reconstruction bug could still produce them.
        broken = [ExpectationValue.model_construct(observable="Z", value=value, std_error=err)]
        for reference in (exact, None):
            v = verify_expectations(broken, reference, NOISE_FREE, 4.0)
            assert not v.passed and "not a finite number: Z" in v.details
            assert v.max_deviation_sigma is None or math.isfinite(v.max_deviation_sigma)
            assert v.max_abs_deviation is None or math.isfinite(v.max_abs_deviation)


def test_counts_verification_is_robust_to_degenerate_input() -> None:
    exact = {"0": 1.0}
    assert verify_counts({"0": 100}, exact, NOISE_FREE, 4.0).passed
    empty = verify_counts({}, exact, NOISE_FREE, 4.0)
    assert not empty.passed and "no shots" in empty.details
    assert not verify_counts({"0": 5, "1": -1}, exact, NOISE_FREE, 4.0).passed
    wrong = verify_counts({"1": 100}, exact, NOISE_FREE, 4.0)
    assert not wrong.passed
    assert wrong.max_deviation_sigma is not None and math.isfinite(wrong.max_deviation_sigma)


def test_sidak_threshold() -> None:
    assert familywise_threshold(4.0, 1) == 4.0
    alpha = 2 * (1 - NormalDist().cdf(2.0))
    for m in (2, 20, 200, 20_000):
        z = familywise_threshold(2.0, m)
        per_test = 2 * (1 - NormalDist().cdf(z))
        assert 1 - (1 - per_test) ** m == pytest.approx(alpha, rel=1e-6)
    zs = [familywise_threshold(4.0, m) for m in (1, 20, 20_000)]
    assert zs == sorted(zs) and zs[1] == pytest.approx(4.66, abs=0.01)
    assert zs[2] == pytest.approx(5.92, abs=0.01)
    huge = familywise_threshold(50.0, 10)  # alpha underflows: the tail asymptote
    assert math.isfinite(huge) and 50.0 < huge < 50.1


def _random_state(n: int, seed: int) -> QuantumCircuit:
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(n)
    for q in range(n):
        circuit.ry(float(rng.uniform(0.3, 2.8)), q)
        circuit.rz(float(rng.uniform(0.0, 2 * np.pi)), q)
    for q in range(n - 1):
        circuit.cx(q, q + 1)
    for q in range(n):
        circuit.ry(float(rng.uniform(0.3, 2.8)), q)
    return circuit


def test_false_failure_rate_is_familywise() -> None:
    """200 observables, each from its own sampled basis, 400 runs at maxDeviationSigma 2
    (alpha = 4.55% per job): the job fails at about alpha, where testing every observable
    at 2 sigma fails (almost) every run."""
    n, m, shots, sigma, runs = 5, 200, 2000, 2.0, 400
    circuit = _random_state(n, 0)
    rng = np.random.default_rng(0)
    observables = sorted({"".join("IXYZ"[i] for i in rng.integers(0, 4, n))
                          for _ in range(400)} - {"I" * n})[:m]
    assert len(observables) == m
    state = Statevector(circuit)
    exact = [float(state.expectation_value(Pauli(o)).real) for o in observables]
    dists = []
    for obs in observables:
        measured = MeasurementBasis(obs.replace("I", "Z")).append_to(circuit)
        probs = Statevector(measured.remove_final_measurements(inplace=False)).probabilities_dict()
        dists.append((list(probs), np.array(list(probs.values()))))
    failed = uncorrected = 0
    for run in range(runs):
        draw = np.random.default_rng(1000 + run)
        values = []
        for obs, (keys, p) in zip(observables, dists, strict=True):
            counts = draw.multinomial(shots, p / p.sum())
            est = parity_estimate({k: int(c) for k, c in zip(keys, counts, strict=True) if c}, obs)
            values.append(ExpectationValue(observable=obs, value=est.value,
                                           std_error=est.std_error))
        v = verify_expectations(values, exact, NOISE_FREE, sigma)
        assert "per observable" in v.details and f"over {m} observables" in v.details
        failed += not v.passed
        assert v.max_deviation_sigma is not None
        uncorrected += v.max_deviation_sigma > sigma
    alpha = 2 * (1 - NormalDist().cdf(sigma))
    spread = 3 * math.sqrt(alpha * (1 - alpha) / runs)
    assert alpha / 3 <= failed / runs <= alpha + spread, failed
    assert uncorrected / runs > 0.9


@pytest.mark.slow
def test_many_observable_jobs_pass_at_the_familywise_level() -> None:
    """Every 4-qubit Pauli (255 observables) through the pipeline on ideal Aer, 20 seeds at
    maxDeviationSigma 2: the worst observable is beyond 2 sigma in most runs, the job fails
    in few."""
    observables = ["".join(p) for p in itertools.product("IXYZ", repeat=4)][1:]
    qasm = qasm2.dumps(random_circuit(4, 4, max_operands=2, seed=5))
    policies = {"p": policy("p", verification={"maxDeviationSigma": 2})}
    beyond = failed = 0
    for seed in range(20):
        status = run_job(make_job(qasm, observables, shots=1000, policyRef={"name": "p"}),
                         IDEAL, policies, seed=seed)
        v = status.verification
        assert v is not None and v.max_deviation_sigma is not None
        assert "allowed 3.74 sigma per observable" in v.details
        beyond += v.max_deviation_sigma > 2.0
        failed += status.phase == "Failed"
    assert beyond >= 16
    assert failed <= 4  # Binomial(20, 4.55%): P(more than 4) < 0.2%


def test_exact_reference_is_bounded_by_memory_whatever_the_policy() -> None:
    assert EXACT_MAX_QUBITS == 26
    assert no_exact_reason(26, 30, False) is None
    assert "exactMaxQubits (20)" in (no_exact_reason(21, 20, False) or "")
    capped = no_exact_reason(27, 30, False) or ""
    assert "memory ceiling of 26 qubits" in capped
    assert "mid-circuit" in (no_exact_reason(3, 20, True) or "")
    with pytest.raises(ValueError, match="ceiling is 26"):
        exact_expectations(QuantumCircuit(27), ["Z" * 27])  # refused before allocating


def test_wide_job_falls_back_to_physical_bounds_and_says_why() -> None:
    n = 27  # a GHZ state: the stabilizer fallback runs it without a 2^27 statevector
    qasm = (f'OPENQASM 2.0; include "qelib1.inc"; qreg q[{n}]; h q[0];'
            + "".join(f"cx q[{i}],q[{i + 1}];" for i in range(n - 1)))
    policies = {"p": policy("p", verification={"exactMaxQubits": 30})}
    status = run_job(make_job(qasm, ["Z" * n, "X" * n], policyRef={"name": "p"},
                              execution={"mode": "Classical"}), IDEAL, policies)
    assert status.phase == "Succeeded", status.conditions
    v = status.verification
    assert v is not None and v.method == "PhysicalBounds" and v.passed
    assert "memory ceiling of 26 qubits" in v.details
