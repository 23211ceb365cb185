"""Checks of a result: against exact values (within noise and sampling error) or bounds.

Each observable is one two-sided test, so a job with many observables would fail by chance
if each were tested at ``maxDeviationSigma``. The policy's sigma is read as the job's
family-wise false-failure level ``alpha = 2 (1 - Phi(sigma))`` and every observable is tested
at the Sidak threshold for ``m`` tests (:func:`familywise_threshold`). Sidak's inequality makes
this conservative for the positively correlated estimates of one measurement basis.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

from qbackbone.api.quantumjob import ExpectationValue, Verification

# Results carry values and errors to 6 decimals (the pipeline paths round them): no deviation
# or error below this can be resolved, so it is the smallest scale a deviation is measured in.
# It also keeps a reported stdError of 0 (an exact classical value, or a rounded one) from
# turning a rounding difference into an infinite number of sigmas.
VALUE_RESOLUTION = 1e-6
PAULI_SPAN = 2.0  # the largest possible |value - exact| of a +-1 observable
_LISTED = 5  # observables named in details; the rest are counted (details stay small)


@dataclass(frozen=True)
class NoiseProfile:
    """Where the shots came from: shot share and estimated success probability per QPU."""

    shares: tuple[tuple[float, float], ...]  # (fraction of shots, success probability)
    amplification: float = 1.0  # a cut result's bias grows with gamma, the sum of |coefficients|
    # The values carry their own systematicError (mitigated noisy QPUs): they are tested
    # against sqrt(stdError^2 + systematicError^2) with no blanket allowance.
    systematic_reported: bool = False
    # Sampling jobs: the variance multiplier of a readout-mitigated (M3) distribution.
    mitigation_overhead: float = 1.0

    @property
    def noisy(self) -> bool:
        """Whether any shots came from a QPU with errors."""
        return any(p < 1.0 for _, p in self.shares)

    def expectation_allowance(self) -> float:
        """Largest bias noise can cause on a +-1 observable: 2 x (share of failed shots);
        none when the values report their systematic error themselves."""
        if self.systematic_reported:
            return 0.0
        return self.amplification * 2.0 * sum(w * (1.0 - p) for w, p in self.shares)

    def distribution_allowance(self) -> float:
        """Largest total-variation distance noise can cause."""
        return sum(w * (1.0 - p) for w, p in self.shares)


def familywise_threshold(max_sigma: float, tests: int) -> float:
    """Per-test two-sided threshold (in sigma) for ``tests`` tests at the family-wise level
    that ``max_sigma`` gives one test: ``alpha = 2 (1 - Phi(max_sigma))`` and
    ``z_m = Phi^-1(1 - (1 - (1 - alpha)^(1/m)) / 2)`` (Sidak). Never below ``max_sigma``."""
    if tests <= 1:
        return max_sigma
    alpha = math.erfc(max_sigma / math.sqrt(2.0))  # 2 (1 - Phi(z)), accurate far in the tail
    if alpha >= 1.0:  # a threshold of (about) zero sigma: every deviation fails anyway
        return max_sigma
    per_test = -math.expm1(math.log1p(-alpha) / tests)  # 1 - (1 - alpha)^(1/m), no cancellation
    if per_test / 2.0 <= 0.0:  # alpha underflowed (sigma > ~38): the Gaussian tail asymptote
        return math.sqrt(max_sigma * max_sigma + 2.0 * math.log(tests))
    return max(max_sigma, -NormalDist().inv_cdf(per_test / 2.0))


def _threshold_text(max_sigma: float, z: float, tests: int) -> str:
    if tests <= 1:
        return f"allowed {z:.3g} sigma"
    return (f"allowed {z:.3g} sigma per observable (Sidak: family-wise {max_sigma:g} sigma "
            f"over {tests} observables)")


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown if len(names) <= _LISTED else f"{shown} and {len(names) - _LISTED} more"


def _usable(v: ExpectationValue) -> bool:
    return math.isfinite(v.value) and math.isfinite(v.std_error) and v.std_error >= 0.0


def _scale(v: ExpectationValue) -> float:
    """The value's total reported uncertainty sqrt(stdError^2 + systematicError^2)."""
    return max(math.hypot(v.std_error, v.systematic_error), VALUE_RESOLUTION)


def verify_expectations(values: Sequence[ExpectationValue], exact: Sequence[float] | None,
                        noise: NoiseProfile, max_sigma: float,
                        no_exact: str | None = None) -> Verification:
    """Pass when every value is within the family-wise threshold of standard errors plus the
    noise allowance of its exact value (or, without ``exact``, when ``|<P>| <= 1`` within the
    threshold; ``no_exact`` says why there is no exact reference)."""
    z = familywise_threshold(max_sigma, len(values))
    allowed = _threshold_text(max_sigma, z, len(values))
    if exact is None:
        broken = [v.observable for v in values if not _usable(v)]
        bad = [v.observable for v in values
               if _usable(v) and abs(v.value) > 1.0 + z * _scale(v)]
        return Verification(
            method="PhysicalBounds", passed=not bad and not broken, noisy=noise.noisy,
            details=f"{no_exact or 'too wide for exact simulation'}; checked |<P>| <= 1 "
            f"({allowed})" + (f"; out of bounds: {_names(bad)}" if bad else "")
            + (f"; not a finite number: {_names(broken)}" if broken else ""),
        )
    allowance = noise.expectation_allowance()
    sigmas, devs, failed, broken = [], [], [], []
    for v, e in zip(values, exact, strict=True):
        if not _usable(v) or not math.isfinite(e):
            broken.append(v.observable)
            continue
        dev = abs(v.value - e)
        devs.append(dev)
        sigmas.append(dev / _scale(v))
        if dev > z * _scale(v) + allowance:
            failed.append(v.observable)
    worst, largest = max(sigmas, default=0.0), max(devs, default=0.0)
    if noise.systematic_reported:
        basis = " (sigma = sqrt(stdError^2 + systematicError^2), noisy QPUs)"
    elif noise.noisy:
        basis = f" + noise allowance {allowance:.3g}"
    else:
        basis = " (noise-free backends)"
    details = f"max deviation {largest:.4g} = {worst:.2f} sigma; {allowed}{basis}"
    # A +-1 observable's value and exact value differ by at most 2: an allowed deviation of
    # 2 or more for every value is a check that cannot fail.
    informative = any(z * _scale(v) + allowance < PAULI_SPAN for v in values if _usable(v))
    if not informative:
        details += (f"; uninformative: every allowed deviation is at least {PAULI_SPAN:g}, the "
                    "whole range of a Pauli expectation value, so the check could not fail")
    if failed:
        details += f"; beyond the allowance: {_names(failed)}"
    if broken:
        details += f"; not a finite number: {_names(broken)}"
    return Verification(
        method="ExactStatevector", passed=not failed and not broken, noisy=noise.noisy,
        exact_values=[round(e, 12) for e in exact] if all(map(math.isfinite, exact)) else None,
        max_deviation_sigma=round(worst, 3), max_abs_deviation=round(largest, 6),
        noise_allowance=round(allowance, 6), details=details, informative=informative,
    )


def total_variation(counts: Mapping[str, int], exact: Mapping[str, float]) -> float:
    """Total-variation distance between empirical counts and a distribution."""
    shots = sum(counts.values())
    keys = set(counts) | set(exact)
    return 0.5 * sum(abs(counts.get(k, 0) / shots - exact.get(k, 0.0)) for k in keys)


def verify_counts(counts: Mapping[str, int], exact: Mapping[str, float] | None,
                  noise: NoiseProfile, max_sigma: float,
                  no_exact: str | None = None, mitigated: Mapping[str, float] | None = None,
                  mitigation_overhead: float = 1.0) -> Verification:
    """Pass when the TVD is within the sampling bound (scaled by max_sigma) plus noise.

    The distance is one test of the whole distribution, so ``max_sigma`` needs no
    multiple-testing correction here. With a readout-mitigated distribution, that is what is
    compared; its sampling scale grows by the square root of the mitigation's variance
    overhead, and ``noise`` should then hold success probabilities without readout.
    """
    shots = sum(counts.values())
    valid = shots > 0 and all(c >= 0 for c in counts.values())
    if exact is None or not valid:
        why = no_exact or "no exact reference (too wide, or measurements mid-circuit)"
        return Verification(method="PhysicalBounds", passed=valid, noisy=noise.noisy,
                            details=f"{shots} shots over {len(counts)} outcomes; "
                            + (why if valid else "no shots, or a negative count"))
    if mitigated is None:
        tvd = total_variation(counts, exact)
    else:
        keys = set(mitigated) | set(exact)
        tvd = 0.5 * sum(abs(mitigated.get(k, 0.0) - exact.get(k, 0.0)) for k in keys)
    # E[TVD] <= 1/2 sum_i sqrt(p_i (1 - p_i) / N): the sampling scale of the distance, never
    # below one shot's weight (a deterministic outcome has scale 0).
    scale = max(0.5 * sum(math.sqrt(p * (1 - p) / shots) for p in exact.values()), 1.0 / shots)
    scale *= math.sqrt(max(mitigation_overhead, 1.0))
    allowance = noise.distribution_allowance()
    bound = max_sigma * scale + allowance
    return Verification(
        method="ExactDistribution", passed=tvd <= bound, noisy=noise.noisy,
        total_variation_distance=round(tvd, 6), noise_allowance=round(allowance, 6),
        max_deviation_sigma=round(tvd / scale, 3),
        details=("readout-mitigated (M3) " if mitigated is not None else "")
        + f"total variation distance {tvd:.4g}; bound {bound:.4g} "
        f"({max_sigma:g} x sampling scale {scale:.3g}, one test of the distribution"
        + (f" + noise allowance {allowance:.3g})" if noise.noisy else ")"),
    )
