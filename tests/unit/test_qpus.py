"""Physics-informed QPU descriptors: calibration medians, regions, fidelity, max depth."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit

from qbackbone.core.errors import JobFailure
from qbackbone.core.qpus.descriptor import best_region, calibration_from_target, restrict_target
from qbackbone.core.qpus.devices import fake_backend
from qbackbone.core.qpus.fidelity import derive_max_depth, estimate_success_probability
from qbackbone.core.qpus.fleet import build_qpu
from tests.conftest import make_qpu


def test_calibration_medians_come_from_the_device() -> None:
    cal = calibration_from_target(fake_backend("fake_sherbrooke").target)
    assert cal.two_qubit_gate == "ecr"
    assert cal.median_error("2q") == pytest.approx(7.8e-3, rel=0.1)
    assert cal.median_t1() == pytest.approx(278e-6, rel=0.1)
    torino = calibration_from_target(fake_backend("fake_torino").target)
    assert torino.two_qubit_gate == "cz"
    assert torino.median_error("2q") < cal.median_error("2q")  # Heron beats Eagle


def test_region_is_connected_and_restricted_target_is_renumbered() -> None:
    target = fake_backend("fake_torino").target
    region = best_region(target, 12)
    assert len(region) == 12
    small = restrict_target(target, region)
    assert small.num_qubits == 12
    coupling = small.build_coupling_map()
    assert coupling is not None and coupling.is_connected()


def test_success_probability_falls_with_depth_and_readout() -> None:
    qpu = build_qpu(make_qpu("n", provider="fake", backend="fake_nairobi"))
    cal = qpu.descriptor.calibration
    assert cal is not None

    def chain(layers: int) -> QuantumCircuit:
        c = QuantumCircuit(3)
        for _ in range(layers):
            c.cx(0, 1)
            c.cx(1, 2)
        c.measure_all()
        return c

    shallow, deep = (estimate_success_probability(qpu.transpile([chain(n)])[0], cal)
                     for n in (1, 10))
    assert 0 < deep < shallow < 1
    # readout alone costs roughly (1 - e_readout)^3 on three measured qubits
    assert shallow < (1 - 0.5 * (cal.median_error("readout") or 0)) ** 3


def test_derived_max_depth_is_larger_for_better_devices() -> None:
    def depth(name: str) -> int:
        cal = calibration_from_target(fake_backend(name).target)
        d = derive_max_depth(cal)
        assert d is not None
        return d

    assert depth("fake_torino") > depth("fake_guadalupe")
    assert 5 < depth("fake_guadalupe") < 1000


def test_unknown_device_and_oversized_region_are_clear() -> None:
    with pytest.raises(JobFailure, match="no fake device named 'fake_nowhere'"):
        build_qpu(make_qpu("x", provider="fake", backend="fake_nowhere"))
    with pytest.raises(JobFailure, match="exceeds the 7 qubits of fake_nairobi"):
        build_qpu(make_qpu("x", provider="fake", backend="fake_nairobi", qubits=9))
