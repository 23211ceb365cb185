"""QUBO model, Ising conversion, penalties, solvers and the QAOA circuit, against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from qiskit.quantum_info import Statevector

from qbackbone.core.optimize.classical import (
    brute_force,
    cp_sat,
    local_search,
    simulated_annealing,
    solve_exact,
)
from qbackbone.core.optimize.features import qubo_features
from qbackbone.core.optimize.qaoa import Angles, CostHamiltonian, qaoa_circuit, qaoa_state
from qbackbone.core.optimize.qubo import (
    LinearConstraint,
    Qubo,
    QuboBuilder,
    bits_from_key,
    key_from_bits,
)


def random_qubo(n: int, seed: int, density: float = 0.6) -> Qubo:
    rng = np.random.default_rng(seed)
    quadratic = np.triu(rng.normal(size=(n, n)) * (rng.random((n, n)) < density), k=1)
    return Qubo(tuple(f"x{i}" for i in range(n)), rng.normal(size=n), quadratic,
                float(rng.normal()))


def all_assignments(n: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int8)


def explicit_energy(q: Qubo, x: np.ndarray) -> float:
    n = q.size
    return q.offset + sum(q.linear[i] * x[i] for i in range(n)) + sum(
        q.quadratic[i, j] * x[i] * x[j] for i in range(n) for j in range(i + 1, n))


def test_energy_matches_the_definition_and_flip_deltas() -> None:
    q = random_qubo(6, 1)
    xs = all_assignments(6)
    assert np.allclose(q.energy(xs), [explicit_energy(q, x) for x in xs])
    x = xs[37]
    deltas = q.flip_deltas(x)
    for i in range(6):
        y = x.copy()
        y[i] ^= 1
        assert deltas[i] == pytest.approx(q.energy(y) - q.energy(x))


def test_ising_round_trip_keeps_every_energy() -> None:
    q = random_qubo(5, 2)
    h, coupling, offset = q.to_ising()
    back = Qubo.from_ising(q.variables, list(h), coupling, offset)
    xs = all_assignments(5)
    assert np.allclose(back.energy(xs), q.energy(xs))
    spins = 1 - 2 * xs
    ising = spins @ h + offset + sum(v * spins[:, i] * spins[:, j]
                                     for (i, j), v in coupling.items())
    assert np.allclose(ising, q.energy(xs))


@pytest.mark.parametrize("upper", [1, 2, 5, 7, 12, 20])
def test_slack_bits_take_every_value_up_to_the_bound_and_no_more(upper: int) -> None:
    b = QuboBuilder()
    terms = b.slack("s", upper)
    values = {int(sum(c * bit for (_, c), bit in zip(terms, bits, strict=True)))
              for bits in itertools.product([0, 1], repeat=len(terms))}
    assert values == set(range(upper + 1))


def test_squared_penalty_expands_correctly() -> None:
    b = QuboBuilder()
    idx = [b.variable(f"x{i}") for i in range(4)]
    coefficients = [1.0, 2.0, -3.0, 0.5]
    b.add_squared(list(zip(idx, coefficients, strict=True)), -1.5, 2.0)
    q = b.build()
    for x in all_assignments(4):
        assert q.energy(x) == pytest.approx(2.0 * (np.dot(coefficients, x) - 1.5) ** 2)


def test_bitstring_order_is_qiskit_order() -> None:
    x = bits_from_key("0011", 4)
    assert list(x) == [1, 1, 0, 0]  # variable 0 is the rightmost character
    assert key_from_bits(x) == "0011"
    assert list(bits_from_key("1 01", 3)) == [1, 0, 1]


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_cp_sat_and_annealing_find_the_brute_force_optimum(seed: int) -> None:
    q = random_qubo(13, seed)
    exact = brute_force(q)
    proven = cp_sat(q, 20.0)
    assert proven is not None and proven.proven_optimal
    assert proven.energy == pytest.approx(exact.energy, abs=1e-6)
    annealed = simulated_annealing(q, 2.0, seed=seed)
    assert annealed.energy == pytest.approx(exact.energy, abs=1e-6)
    assert not annealed.proven_optimal
    assert q.energy(local_search(q, exact.x)) == pytest.approx(exact.energy)


def test_exact_solver_uses_hard_constraints_when_given() -> None:
    # Minimise -x0 - x1 - x2 subject to x0 + x1 + x2 <= 1 (as constraint, not penalty).
    objective = Qubo(tuple(f"x{i}" for i in range(14)), -np.ones(14), np.zeros((14, 14)))
    found = solve_exact(objective, 10.0, objective,
                        [LinearConstraint({0: 1, 1: 1, 2: 1}, 1, equality=False)])
    assert found is not None and found.proven_optimal
    assert int(found.x[:3].sum()) == 1 and int(found.x[3:].sum()) == 11


def test_features_density_and_ruggedness() -> None:
    dense = random_qubo(10, 6, density=1.0)
    smooth = Qubo(dense.variables, dense.linear, np.zeros((10, 10)))
    f, g = qubo_features(dense), qubo_features(smooth)
    assert f.variables == 10 and f.couplings == 45 and f.density == pytest.approx(1.0)
    assert g.couplings == 0 and g.density == 0.0
    assert g.ruggedness < f.ruggedness


def test_qaoa_circuit_prepares_the_simulated_state() -> None:
    q = random_qubo(5, 7)
    angles = Angles((0.4, 0.9), (0.7, 0.2), "test")
    circuit = qaoa_circuit(q, angles).remove_final_measurements(inplace=False)
    from_circuit = Statevector(circuit).probabilities()
    diagonal = CostHamiltonian.of(q).diagonal(5)
    simulated = np.abs(qaoa_state(diagonal, 5, np.array(angles.gammas),
                                  np.array(angles.betas))) ** 2
    assert np.allclose(from_circuit, simulated, atol=1e-9)


def test_cost_diagonal_orders_states_like_the_qubo() -> None:
    q = random_qubo(6, 8)
    cost = CostHamiltonian.of(q)
    energies = np.array([q.energy(bits_from_key(format(k, "06b"), 6)) for k in range(64)])
    # C = (E - const) / scale: the same ordering, an affine map.
    slope, intercept = np.polyfit(energies, cost.diagonal(6), 1)
    assert slope == pytest.approx(1 / cost.scale)
    assert np.allclose(slope * energies + intercept, cost.diagonal(6))
