"""The coordinator: rounds improve monotonically, reconciliation rejects colliding moves, and
the decomposed decision is feasible and close to CP-SAT's proven optimum."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from qbackbone.api.problem import TrafficEngineeringProblem
from qbackbone.core.optimize.decompose import (
    BlockResult,
    ClassicalBlockSolver,
    Settings,
    TrafficDecomposition,
    cp_sat_reference,
    decompose_and_solve,
    make_regions,
    recompute_loads,
)
from qbackbone.core.optimize.decompose.reconcile import propose, reconcile, update_prices
from qbackbone.core.optimize.decompose.regions import Region
from qbackbone.core.optimize.decompose.subproblems import SubProblem, score
from qbackbone.core.optimize.solve import Candidate, report
from qbackbone.core.optimize.traffic import reduce_traffic
from tests.decomposition.builders import te_problem

CASES = [(12, 3, 10.0), (16, 5, 16.0), (20, 7, 20.0), (14, 2, 12.0)]


@pytest.mark.parametrize(("count", "seed", "capacity"), CASES)
def test_decomposed_routing_is_feasible_and_near_the_proven_optimum(
        count: int, seed: int, capacity: float) -> None:
    spec = te_problem(count, seed, capacity=capacity)
    whole = reduce_traffic(spec, None)
    regions = make_regions(whole.graph, whole.free, 8, "site")
    outcome = decompose_and_solve(TrafficDecomposition(whole), regions,
                                  ClassicalBlockSolver(1.0),
                                  Settings(width=8, iterations=6, time_budget=30))
    assert outcome.initial[0] > 0  # shortest paths overload a link: there is work to do
    assert not whole.violations(outcome.x)
    for r in outcome.rounds:  # reconciliation never makes the whole routing worse
        assert r.after <= r.before
    assert all(b.variables <= 8 for b in outcome.blocks)
    reference = cp_sat_reference(TrafficDecomposition(whole), 20.0)
    assert reference.proven
    assert outcome.final[1] >= reference.objective - 1e-9  # nothing beats a proven optimum
    assert reference.objective / outcome.final[1] >= 0.97
    # Independently: link loads from the routes alone give the same congestion, in capacity.
    solution = report(whole, Candidate(outcome.x, whole.objective(outcome.x), True), "t")
    check = recompute_loads(whole.graph, solution.routes or [], spec.demands)
    assert not check.violations
    assert abs(check.congestion - outcome.final[1]) < 1e-9
    graph = nx.Graph()
    for link in _links(spec):
        graph.add_edge(link["source"], link["target"], capacity=link["capacity"])
    for (a, b), load in check.loads.items():
        assert load <= graph.edges[a, b]["capacity"] + 1e-9


def _links(spec: TrafficEngineeringProblem) -> list[dict]:
    import json

    assert spec.topology.document is not None
    return list(json.loads(spec.topology.document)["links"])


def test_reconciliation_rejects_two_moves_that_collide_on_a_shared_link() -> None:
    # Two demands a->c and b->d; each alone prefers the middle link m1-m2, together they
    # overload it: merged is infeasible, the greedy merge keeps only the better one.
    links = [("a", "m1", 10), ("m1", "m2", 10), ("m2", "c", 10), ("a", "x", 10), ("x", "y", 10),
             ("y", "z", 10), ("z", "c", 10), ("b", "m1", 10), ("m2", "d", 10), ("b", "u", 10),
             ("u", "v", 10), ("v", "w", 10), ("w", "d", 10)]
    spec = TrafficEngineeringProblem.model_validate({
        "topology": {"links": [{"source": s, "target": t, "capacity": c} for s, t, c in links]},
        "demands": [{"source": "a", "target": "c", "volume": 7},
                    {"source": "b", "target": "d", "volume": 6}],
        "candidatePaths": 3, "maxStretch": 3.0})
    traffic = reduce_traffic(spec, None)
    whole = TrafficDecomposition(traffic)
    middle = [next(p for p, path in enumerate(d.paths) if "m1" in path and "m2" in path)
              for d in traffic.free]
    other = [next(p for p, path in enumerate(d.paths) if "m1" not in path) for d in traffic.free]
    routing = list(other)
    proposals = [propose(whole, routing, k, {k: middle[k]}) for k in range(2)]
    assert all(p.alone < score(traffic, routing) for p in proposals)  # each alone improves
    outcome = reconcile(whole, routing, proposals)
    assert outcome.merged[0] > 0  # both at once overload m1-m2
    assert outcome.strategy == "greedy" and len(outcome.accepted) == 1
    assert outcome.score[0] == 0 and outcome.score < score(traffic, routing)
    prices = update_prices(whole, routing, proposals, {})
    assert set(prices) == {("m1", "m2")} and prices[("m1", "m2")] == pytest.approx(1.5)


def test_a_round_that_finds_nothing_better_stops_the_loop() -> None:
    whole = reduce_traffic(te_problem(12, 3), None)
    regions = [Region("all", frozenset(whole.graph.nodes))]

    def stubborn(sub: SubProblem, region: Region, seed: int) -> BlockResult:
        return BlockResult(np.zeros(sub.variables, dtype=np.int8), "none", "Classical")

    outcome = decompose_and_solve(TrafficDecomposition(whole), regions, stubborn,
                                  Settings(8, 10, 30, polish=False))
    assert outcome.stop == "converged" and len(outcome.rounds) < 10
    assert all(r.strategy == "none" for r in outcome.rounds[-2:])
    assert np.array_equal(outcome.routing, whole.routing_of(outcome.x))
