"""Planning respects every limit and explains refusals."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit, qasm2

from qbackbone.core.cutting import CutPlanningError, QPUCapacity, plan_cuts, unitary_part

from ..conftest import QASMBENCH
from .circuits import blocks

QC = blocks([(0, 4), (3, 7)], 7)
OBS = ["Z" * 7]
FLEET = [QPUCapacity("small", 4, None), QPUCapacity("tiny", 2, None)]


def test_fits_whole_means_no_cut() -> None:
    plan = plan_cuts(QC, OBS, [QPUCapacity("big", 8, None)], ["loccWire"], 10, 2, 500)
    assert plan.method == "none" and plan.cuts == [] and plan.overhead == 1
    assert plan.subcircuits[0].shots == 500 and plan.subcircuits[0].eligible_qpus == ["big"]


def test_locc_is_cheaper_than_lo_when_both_allowed() -> None:
    plan = plan_cuts(QC, OBS, FLEET, ["gate", "loWire", "loccWire"], 100, 4, 100, seed=1)
    assert plan.overhead == 9 and plan.method == "locc"
    assert all(s.eligible_qpus == ["small"] for s in plan.subcircuits)
    assert any("chosen" in line for line in plan.explanation)


def test_overhead_limit_refused_with_numbers() -> None:
    with pytest.raises(CutPlanningError, match=r"gamma\^2 = 16 > maxSamplingOverhead 10"):
        plan_cuts(QC, OBS, FLEET, ["loWire"], 10, 4, 100, seed=1)


def test_subcircuit_limit() -> None:
    chain = blocks([(0, 3), (2, 5), (4, 7)], 7)
    with pytest.raises(CutPlanningError, match="3 subcircuits > maxSubcircuits 2"):
        plan_cuts(chain, OBS, [QPUCapacity("q", 3, None)], ["loccWire"], 1e4, 2, 100, seed=1)


def test_allowed_kinds_respected() -> None:
    plan = plan_cuts(QC, OBS, FLEET, ["gate"], 1e4, 4, 100, seed=1)
    assert {c.kind for c in plan.cuts} == {"gate"}
    with pytest.raises(CutPlanningError, match="allows no cut kinds"):
        plan_cuts(QC, OBS, FLEET, [], 1e4, 4, 100)
    with pytest.raises(ValueError, match="unknown cut kinds"):
        plan_cuts(QC, OBS, FLEET, ["teleport"], 1e4, 4, 100)


def test_depth_limit_explained() -> None:
    shallow = [QPUCapacity("shallow", 4, 2)]
    with pytest.raises(CutPlanningError, match="fits no QPU"):
        plan_cuts(QC, OBS, shallow, ["loccWire"], 1e4, 4, 100, seed=1)


def test_bad_observable() -> None:
    with pytest.raises(ValueError, match="has 2 letters but the circuit has 7 qubits"):
        plan_cuts(QC, ["ZZ"], FLEET, ["loccWire"], 1e4, 4, 100)


def _load(name: str) -> QuantumCircuit:
    return qasm2.load(str(QASMBENCH / f"{name}.qasm"),
                      custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)


@pytest.mark.parametrize("name", ["seca_n11", "cc_n12"])
def test_classical_control_refused(name: str) -> None:
    with pytest.raises(CutPlanningError, match=r"only unitary circuits|mid-circuit"):
        unitary_part(_load(name))


def test_sat_n11_has_only_final_measurements() -> None:
    qc = unitary_part(_load("sat_n11"))
    assert qc.num_qubits == 11 and qc.num_clbits == 0


def test_final_measurements_removed() -> None:
    qc = QuantumCircuit(2, 2)
    qc.h(0)
    qc.cx(0, 1)
    qc.measure([0, 1], [0, 1])
    assert [i.operation.name for i in unitary_part(qc).data] == ["h", "cx"]
