"""The success probability a noisy result implies, under a global depolarizing model.

With probability p the circuit runs as intended, otherwise the output is uniformly random:
an expectation value shrinks to p times its exact value, and a distribution moves towards
uniform, so its total variation distance from the exact one is (1 - p) times that of the
uniform distribution. The estimate (``core/qpus/fidelity.py``) predicts p before the run;
the deviation measured against exact simulation gives the p the QPU delivered. Only
unmitigated data says anything about p: mitigation removes part of the shrinkage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

MIN_SIGNAL = 0.05  # exact values (or distances) smaller than this carry no information on p


def from_expectations(values: Sequence[float], exact: Sequence[float]) -> float | None:
    """Least-squares p with values = p * exact, over observables with |exact| >= MIN_SIGNAL;
    clipped to [0, 1]; None without signal."""
    pairs = [(v, e) for v, e in zip(values, exact, strict=False) if abs(e) >= MIN_SIGNAL]
    norm = sum(e * e for _, e in pairs)
    if not pairs or norm <= 0:
        return None
    return min(max(sum(v * e for v, e in pairs) / norm, 0.0), 1.0)


def from_counts(counts: Mapping[str, int], exact: Mapping[str, float]) -> float | None:
    """p = 1 - TVD(measured, exact) / TVD(uniform, exact), clipped to [0, 1]; None when the
    exact distribution is (nearly) uniform or nothing was measured."""
    shots = sum(counts.values())
    if shots <= 0 or not exact:
        return None
    width = len(next(iter(exact)))
    uniform = 1.0 / (2 ** width)
    keys = set(counts) | set(exact)
    measured = {k: counts.get(k, 0) / shots for k in keys}
    tvd = 0.5 * sum(abs(measured[k] - exact.get(k, 0.0)) for k in keys)
    listed = sum(abs(uniform - p) for p in exact.values())
    missing = (2 ** width - len(exact)) * uniform  # outcomes exact gives probability zero
    spread = 0.5 * (listed + missing)
    if spread < MIN_SIGNAL:
        return None
    return min(max(1.0 - tvd / spread, 0.0), 1.0)
