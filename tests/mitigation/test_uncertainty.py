"""From raw Estimator numbers to honest errors, and a verification that can fail."""

from __future__ import annotations

import math

from qbackbone.api.quantumjob import ExpectationValue
from qbackbone.core.mitigation.estimator import RawEstimate
from qbackbone.core.mitigation.plan import MitigationPlan
from qbackbone.core.mitigation.residual import RESIDUAL_COEFFICIENT, residual_systematic
from qbackbone.core.mitigation.uncertainty import mitigated_value
from qbackbone.core.verify.checks import NoiseProfile, verify_expectations

ZNE = MitigationPlan("ZNE", "test", readout=True, zne=True)
TREX = MitigationPlan("Readout", "test", readout=True)


def _zne(exponential: float, linear: float, std: float = 0.01) -> RawEstimate:
    return RawEstimate(value=exponential, std=std, noise_factor_values=(0.9, 0.75, 0.6),
                       noise_factor_stds=(0.012, 0.015, 0.02),
                       extrapolated=(exponential, linear), extrapolated_stds=(std, 0.03))


def test_zne_reports_the_linear_value_with_spread_and_model_as_systematic() -> None:
    v = mitigated_value(_zne(1.02, 0.98), ZNE, fidelity=0.9, target_sigma=0.08)
    assert v.value == 0.98 and v.std_error == 0.03  # the linear fit's own error
    expected = math.hypot(0.02, 0.01, residual_systematic("ZNE", 0.9, 0.98))
    assert math.isclose(v.systematic_error, expected) and "ZNE" in v.method


def test_the_statistical_error_is_never_below_noise_factor_one() -> None:
    raw = RawEstimate(1.0, 0.001, (0.9, 0.8, 0.7), (0.012, 0.01, 0.01), (1.0, 1.0),
                      (0.001, 0.002))
    assert mitigated_value(raw, ZNE, 0.95, 0.08).std_error == 0.012


def test_a_diverging_fit_falls_back_to_noise_factor_one_with_the_readout_model() -> None:
    v = mitigated_value(_zne(35.0, 0.1), ZNE, fidelity=0.8, target_sigma=0.08)
    assert v.value == 0.9 and v.std_error == 0.012
    assert math.isclose(v.systematic_error, RESIDUAL_COEFFICIENT["Readout"] * 0.2 * 0.9)
    assert "too uncertain" in v.method
    infinite = mitigated_value(_zne(math.inf, 0.1), ZNE, 0.8, 0.08)
    assert "not finite" in infinite.method and math.isfinite(infinite.systematic_error)


def test_values_are_clipped_to_the_pauli_range_and_errors_capped() -> None:
    v = mitigated_value(_zne(1.2, 1.05, std=0.005), ZNE, fidelity=0.99, target_sigma=0.5)
    assert v.value == 1.0
    raw = RawEstimate(0.5, math.inf)
    assert mitigated_value(raw, TREX, 0.5, 0.08).std_error == 1.0


def test_trex_values_take_the_residual_model_and_ideal_ones_none() -> None:
    v = mitigated_value(RawEstimate(0.8, 0.02), TREX, fidelity=0.7, target_sigma=0.08)
    assert math.isclose(v.systematic_error, RESIDUAL_COEFFICIENT["Readout"] * 0.3 * 0.8)
    assert residual_systematic("None", 1.0, 0.8) == 0.0


def _values(shift: float) -> list[ExpectationValue]:
    return [ExpectationValue(observable="ZZ", value=0.95 + shift, std_error=0.015,
                             systematic_error=0.02),
            ExpectationValue(observable="XX", value=0.97, std_error=0.015,
                             systematic_error=0.02)]


def test_noisy_verification_fails_a_wrong_result() -> None:
    noise = NoiseProfile(((1.0, 0.6),), systematic_reported=True)
    good = verify_expectations(_values(0.0), [1.0, 1.0], noise, max_sigma=4.0)
    assert good.passed and good.informative and good.noise_allowance == 0.0
    # 0.2 off is 8 total sigma: the old allowance 2 (1 - 0.6) = 0.8 would have passed it
    wrong = verify_expectations(_values(-0.2), [1.0, 1.0], noise, max_sigma=4.0)
    assert not wrong.passed and "ZZ" in wrong.details


def test_a_check_whose_allowance_covers_the_whole_range_is_uninformative() -> None:
    values = [ExpectationValue(observable="ZZ", value=0.3, std_error=0.02,
                               systematic_error=0.6)]
    check = verify_expectations(values, [1.0], NoiseProfile(((1.0, 0.3),),
                                                            systematic_reported=True), 4.0)
    assert check.passed and not check.informative and "could not fail" in check.details
