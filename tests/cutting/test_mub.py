"""The MUB construction behind LOCC bundles of 1-3 wires."""

from __future__ import annotations

import numpy as np
import pytest
from qiskit.quantum_info import Operator, Pauli

from qbackbone.core.cutting.mub import clifford, locc_channels, locc_gamma, pauli_partition


@pytest.mark.parametrize("n", [1, 2, 3])
def test_partition_covers_every_pauli_once(n: int) -> None:
    sets = pauli_partition(n)
    d = 2**n
    assert len(sets) == d + 1 and all(len(s) == d - 1 for s in sets)
    flat = [p for s in sets for p in s]
    assert len(set(flat)) == 4**n - 1 and "I" * n not in flat
    for s in sets:
        for a in s:
            for b in s:
                assert Pauli(a).commutes(Pauli(b))


@pytest.mark.parametrize("n", [1, 2, 3])
def test_bases_are_mutually_unbiased(n: int) -> None:
    d = 2**n
    unitaries = [np.eye(d)] + [Operator(clifford(n, j)).data for j in range(1, d + 1)]
    for j, u in enumerate(unitaries):
        assert np.allclose(u.conj().T @ u, np.eye(d))
        for k in range(j):
            overlaps = np.abs(unitaries[k].conj().T @ u) ** 2
            assert np.allclose(overlaps, 1.0 / d), (n, j, k)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_channels_sum_to_identity(n: int) -> None:
    d = 2**n
    rng = np.random.default_rng(n)
    a = rng.normal(size=(d, d)) + 1j * rng.normal(size=(d, d))
    rho = a @ a.conj().T
    rho /= np.trace(rho)
    out = np.zeros((d, d), dtype=complex)
    for ch in locc_channels(n):
        u = np.eye(d) if ch.basis == 0 else Operator(clifford(n, ch.basis)).data
        probs = np.real(np.diag(u.conj().T @ rho @ u))
        for b in range(d):
            if ch.flip:
                others = [c for c in range(d) if c != b]
                state = sum(np.outer(u[:, c], u[:, c].conj()) for c in others) / (d - 1)
            else:
                state = np.outer(u[:, b], u[:, b].conj())
            out += ch.coefficient * probs[b] * state
    assert np.allclose(out, rho)
    assert locc_gamma(n) == 2 ** (n + 1) - 1
    assert len(locc_channels(n)) == d + 1


def test_more_than_three_wires_refused() -> None:
    with pytest.raises(ValueError, match=r"1\.\.3"):
        pauli_partition(4)
