"""From the primitive's raw numbers to a value with an honest stdError and systematicError.

At level ZNE the linear extrapolation is the value. Its statistical error is never below the
error at noise factor 1 (the exponential fit's own error was seen 10 sigma too small). Its
systematic error is half the spread between the two extrapolators, a 0.01 floor and the
residual-bias model of level ZNE, in quadrature. When the total exceeds the policy's target
sigma and the value at noise factor 1 (readout-mitigated, with the residual-bias model) is
more certain, or a fit is not finite, that value is used instead. Readout-only and
unmitigated values take the residual model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qbackbone.api.mitigation import MitigationLevel
from qbackbone.core.mitigation.estimator import EXTRAPOLATORS, RawEstimate
from qbackbone.core.mitigation.plan import MitigationPlan
from qbackbone.core.mitigation.residual import residual_systematic

ZNE_SYSTEMATIC_FLOOR = 0.01
PAULI_RANGE = 1.0  # |<P>| <= 1: values are clipped to it and errors capped at it


@dataclass(frozen=True)
class MitigatedValue:
    """One observable's value, statistical and systematic error, and how it was obtained."""

    value: float
    std_error: float
    systematic_error: float
    method: str


def _clip(value: float) -> float:
    return min(max(value, -PAULI_RANGE), PAULI_RANGE)


def _cap(error: float) -> float:
    return min(error, PAULI_RANGE) if math.isfinite(error) else PAULI_RANGE


def mitigated_value(raw: RawEstimate, plan: MitigationPlan, fidelity: float,
                    target_sigma: float) -> MitigatedValue:
    """Apply the level's uncertainty rule to one raw estimate. ``fidelity`` is the estimated
    success probability with readout, at every level: TREX leaves a bias where readout
    errors are large (fake_lagos: 26-46 % on three qubits), which F without readout misses."""
    level: MitigationLevel = "Readout" if plan.readout else "None"  # without extrapolation
    if plan.zne and raw.extrapolated:
        linear = raw.extrapolated[EXTRAPOLATORS.index("linear")]
        expo = raw.extrapolated[EXTRAPOLATORS.index("exponential")]
        stat = max(raw.extrapolated_stds[EXTRAPOLATORS.index("linear")],
                   raw.noise_factor_stds[0])
        spread = 0.5 * abs(expo - linear)
        # Two fits that agree can still share a bias (seen: 0.075 off with a 0.001 spread),
        # so the residual-bias model of level ZNE is added to the spread.
        sys = math.hypot(spread, ZNE_SYSTEMATIC_FLOOR, residual_systematic("ZNE", fidelity, linear))
        total = math.hypot(stat, sys)
        base, base_std = raw.noise_factor_values[0], raw.noise_factor_stds[0]
        fallback_total = math.hypot(base_std, residual_systematic(level, fidelity, base))
        finite = all(map(math.isfinite, (linear, stat, sys)))
        # Above the target the extrapolation is kept only while it is no less certain than
        # the unextrapolated value (which is the more biased of the two).
        if finite and (total <= target_sigma or total <= fallback_total):
            return MitigatedValue(_clip(linear), _cap(stat), _cap(sys),
                                  "ZNE linear extrapolation; systematic = half the "
                                  "exponential/linear spread with the residual-bias model")
        return MitigatedValue(
            _clip(base), _cap(base_std), residual_systematic(level, fidelity, base),
            f"noise factor 1 ({'TREX' if plan.readout else 'twirled'}): the ZNE fit was "
            + ("not finite" if not math.isfinite(total) else
               f"too uncertain (sigma {total:.3g} > target {target_sigma:g})")
            + "; systematic from the residual-bias model")
    return MitigatedValue(_clip(raw.value), _cap(raw.std),
                          residual_systematic(level, fidelity, raw.value),
                          ("TREX" if plan.readout else "unmitigated")
                          + "; systematic from the residual-bias model")
