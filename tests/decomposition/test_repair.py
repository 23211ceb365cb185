"""The final repair: greedy first, then CP-SAT on the demands near overloaded links."""

from __future__ import annotations

from qbackbone.core.optimize.decompose.repair import (
    cp_sat_reroute,
    neighbourhood,
    overloaded_links,
    repair_routing,
)
from qbackbone.core.optimize.decompose.traffic import TrafficDecomposition
from qbackbone.core.optimize.traffic import reduce_traffic
from tests.decomposition.builders import te_problem


def test_shortest_paths_are_repaired_to_a_feasible_routing() -> None:
    for count, seed, capacity in [(12, 3, 10.0), (14, 2, 12.0), (20, 7, 20.0)]:
        spec = te_problem(count, seed, capacity=capacity)
        whole = TrafficDecomposition(reduce_traffic(spec, None))
        routing = whole.initial()
        assert overloaded_links(whole, routing)
        repaired, how = repair_routing(whole, routing, 5.0)
        assert how != "failed" and how != "none"
        assert not whole.problem.violations(whole.encode(repaired))


def test_cp_sat_moves_only_the_demands_near_overloaded_links() -> None:
    whole = TrafficDecomposition(reduce_traffic(te_problem(14, 2, capacity=12.0), None))
    routing = whole.initial()
    links = overloaded_links(whole, routing)
    movable = neighbourhood(whole, links)
    assert 0 < len(movable) <= whole.units
    found = cp_sat_reroute(whole, routing, movable, 5.0)
    assert found is not None and not whole.problem.violations(whole.encode(found))
    assert all(found[d] == routing[d] for d in range(len(routing)) if d not in movable)
    assert repair_routing(whole, found, 1.0) == (found, "none")
