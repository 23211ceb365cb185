"""Gate cuts and LO wire cuts through the library, with standard errors."""

from __future__ import annotations

import numpy as np
import pytest

from qbackbone.core.circuits.serialize import circuits_from_b64
from qbackbone.core.cutting import (
    AerRunner,
    CutExecutionError,
    CutPlan,
    QPUCapacity,
    execute_plan,
    merge_counts,
    plan_cuts,
    reconstruct_lo,
)

from .circuits import assert_close, blocks, exact

OBS = ["ZZZZZZ", "IIZZII", "XIIIIX", "IIIIYY"]


@pytest.mark.parametrize("kinds", [["gate"], ["loWire"]])
def test_library_cut_round_trip(kinds: list[str]) -> None:
    qc = blocks([(0, 3), (2, 6)], 6, seed=2)
    plan = plan_cuts(qc, OBS, [QPUCapacity("q", 4, None)], kinds, 1e3, 4, 100, seed=1)
    assert plan.method == "lo" and plan.cuts
    assert {c.kind for c in plan.cuts} == {"gate" if kinds == ["gate"] else "loWire"}
    assert all(s.role == "independent" and not s.depends_on for s in plan.subcircuits)
    plan = CutPlan.model_validate_json(plan.model_dump_json())
    result = execute_plan(plan, AerRunner(seed=5))
    assert_close(result.values, result.std_errors, exact(qc, OBS), max_se=0.1)


def test_shot_split_fragments_merge_back() -> None:
    qc = blocks([(0, 3), (2, 6)], 6, seed=2)
    plan = plan_cuts(qc, OBS, [QPUCapacity("q", 4, None)], ["loWire"], 1e3, 4, 60, seed=1)
    runner = AerRunner(seed=9)
    counts = {}
    for sub in plan.subcircuits:
        circuits = circuits_from_b64(sub.subexperiments_qpy or "")
        half = [s // 2 for s in sub.subexperiment_shots]
        rest = [s - h for s, h in zip(sub.subexperiment_shots, half, strict=True)]
        counts[sub.name] = merge_counts([runner.run(sub.name, circuits, half),
                                         runner.run(sub.name, circuits, rest)])
    values, errors = reconstruct_lo(plan, counts)
    assert_close(values, errors, exact(qc, OBS), max_se=0.15)
    first = plan.subcircuits[0].name
    counts[first] = counts[first][:-1]
    with pytest.raises(CutExecutionError, match="expected counts"):
        reconstruct_lo(plan, counts)


@pytest.mark.slow
def test_standard_error_coverage() -> None:
    qc = blocks([(0, 3), (2, 6)], 6, seed=4)
    obs = ["ZZZZZZ", "IIZZII"]
    ref = exact(qc, obs)
    plans = {k: plan_cuts(qc, obs, [QPUCapacity("q", 4, None)], [k], 1e3, 4, 20, seed=1)
             for k in ("gate", "loWire", "loccWire")}
    for kind, plan in plans.items():
        z = []
        for rep in range(40):
            r = execute_plan(plan, AerRunner(seed=100 + rep), seed=rep)
            z += [(v - e) / s for v, e, s in zip(r.values, ref, r.std_errors, strict=True)]
        inside = float(np.mean(np.abs(np.array(z)) < 2.0))
        assert inside >= 0.85, (kind, inside)
