"""The planner chooses only buildable plans (issue 15): QPD terms, QPU fit and overhead are
checked before choosing, and the rejected candidates are explained."""

from __future__ import annotations

import pytest
from qiskit import QuantumCircuit
from qiskit.circuit.library import CU1Gate

from qbackbone.core.cutting import AerRunner, CutPlanningError, QPUCapacity, execute_plan, plan_cuts
from qbackbone.core.cutting.candidates import Limits, find_candidates

from .circuits import assert_close, blocks, exact

TWO_HALVES = [QPUCapacity("left", 3, None), QPUCapacity("right", 3, None)]
OBS = ["IIIZII", "IIZZII", "XXIIII", "IIIXIZ"]


def cu1_bridge() -> QuantumCircuit:
    """Two 3-qubit halves joined by four cheap cu1 gates on q2-q3 (the issue's shape). The
    library decomposes a cu1 cut into 58 QPD terms (a cp cut into 6), so the four gate cuts
    need 58^4 terms."""
    qc = QuantumCircuit(6)
    qc.h(range(6))
    qc.cx(0, 1)
    qc.cx(1, 2)
    qc.cx(4, 5)
    qc.ry(0.7, 5)
    for angle, rotate in ((0.3, "rx"), (0.2, "ry"), (0.25, "rx"), (0.15, "h")):
        qc.append(CU1Gate(angle), [2, 3])
        if rotate == "rx":
            qc.rx(0.4, 3)
        elif rotate == "ry":
            qc.ry(0.4, 2)
        else:
            qc.h(3)
    return qc


def test_cheaper_gate_plan_with_too_many_qpd_terms_gives_way_to_locc() -> None:
    qc = cu1_bridge()
    plan = plan_cuts(qc, OBS, TWO_HALVES, ["gate", "loccWire"], 1000, 8, 400, seed=1)
    assert plan.method == "locc" and plan.cut_kinds == ["loccWire"]
    assert plan.gamma == 3 and plan.overhead == 9 and plan.qpd_terms == 3
    gate = next(c for c in plan.candidates if c.kinds == ["gate"])
    # the gate plan is the cheaper one: choosing by overhead alone picked it and then failed
    assert gate.overhead < plan.overhead and gate.qpd_terms == 58**4
    assert "QPD terms > the engine's limit of 5000" in gate.verdict
    assert any(line.startswith("rejected: lo (gate)") for line in plan.explanation)
    assert [c.verdict for c in plan.candidates].count("chosen") == 1
    result = execute_plan(plan, AerRunner(seed=7), seed=7)
    assert_close(result.values, result.std_errors, exact(qc, OBS), max_se=0.2)


def test_every_allowed_kind_still_finds_the_buildable_plan() -> None:
    plan = plan_cuts(cu1_bridge(), OBS, TWO_HALVES, ["gate", "loWire", "loccWire"], 1000, 8,
                     100, seed=1)
    assert plan.method == "locc" and plan.overhead == 9
    lo_wire = next(c for c in plan.candidates if c.kinds == ["loWire"])
    assert lo_wire.verdict == "buildable but not cheaper" and lo_wire.overhead == 16


def test_only_unbuildable_candidates_are_refused_naming_the_term_limit() -> None:
    with pytest.raises(CutPlanningError, match=r"11316496 QPD terms > the engine's limit of 5000"):
        plan_cuts(cu1_bridge(), OBS, TWO_HALVES, ["gate"], 1000, 8, 100, seed=1)


def test_term_limit_is_checked_for_every_candidate() -> None:
    qc = blocks([(0, 4), (3, 7)], 7)
    fleet = [QPUCapacity("small", 4, None)]
    loose = find_candidates(qc, ["Z" * 7], fleet, ["gate"], Limits(1e4, 4), seed=1)
    assert loose and all(not c.problems for c in loose)
    terms = min(c.terms for c in loose)
    tight = find_candidates(qc, ["Z" * 7], fleet, ["gate"], Limits(1e4, 4, terms - 1), seed=1)
    assert all(f"{c.terms} QPD terms > the engine's limit of {terms - 1}" in c.problems
               for c in tight)
