"""LOCC wire cuts: round trips against exact values, precedence, the artefact."""

from __future__ import annotations

import pytest

from qbackbone.core.cutting import AerRunner, CutPlan, QPUCapacity, execute_plan, plan_cuts

from .circuits import assert_close, blocks, exact

CASES = {
    "one-wire": ([(0, 4), (3, 7)], 7, 4, [1]),
    "two-wires": ([(0, 4), (2, 6)], 6, 4, [2]),
    "three-wires": ([(0, 6), (3, 9)], 9, 6, [3]),
    "chain": ([(0, 3), (2, 5), (4, 7)], 7, 3, [1, 1]),
}


def _observables(n: int) -> list[str]:
    return ["Z" * n, "I" * (n - 2) + "ZZ", "X" + "I" * (n - 2) + "X", "Y" * 2 + "I" * (n - 2)]


@pytest.mark.parametrize("case", sorted(CASES))
def test_locc_round_trip(case: str) -> None:
    spans, n, width, wires = CASES[case]
    qc = blocks(spans, n, layers=3 if case == "three-wires" else 2)
    obs = _observables(n)
    plan = plan_cuts(qc, obs, [QPUCapacity("q", width, None)], ["loccWire"], 1e4, 4, 300, seed=1)
    assert plan.method == "locc"
    assert [b.wires for b in plan.bundles] == wires
    expected_gamma = 1.0
    for w in wires:
        expected_gamma *= 2 ** (w + 1) - 1
    assert plan.overhead == pytest.approx(expected_gamma**2)
    plan = CutPlan.model_validate_json(plan.model_dump_json())
    runner = AerRunner(seed=11)
    result = execute_plan(plan, runner, seed=7)
    assert_close(result.values, result.std_errors, exact(qc, obs), max_se=0.1)
    order = {r.name: r.order for r in result.records}
    for before, after in plan.edges:
        assert order[before] < order[after]
        assert plan.subcircuit(after).depends_on == [before] or before in plan.subcircuit(
            after
        ).depends_on
    for rec, sub in zip(sorted(result.records, key=lambda r: r.name), plan.subcircuits,
                        strict=True):
        assert rec.shots == sub.shots


def test_roles_and_shots_of_a_chain() -> None:
    spans, n, width, _ = CASES["chain"]
    plan = plan_cuts(blocks(spans, n), ["Z" * n], [QPUCapacity("q", width, None)], ["loccWire"],
                     1e4, 4, 100)
    roles = {s.name: (s.role, s.depends_on) for s in plan.subcircuits}
    assert roles == {"sub0": ("measure", []), "sub1": ("prepare", ["sub0"]),
                     "sub2": ("prepare", ["sub1"])}
    assert plan.edges == [("sub0", "sub1"), ("sub1", "sub2")]
    assert all(s.shots == 100 * 81 for s in plan.subcircuits)
