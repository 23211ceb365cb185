"""A regional sub-problem is the whole problem with every other flow fixed: checked exactly."""

from __future__ import annotations

import itertools

import numpy as np

from qbackbone.core.optimize.classical import brute_force, cp_sat
from qbackbone.core.optimize.decompose.regions import home_regions, make_regions
from qbackbone.core.optimize.decompose.subproblems import (
    apply,
    build_subproblem,
    split_region,
)
from qbackbone.core.optimize.decompose.traffic import TrafficDecomposition, routing_model
from qbackbone.core.optimize.traffic import reduce_traffic
from tests.decomposition.builders import te_problem


def _setup() -> tuple:
    whole = reduce_traffic(te_problem(16, 5, capacity=16), None)
    regions = make_regions(whole.graph, whole.free, 8, "site")
    homes = home_regions(regions, whole.free)
    rng = np.random.default_rng(0)
    routing = [int(rng.integers(len(d.paths))) for d in whole.free]
    return whole, homes, routing


def test_blocks_fit_the_width_and_cover_the_region() -> None:
    whole, homes, routing = _setup()
    for r in set(homes):
        members = [d for d, h in enumerate(homes) if h == r]
        blocks = split_region(whole, members, routing, {}, 8)
        assert sorted(d for b in blocks for d in b) == sorted(members)
        for k, block in enumerate(blocks):
            sub = build_subproblem(whole, r, k, block, routing, {})
            assert sub.variables <= 8 or len(block) == 1


def test_the_sub_objective_is_the_whole_congestion_with_the_rest_fixed() -> None:
    whole, homes, routing = _setup()
    members = [d for d, h in enumerate(homes) if h == homes[0]]
    block = split_region(whole, members, routing, {}, 8)[0]
    sub = build_subproblem(whole, homes[0], 0, block, routing, {})
    choices = [range(len(d.paths)) for d in sub.problem.free]
    for combo in itertools.product(*choices):
        x = sub.problem.encode(list(combo))
        moved = apply(routing, sub.moves(TrafficDecomposition(whole), x, routing))
        whole_x = whole.encode(moved)
        assert abs(sub.problem.objective(x) - whole.objective(whole_x)) < 1e-9


def test_the_sub_qubo_minimum_is_the_best_block_move() -> None:
    whole, homes, routing = _setup()
    model, constraints = routing_model(whole)  # a feasible start: CP-SAT's, one demand moved
    found = cp_sat(model, 5.0, constraints=constraints)
    assert found is not None
    routing = [int(np.argmax([found.x[i] for i in idx])) for idx in whole.variable_of]
    assert not whole.violations(whole.encode(routing))
    members = [d for d, h in enumerate(homes) if h == homes[0]]
    block = split_region(whole, members, routing, {}, 8)[0]
    sub = build_subproblem(whole, homes[0], 0, block, routing, {})
    best = brute_force(sub.problem.qubo)
    moved = apply(routing, sub.moves(TrafficDecomposition(whole), best.x, routing))
    found = whole.objective(whole.encode(moved))
    exhaustive = min(
        whole.objective(whole.encode(apply(routing, dict(zip(block, combo, strict=True)))))
        for combo in itertools.product(*[range(len(whole.free[d].paths)) for d in block])
        if not whole.violations(whole.encode(apply(routing, dict(zip(block, combo,
                                                                       strict=True))))))
    assert abs(found - exhaustive) < 1e-9
