"""A QUBO: minimise x^T Q x + offset over binary x, and a builder for penalised models."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearConstraint:
    """sum coefficients[i] * x_i (== or <=) rhs: a constraint every feasible assignment meets."""

    coefficients: dict[int, int]
    rhs: int
    equality: bool = True


@dataclass(frozen=True)
class Qubo:
    """Energy E(x) = offset + sum_i linear[i] x_i + sum_{i<j} quadratic[i, j] x_i x_j.

    `quadratic` is strictly upper triangular. Variable k is qubit k: in a Qiskit bitstring it
    is the k-th character from the right.
    """

    variables: tuple[str, ...]
    linear: np.ndarray
    quadratic: np.ndarray
    offset: float = 0.0

    @property
    def size(self) -> int:
        """Number of binary variables."""
        return len(self.variables)

    def energy(self, x: np.ndarray) -> np.ndarray | float:
        """Energy of one assignment (shape (n,)) or of many (shape (m, n))."""
        xs = np.asarray(x, dtype=float)
        e = xs @ self.linear + np.einsum("...i,ij,...j->...", xs, self.quadratic, xs)
        return e + self.offset if xs.ndim > 1 else float(e + self.offset)

    def flip_deltas(self, x: np.ndarray) -> np.ndarray:
        """Energy change of flipping each single variable of x."""
        xs = np.asarray(x, dtype=float)
        sym = self.quadratic + self.quadratic.T
        field = self.linear + sym @ xs
        return (1.0 - 2.0 * xs) * field

    def widened(self, variables: tuple[str, ...]) -> Qubo:
        """The same energy over more variables (the new ones, appended, have no terms)."""
        n, k = len(variables), self.size
        linear = np.zeros(n)
        linear[:k] = self.linear
        quadratic = np.zeros((n, n))
        quadratic[:k, :k] = self.quadratic
        return Qubo(variables, linear, quadratic, self.offset)

    def couplings(self) -> list[tuple[int, int, float]]:
        """Non-zero quadratic terms (i < j)."""
        rows, cols = np.nonzero(self.quadratic)
        return [(int(i), int(j), float(self.quadratic[i, j])) for i, j in zip(rows, cols,
                                                                               strict=True)]

    def to_ising(self) -> tuple[np.ndarray, dict[tuple[int, int], float], float]:
        """(h, J, offset) with x_i = (1 - s_i) / 2, so E = sum h s + sum J s s + offset."""
        n = self.size
        h = -0.5 * self.linear.copy()
        offset = self.offset + 0.5 * float(self.linear.sum())
        coupling: dict[tuple[int, int], float] = {}
        for i, j, q in self.couplings():
            coupling[(i, j)] = q / 4.0
            h[i] -= q / 4.0
            h[j] -= q / 4.0
            offset += q / 4.0
        return h.reshape(n), coupling, offset

    @staticmethod
    def from_ising(variables: Sequence[str], h: Sequence[float],
                   coupling: dict[tuple[int, int], float], offset: float = 0.0) -> Qubo:
        """The QUBO of an Ising model under s_i = 1 - 2 x_i."""
        builder = QuboBuilder()
        idx = [builder.variable(v) for v in variables]
        builder.add_constant(offset)
        for i, value in enumerate(h):
            builder.add_constant(value)
            builder.add_linear(idx[i], -2.0 * value)
        for (i, j), value in coupling.items():
            builder.add_constant(value)
            builder.add_linear(idx[i], -2.0 * value)
            builder.add_linear(idx[j], -2.0 * value)
            builder.add_quadratic(idx[i], idx[j], 4.0 * value)
        return builder.build()


def bits_from_key(key: str, size: int) -> np.ndarray:
    """A Qiskit counts key (variable 0 rightmost, spaces ignored) to a 0/1 vector."""
    clean = key.replace(" ", "")[-size:].rjust(size, "0")
    return np.array([int(c) for c in reversed(clean)], dtype=np.int8)


def key_from_bits(x: np.ndarray) -> str:
    """The inverse of bits_from_key."""
    return "".join(str(int(b)) for b in reversed(np.asarray(x)))


@dataclass(frozen=True)
class SlackRow:
    """A capacity constraint in integer units with its slack bits:
    sum units[i] x_i + slack = capacity_units, penalised squared in the QUBO."""

    name: str
    units: dict[int, int]  # variable index -> units it uses
    capacity_units: int
    slack: list[tuple[int, float]]

    @property
    def constraint(self) -> LinearConstraint:
        """The row as a hard equality (for exact solvers)."""
        return LinearConstraint({**self.units, **{i: int(c) for i, c in self.slack}},
                                self.capacity_units)

    def fill_slack(self, x: np.ndarray) -> None:
        """Set the slack bits of x to the room the chosen variables leave (clipped to what
        the bits can hold), so a feasible x pays no penalty on this row."""
        used = sum(u for i, u in self.units.items() if x[i])
        value = min(max(0, self.capacity_units - used), int(sum(c for _, c in self.slack)))
        for i, _ in self.slack:
            x[i] = 0
        if not self.slack:
            return
        last_index, last_coefficient = self.slack[-1]
        if value >= last_coefficient and len(self.slack) > 1:
            x[last_index] = 1
            value -= int(last_coefficient)
        for i, c in self.slack[:-1] if len(self.slack) > 1 else self.slack:
            if value & int(c):
                x[i] = 1


class QuboBuilder:
    """Accumulates named variables, linear and quadratic terms, and squared penalties."""

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._linear: defaultdict[int, float] = defaultdict(float)
        self._quadratic: defaultdict[tuple[int, int], float] = defaultdict(float)
        self._offset = 0.0

    @property
    def size(self) -> int:
        """Variables so far."""
        return len(self._index)

    def variable(self, name: str) -> int:
        """The index of a variable, created on first use."""
        if name not in self._index:
            self._index[name] = len(self._index)
        return self._index[name]

    def add_constant(self, value: float) -> None:
        """Add to the offset."""
        self._offset += value

    def add_linear(self, i: int, value: float) -> None:
        """Add value * x_i."""
        self._linear[i] += value

    def add_quadratic(self, i: int, j: int, value: float) -> None:
        """Add value * x_i * x_j (x_i^2 = x_i for binaries)."""
        if i == j:
            self._linear[i] += value
        else:
            self._quadratic[(min(i, j), max(i, j))] += value

    def add_squared(self, terms: Iterable[tuple[int, float]], constant: float,
                    weight: float) -> None:
        """Add weight * (sum_k a_k x_k + constant)^2."""
        items = list(terms)
        self._offset += weight * constant * constant
        for k, (i, a) in enumerate(items):
            self.add_linear(i, weight * (a * a + 2.0 * a * constant))
            for j, b in items[k + 1:]:
                self.add_quadratic(i, j, 2.0 * weight * a * b)

    def slack(self, prefix: str, upper: int) -> list[tuple[int, float]]:
        """Binary variables whose weighted sum takes every integer in [0, upper].

        Powers of two, the last one capped so the sum never exceeds `upper`.
        """
        terms: list[tuple[int, float]] = []
        remaining, power, k = upper, 1, 0
        while remaining > 0:
            coefficient = min(power, remaining)
            terms.append((self.variable(f"{prefix}[{k}]"), float(coefficient)))
            remaining -= coefficient
            power *= 2
            k += 1
        return terms

    def add_capacity(self, name: str, units: dict[int, int], capacity_units: int,
                     weight: float) -> SlackRow:
        """weight * (sum units x + slack - capacity_units)^2 with fresh slack bits s[name]."""
        slack = self.slack(f"s[{name}]", capacity_units)
        self.add_squared([(i, float(u)) for i, u in units.items()] + slack,
                         -float(capacity_units), weight)
        return SlackRow(name, units, capacity_units, slack)

    def build(self) -> Qubo:
        """The QUBO accumulated so far."""
        n = self.size
        linear = np.zeros(n)
        quadratic = np.zeros((n, n))
        for i, v in self._linear.items():
            linear[i] = v
        for (i, j), v in self._quadratic.items():
            quadratic[i, j] = v
        names = tuple(sorted(self._index, key=self._index.__getitem__))
        return Qubo(names, linear, quadratic, self._offset)


def objective_range(linear: np.ndarray, quadratic: np.ndarray) -> float:
    """An upper bound on max E - min E of the terms given (sum of absolute coefficients)."""
    return float(np.abs(linear).sum() + np.abs(quadratic).sum())
