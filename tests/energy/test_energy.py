"""Energy: the power models, their overrides, and the QIP's energyBudget rules."""

from __future__ import annotations

import pytest

from qbackbone.api.policy import InvocationPolicySpec
from qbackbone.api.qpunode import EnergyModel, QPUNodeSpec
from qbackbone.core.circuits.features import CircuitFeatures
from qbackbone.core.energy.model import TECHNOLOGY_DEFAULTS, classical_joules, power_model
from qbackbone.core.qip.engine import decide
from qbackbone.core.qip.inputs import JobInputs, OperationalContext, QPUAssessment
from qbackbone.core.qpus.descriptor import QPUDescriptor

FEATURES = CircuitFeatures(qubits=4, depth=20, two_qubit_depth=5, two_qubit_gates=8, size=40,
                           measured_bases=2, shots_per_basis=1000)


def qpu(name: str, ideal: bool = False, shot_time: float = 1e-3,
        setup: float = 1.0) -> QPUDescriptor:
    return QPUDescriptor(name=name, provider="aer" if ideal else "fake", backend_name=name,
                         qubits=8, device_qubits=8, ideal=ideal, shot_time=shot_time,
                         setup_time=setup, max_depth=None if ideal else 50,
                         max_depth_derived=False, calibration=None)


def assess(d: QPUDescriptor, technology: str | None = None) -> QPUAssessment:
    spec = EnergyModel.model_validate({"technology": technology}) if technology else None
    return QPUAssessment(d, selected=True, ready=True, two_qubit_depth=5,
                         estimated_fidelity=None if d.ideal else 0.9,
                         power=power_model(d.ideal, spec))


def context(classical_seconds: float = 2.0) -> OperationalContext:
    return OperationalContext(mode="Auto", deadline_remaining=None,
                              classical_seconds=classical_seconds,
                              classical_method="statevector",
                              classical_joules=classical_joules(classical_seconds))


def policy(budget: float | None) -> InvocationPolicySpec:
    return InvocationPolicySpec.model_validate(
        {"operational": {"energyBudgetJoules": budget},
         "hardware": {"idealSimulators": "Allowed"}})


def test_defaults_per_technology_and_overrides() -> None:
    sc = TECHNOLOGY_DEFAULTS["superconducting"]
    assert sc.busy_watts == 28_000.0 and sc.idle_watts == 26_000.0
    assert power_model(ideal=True).technology == "simulator"
    assert power_model(ideal=False).technology == "superconducting"
    custom = power_model(False, EnergyModel.model_validate(
        {"technology": "trappedIon", "cryostatWatts": 100.0}))
    assert custom.technology == "trappedIon" and custom.cryostat_watts == 100.0
    assert custom.control_busy_watts == TECHNOLOGY_DEFAULTS["trappedIon"].control_busy_watts
    assert custom.joules(busy_seconds=2.0, shots=100) == pytest.approx(
        (100.0 + 4000.0) * 2.0 + 100 * 1e-2)
    assert classical_joules(3.0, cores=2) == 60.0


def test_qpunode_spec_accepts_an_energy_section_and_rejects_negative_power() -> None:
    spec = QPUNodeSpec.model_validate({"backend": {"provider": "aer", "name": "a"},
                                       "energy": {"controlBusyWatts": 50}})
    assert spec.energy is not None and spec.energy.control_busy_watts == 50
    with pytest.raises(ValueError):
        QPUNodeSpec.model_validate({"backend": {"provider": "aer", "name": "a"},
                                    "energy": {"cryostatWatts": -1}})


def test_decision_carries_the_energy_estimate_of_its_placement() -> None:
    d = decide(JobInputs(FEATURES, context(), (assess(qpu("sc")),)), policy(None))
    assert d.path == "SingleQPU"
    busy = 1.0 + 2 * 1000 * 1e-3  # setup + two bases x 1000 shots
    assert d.energy_joules == pytest.approx(28_000.0 * busy + 2000 * 1e-3, rel=1e-6)
    assert not [r for r in d.rules if r.name == "energyBudget"]  # no budget, no rule


def test_a_qpu_over_the_budget_is_ineligible_with_value_and_bound() -> None:
    inputs = JobInputs(FEATURES, context(), (assess(qpu("sc")), assess(qpu("sim", ideal=True))))
    d = decide(inputs, policy(1_000.0))
    assert d.path == "SingleQPU" and [s.qpu for s in d.shares] == ["sim"]
    rule = next(r for r in d.rules if r.name == "energyBudget" and r.qpu == "sc")
    assert not rule.passed and rule.threshold == 1_000.0
    assert rule.value == pytest.approx(84_002.0)
    assert next(r for r in d.rules if r.name == "energyBudget" and r.qpu == "sim").passed


def test_over_budget_everywhere_goes_classical_then_is_refused() -> None:
    inputs = JobInputs(FEATURES, context(), (assess(qpu("sc")),))
    d = decide(inputs, policy(1_000.0))
    assert d.path == "Classical" and d.energy_joules == pytest.approx(20.0)
    refused = decide(inputs, policy(5.0))
    assert refused.refused
    rule = next(r for r in refused.rules if r.name == "classicalEnergyBudget")
    assert not rule.passed and rule.value == 20.0 and rule.threshold == 5.0
