"""The QIP's choice of mitigation level: policy, QPU, deadline and shot budget."""

from __future__ import annotations

from qbackbone.api.mitigation import MitigationPolicy
from qbackbone.core.mitigation.plan import choose_mitigation


def _always(_: str, __: float) -> bool:
    return True


def test_ideal_simulators_are_never_mitigated() -> None:
    plan = choose_mitigation(MitigationPolicy(zne="Always"), ideal=True, expectation=True,
                             fits=_always)
    assert plan.level == "None" and plan.shot_multiplier == 1.0 and "ideal" in plan.reason


def test_default_is_zne_with_trex_when_it_fits() -> None:
    plan = choose_mitigation(MitigationPolicy(), ideal=False, expectation=True, fits=_always)
    assert plan.level == "ZNE" and plan.readout and plan.zne and not plan.dynamical_decoupling
    assert plan.shot_multiplier == 4.0 and plan.circuit_multiplier == 3.0
    assert plan.techniques[0] == "TREX" and any(t.startswith("ZNE") for t in plan.techniques)


def test_a_deadline_that_only_fits_twice_the_shots_gets_readout_mitigation() -> None:
    plan = choose_mitigation(MitigationPolicy(), ideal=False, expectation=True,
                             fits=lambda _, m: m <= 2.0)
    assert plan.level == "Readout" and plan.shot_multiplier == 2.0
    assert "does not fit" in plan.reason


def test_nothing_fits_means_unmitigated_with_a_reason() -> None:
    plan = choose_mitigation(MitigationPolicy(), ideal=False, expectation=True,
                             fits=lambda _, m: m <= 1.0)
    assert plan.level == "None" and "residual-bias model" in plan.reason


def test_the_shot_multiplier_cap_and_forbidden_techniques_are_honoured() -> None:
    capped = choose_mitigation(MitigationPolicy(max_shot_multiplier=3), ideal=False,
                               expectation=True, fits=_always)
    assert capped.level == "Readout" and "maxShotMultiplier" in capped.reason
    no_zne = choose_mitigation(MitigationPolicy(zne="Never"), ideal=False, expectation=True,
                               fits=_always)
    assert no_zne.level == "Readout"
    none = choose_mitigation(MitigationPolicy(zne="Never", readout="Never"), ideal=False,
                             expectation=True, fits=_always)
    assert none.level == "None" and "forbids" in none.reason
    off = choose_mitigation(MitigationPolicy(enabled=False), ideal=False, expectation=True,
                            fits=_always)
    assert off.level == "None" and "disables" in off.reason


def test_always_forces_a_technique_even_past_the_deadline() -> None:
    plan = choose_mitigation(MitigationPolicy(zne="Always"), ideal=False, expectation=True,
                             fits=lambda _, m: False)
    assert plan.level == "ZNE" and "requires" in plan.reason


def test_sampling_jobs_get_m3_readout_mitigation() -> None:
    plan = choose_mitigation(MitigationPolicy(), ideal=False, expectation=False, fits=_always)
    assert plan.level == "Readout" and plan.m3 and plan.techniques == ["M3"]
    assert plan.shot_multiplier == 1.0


def test_simulated_zne_grows_fast_with_width() -> None:
    from qbackbone.core.mitigation.cost import simulated_seconds

    small = simulated_seconds("ZNE", 4, 24, 2, 4000)
    wide = simulated_seconds("ZNE", 8, 52, 2, 4000)
    assert small < 10 and wide > 200  # measured 5.5 s and 240 s (core/mitigation/cost.py)
    assert simulated_seconds("Readout", 8, 52, 2, 4000) < 20 < wide
