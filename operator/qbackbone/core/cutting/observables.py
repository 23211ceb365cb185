"""Pauli-string observables: validation and qubit-wise commuting measurement groups."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def validate_observables(observables: Sequence[str], num_qubits: int) -> list[str]:
    """Upper-case Pauli strings of length ``num_qubits`` (Qiskit order), or a ValueError."""
    if not observables:
        raise ValueError("at least one observable (Pauli string) is needed to plan cuts")
    out = []
    for obs in observables:
        label = obs.strip().upper()
        if len(label) != num_qubits or set(label) - set("IXYZ"):
            raise ValueError(
                f"observable {obs!r} must be a Pauli string over I/X/Y/Z of length {num_qubits}"
            )
        out.append(label)
    return out


def qwc_groups(observables: Sequence[str]) -> tuple[list[str], list[int]]:
    """Greedy qubit-wise commuting groups: each group's basis (I filled with Z) and membership."""
    bases: list[list[str]] = []
    member: list[int] = []
    for obs in observables:
        for g, basis in enumerate(bases):
            if all(o == "I" or b in ("I", o) for o, b in zip(obs, basis, strict=True)):
                bases[g] = [b if o == "I" else o for o, b in zip(obs, basis, strict=True)]
                member.append(g)
                break
        else:
            bases.append(list(obs))
            member.append(len(bases) - 1)
    return ["".join("Z" if b == "I" else b for b in basis) for basis in bases], member


def pauli_char(label: str, qubit: int) -> str:
    """The Pauli acting on ``qubit`` (qubit 0 is the rightmost character)."""
    return label[len(label) - 1 - qubit]


def parity_sign(outcomes: np.ndarray, mask: int) -> np.ndarray:
    """``(-1)**popcount(outcome & mask)`` elementwise for non-negative integer outcomes."""
    bits = np.bitwise_and(outcomes.astype(np.int64), mask)
    parity = np.zeros(bits.shape, dtype=np.int64)
    while np.any(bits):
        parity ^= bits & 1
        bits >>= 1
    return 1.0 - 2.0 * parity
