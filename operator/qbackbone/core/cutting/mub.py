"""Mutually unbiased stabilizer bases and the LOCC wire-cut decomposition built on them.

For ``n`` wires (``d = 2**n``) a complete set of ``d + 1`` MUBs satisfies
``sum_j M_{B_j}(rho) = rho + Tr(rho) I``, hence ``id = sum_{j=1..d} M_{B_j} - (d-1) N_{B_0}``
with ``B_0`` the computational basis (gamma ``2d - 1``). Each basis is the joint eigenbasis of
a maximal set of ``d - 1`` commuting non-identity Paulis; ``clifford(n, j)`` maps ``|b>`` onto it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from itertools import combinations

from qiskit.quantum_info import Clifford, Pauli, StabilizerState

MAX_WIRES = 3

# A Pauli on n qubits as (x bits, z bits); qubit 0 is bit 0.
PauliBits = tuple[int, int]


def _commute(a: PauliBits, b: PauliBits) -> bool:
    return bin((a[0] & b[1]) ^ (a[1] & b[0])).count("1") % 2 == 0


def _label(p: PauliBits, n: int) -> str:
    chars = []
    for q in range(n):
        x, z = (p[0] >> q) & 1, (p[1] >> q) & 1
        chars.append("IXZY"[x + 2 * z])
    return "".join(reversed(chars))  # Qiskit order: qubit 0 rightmost


def _group(gens: tuple[PauliBits, ...]) -> frozenset[PauliBits]:
    elems = {(0, 0)}
    for g in gens:
        elems |= {(e[0] ^ g[0], e[1] ^ g[1]) for e in elems}
    return frozenset(elems - {(0, 0)})


@cache
def pauli_partition(n: int) -> tuple[tuple[str, ...], ...]:
    """``d + 1`` sets of ``d - 1`` commuting Paulis partitioning the non-identity Paulis.

    Set 0 is the Z-type set (computational basis). Found by exact-cover search over the
    maximal commuting subgroups; deterministic.
    """
    if not 1 <= n <= MAX_WIRES:
        raise ValueError(f"LOCC bundles support 1..{MAX_WIRES} parallel wires, got {n}")
    d = 2**n
    paulis = [(x, z) for x in range(d) for z in range(d) if (x, z) != (0, 0)]
    groups: set[frozenset[PauliBits]] = set()
    for gens in combinations(paulis, n):
        if all(_commute(a, b) for a, b in combinations(gens, 2)):
            g = _group(gens)
            if len(g) == d - 1:
                groups.add(g)
    ordered = sorted(groups, key=lambda g: sorted(g))
    z_group = _group(tuple((0, 1 << q) for q in range(n)))
    chosen: list[frozenset[PauliBits]] = [z_group]

    def search(used: frozenset[PauliBits]) -> bool:
        if len(chosen) == d + 1:
            return True
        missing = min(p for p in paulis if p not in used)
        for g in ordered:
            if missing in g and not (g & used):
                chosen.append(g)
                if search(used | g):
                    return True
                chosen.pop()
        return False

    if not search(z_group):  # pragma: no cover - a complete set exists for n <= 3
        raise RuntimeError(f"no complete MUB set found for n={n}")
    return tuple(tuple(sorted(_label(p, n) for p in g)) for g in chosen)


@cache
def clifford(n: int, j: int) -> Clifford:
    """A Clifford ``C_j`` with ``{C_j|b>}`` the joint eigenbasis of Pauli set ``j``."""
    labels = pauli_partition(n)[j]
    gens: list[str] = []
    for lab in labels:  # pick n independent generators
        trial = [*gens, lab]
        if len(_group(tuple(_bits(t) for t in trial))) == 2 ** len(trial) - 1:
            gens.append(lab)
        if len(gens) == n:
            break
    return StabilizerState.from_stabilizer_list(gens).clifford


def _bits(label: str) -> PauliBits:
    p = Pauli(label)
    x = sum(1 << q for q in range(p.num_qubits) if p.x[q])
    z = sum(1 << q for q in range(p.num_qubits) if p.z[q])
    return (x, z)


@dataclass(frozen=True)
class Channel:
    """One LOCC channel: measure in ``basis``; ``flip``: N (prepare another basis state)."""

    basis: int
    coefficient: float
    flip: bool


@cache
def locc_channels(n: int) -> tuple[Channel, ...]:
    """The ``2**n + 1`` channels: ``M_{B_1..B_d}`` (+1) and ``N_{B_0}`` (-(d-1))."""
    d = 2**n
    pauli_partition(n)  # validates n
    return (*(Channel(j, 1.0, False) for j in range(1, d + 1)), Channel(0, -(d - 1.0), True))


def locc_gamma(n: int) -> float:
    """Sampling-cost factor of an ``n``-wire LOCC bundle: ``2**(n+1) - 1``."""
    return float(sum(abs(c.coefficient) for c in locc_channels(n)))
