"""Pauli-string helpers for reconstruction (validation and grouping: core.circuits)."""

from __future__ import annotations

import numpy as np


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
