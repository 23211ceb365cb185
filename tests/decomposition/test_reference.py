"""The whole-problem references and the independent load check."""

from __future__ import annotations

import itertools

from qbackbone.api.problem import Demand, RoutedDemand
from qbackbone.core.optimize.decompose import annealing_reference, cp_sat_reference, ratio
from qbackbone.core.optimize.decompose.reference import recompute_loads
from qbackbone.core.optimize.decompose.traffic import TrafficDecomposition
from qbackbone.core.optimize.traffic import reduce_traffic
from tests.decomposition.builders import te_problem


def test_cp_sat_on_the_routing_model_finds_the_exhaustive_optimum() -> None:
    whole = reduce_traffic(te_problem(12, 3), None)
    best = min(
        whole.objective(whole.encode(list(r)))
         for r in itertools.product(*[range(len(d.paths)) for d in whole.free])
         if not whole.violations(whole.encode(list(r))))
    reference = cp_sat_reference(TrafficDecomposition(whole), 10.0)
    assert reference.proven and reference.feasible
    assert abs(reference.objective - best) < 1e-9
    assert reference.bound is not None and abs(reference.bound - best) < 1e-9
    annealed = annealing_reference(TrafficDecomposition(whole), 1.0, seed=1)
    assert annealed.objective >= best - 1e-9
    assert ratio(annealed.objective, best) is not None


def test_the_load_check_catches_overload_missing_links_and_unrouted_volume() -> None:
    whole = reduce_traffic(te_problem(12, 3), None)
    graph = whole.graph
    u, v = sorted(graph.edges)[0]
    cap = graph.edges[u, v]["capacity"]
    routes = [RoutedDemand(source=u, target=v, volume=cap + 1, path=[u, v])]
    check = recompute_loads(graph, routes, [Demand(source=u, target=v, volume=cap + 1)])
    assert any("over capacity" in x for x in check.violations)
    check = recompute_loads(graph, routes, [Demand(source=u, target=v, volume=cap + 2)])
    assert any("asked" in x for x in check.violations)
    missing = RoutedDemand(source="r0n0", target="r2n2", volume=1.0, path=["r0n0", "r2n2"])
    assert not graph.has_edge("r0n0", "r2n2")
    check = recompute_loads(graph, [missing])
    assert any("missing link" in x for x in check.violations)
    fine = recompute_loads(graph, [RoutedDemand(source=u, target=v, volume=cap, path=[u, v])])
    assert not fine.violations and abs(fine.congestion - 1.0) < 1e-12
