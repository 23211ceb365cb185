"""Features of a QUBO that the QIP reads: size, density and how rugged its landscape is."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qbackbone.core.optimize.qubo import Qubo

_WALK_STEPS = 2000


@dataclass(frozen=True)
class QuboFeatures:
    """What the QIP knows about a problem before any solver runs."""

    variables: int
    couplings: int
    density: float
    ruggedness: float

    def as_dict(self) -> dict[str, int | float]:
        """camelCase, for status.decision.features."""
        return {"variables": self.variables, "couplings": self.couplings,
                "density": round(self.density, 4), "ruggedness": round(self.ruggedness, 4)}


def ruggedness(qubo: Qubo, seed: int = 0, steps: int = _WALK_STEPS) -> float:
    """1 - rho(1), rho the autocorrelation of energy along a random single-flip walk.

    Weinberger's landscape measure: 0 is smooth (neighbours have similar energies), 1 is
    uncorrelated (random), and above 1 anti-correlated.
    """
    n = qubo.size
    if n < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n).astype(np.int8)
    energy = float(qubo.energy(x))
    sym = qubo.quadratic + qubo.quadratic.T
    trace = np.empty(steps)
    for t, i in enumerate(rng.integers(0, n, steps)):
        # One flip's energy change (qubo.flip_deltas computes all n, O(n^2) per step).
        energy += (1 - 2 * int(x[i])) * float(qubo.linear[i] + sym[i] @ x)
        x[i] ^= 1
        trace[t] = energy
    centred = trace - trace.mean()
    variance = float(centred @ centred)
    if variance <= 1e-12:
        return 0.0
    rho = float(centred[:-1] @ centred[1:]) / variance
    return 1.0 - rho


def qubo_features(qubo: Qubo) -> QuboFeatures:
    """Size, coupling density and ruggedness of a QUBO."""
    n = qubo.size
    couplings = int(np.count_nonzero(qubo.quadratic))
    possible = n * (n - 1) // 2
    return QuboFeatures(n, couplings, couplings / possible if possible else 0.0,
                        ruggedness(qubo))
