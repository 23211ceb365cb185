"""Pauli observables: validation, bases, parity estimates and their standard errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from qiskit import QuantumCircuit
from qiskit.quantum_info import Pauli, Statevector

from qbackbone.core.circuits.observables import (
    Estimate,
    combine_strata,
    group_into_bases,
    parity_estimate,
    shots_for_precision,
    validate_observables,
)
from qbackbone.core.errors import JobFailure


def test_validation_names_the_problem() -> None:
    assert validate_observables(["zzi", " XIY "], 3) == ["ZZI", "XIY"]
    with pytest.raises(JobFailure, match="has 2 letters but the circuit has 3 qubits"):
        validate_observables(["ZZ"], 3)
    with pytest.raises(JobFailure, match="letters other than I, X, Y, Z: AB"):
        validate_observables(["ZAB"], 3)
    with pytest.raises(JobFailure) as err:
        validate_observables([], 3)
    assert err.value.reason == "InvalidObservable"


def test_qubit_wise_commuting_grouping() -> None:
    bases, assignment = group_into_bases(["ZZI", "IZZ", "XXX", "ZIZ", "XIX"])
    assert len(bases) == 2
    assert assignment == [0, 0, 1, 0, 1]
    assert bases[0].letters == "ZZZ" and bases[1].letters == "XXX"


def test_parity_uses_qiskit_order() -> None:
    # key "01": clbit 0 (rightmost) is 1 -> Z on qubit 0 gives -1, Z on qubit 1 gives +1
    assert parity_estimate({"01": 10}, "IZ").value == -1.0
    assert parity_estimate({"01": 10}, "ZI").value == 1.0
    assert parity_estimate({"01": 10}, "ZZ").value == -1.0


@pytest.mark.parametrize("seed", range(5))
def test_estimates_from_sampled_bases_match_exact(seed: int) -> None:
    rng = np.random.default_rng(seed)
    circuit = QuantumCircuit(3)
    for q in range(3):
        circuit.ry(float(rng.uniform(0, np.pi)), q)
        circuit.rz(float(rng.uniform(0, np.pi)), q)
    circuit.cx(0, 1)
    circuit.cx(1, 2)
    observables = ["ZZI", "XIX", "YYZ", "IIX"]
    bases, assignment = group_into_bases(observables)
    shots = 20000
    for obs, b in zip(observables, assignment, strict=True):
        measured = bases[b].append_to(circuit)
        probs = Statevector(measured.remove_final_measurements(inplace=False)).probabilities_dict()
        keys = list(probs)
        draws = rng.multinomial(shots, [probs[k] for k in keys])
        counts = {k: int(n) for k, n in zip(keys, draws, strict=True) if n}
        est = parity_estimate(counts, obs)
        exact = Statevector(circuit).expectation_value(Pauli(obs)).real
        assert abs(est.value - exact) <= 4 * est.std_error + 1e-9


def test_stratified_error_combines_variances() -> None:
    a, b = Estimate(0.5, 0.01, 1000), Estimate(0.1, 0.02, 3000)
    combined = combine_strata([a, b])
    assert combined.value == pytest.approx(0.2)
    assert combined.std_error == pytest.approx(math.sqrt(0.25**2 * 1e-4 + 0.75**2 * 4e-4))
    assert combined.shots == 4000


def test_shots_for_precision() -> None:
    assert shots_for_precision(0.01) == 10000
    assert shots_for_precision(0.1) == 100
