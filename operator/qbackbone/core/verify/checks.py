"""Checks of a result: against exact values (within noise and sampling error) or bounds."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qbackbone.api.quantumjob import ExpectationValue, Verification


@dataclass(frozen=True)
class NoiseProfile:
    """Where the shots came from: shot share and estimated success probability per QPU."""

    shares: tuple[tuple[float, float], ...]  # (fraction of shots, success probability)
    amplification: float = 1.0  # a cut result's bias grows with gamma, the sum of |coefficients|

    @property
    def noisy(self) -> bool:
        """Whether any shots came from a QPU with errors."""
        return any(p < 1.0 for _, p in self.shares)

    def expectation_allowance(self) -> float:
        """Largest bias noise can cause on a +-1 observable: 2 x (share of failed shots)."""
        return self.amplification * 2.0 * sum(w * (1.0 - p) for w, p in self.shares)

    def distribution_allowance(self) -> float:
        """Largest total-variation distance noise can cause."""
        return sum(w * (1.0 - p) for w, p in self.shares)


def verify_expectations(values: Sequence[ExpectationValue], exact: Sequence[float] | None,
                        noise: NoiseProfile, max_sigma: float) -> Verification:
    """Pass when every value is within max_sigma standard errors plus the noise allowance."""
    if exact is None:
        bad = [v for v in values if abs(v.value) > 1.0 + max_sigma * v.std_error]
        return Verification(
            method="PhysicalBounds", passed=not bad, noisy=noise.noisy,
            details="too wide for exact simulation; checked |<P>| <= 1 within the error bars"
            + (f"; out of bounds: {', '.join(v.observable for v in bad)}" if bad else ""),
        )
    allowance = noise.expectation_allowance()
    sigmas, devs, failed = [], [], []
    for v, e in zip(values, exact, strict=True):
        dev = abs(v.value - e)
        devs.append(dev)
        sigmas.append(dev / v.std_error if v.std_error > 0 else (0.0 if dev < 1e-9 else math.inf))
        if dev > max_sigma * v.std_error + allowance + 1e-9:
            failed.append(v.observable)
    worst = max(sigmas, default=0.0)
    details = (f"max deviation {max(devs, default=0.0):.4g} = {worst:.2f} sigma; allowed "
               f"{max_sigma:g} sigma" + (f" + noise allowance {allowance:.3g}" if noise.noisy
                                         else " (noise-free backends)"))
    if failed:
        details += f"; beyond the allowance: {', '.join(failed)}"
    return Verification(
        method="ExactStatevector", passed=not failed, noisy=noise.noisy,
        exact_values=[round(e, 12) for e in exact],
        max_deviation_sigma=None if math.isinf(worst) else round(worst, 3),
        max_abs_deviation=round(max(devs, default=0.0), 6),
        noise_allowance=round(allowance, 6), details=details,
    )


def total_variation(counts: Mapping[str, int], exact: Mapping[str, float]) -> float:
    """Total-variation distance between empirical counts and a distribution."""
    shots = sum(counts.values())
    keys = set(counts) | set(exact)
    return 0.5 * sum(abs(counts.get(k, 0) / shots - exact.get(k, 0.0)) for k in keys)


def verify_counts(counts: Mapping[str, int], exact: Mapping[str, float] | None,
                  noise: NoiseProfile, max_sigma: float) -> Verification:
    """Pass when the TVD is within the sampling bound (scaled by max_sigma) plus noise."""
    shots = sum(counts.values())
    if exact is None:
        ok = shots > 0 and all(c >= 0 for c in counts.values())
        return Verification(method="PhysicalBounds", passed=ok, noisy=noise.noisy,
                            details=f"{shots} shots over {len(counts)} outcomes; no exact "
                            "reference (too wide, or measurements mid-circuit)")
    tvd = total_variation(counts, exact)
    # E[TVD] <= 1/2 sum_i sqrt(p_i (1 - p_i) / N): the sampling scale of the distance.
    scale = 0.5 * sum(math.sqrt(p * (1 - p) / shots) for p in exact.values())
    allowance = noise.distribution_allowance()
    bound = max_sigma * max(scale, 1.0 / shots) + allowance
    return Verification(
        method="ExactDistribution", passed=tvd <= bound, noisy=noise.noisy,
        total_variation_distance=round(tvd, 6), noise_allowance=round(allowance, 6),
        max_deviation_sigma=round(tvd / scale, 3) if scale > 0 else None,
        details=f"total variation distance {tvd:.4g}; bound {bound:.4g} "
        f"({max_sigma:g} x sampling scale {scale:.3g}"
        + (f" + noise allowance {allowance:.3g})" if noise.noisy else ")"),
    )
