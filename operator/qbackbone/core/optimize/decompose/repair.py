"""The final repair of a whole routing that still overloads a link after the rounds.

First the whole problem's greedy repair (moving demands off overloaded links). If a link is
still overloaded, CP-SAT re-routes the demands that could touch an overloaded link with every
other demand fixed (a large-neighbourhood repair on the exact routing model), and, if that
neighbourhood cannot be made feasible, every demand, within the time left.
"""

from __future__ import annotations

import time

import numpy as np

from qbackbone.core.optimize.classical import cp_sat
from qbackbone.core.optimize.decompose.reference import routing_model
from qbackbone.core.optimize.decompose.subproblems import Routing, score
from qbackbone.core.optimize.qubo import LinearConstraint
from qbackbone.core.optimize.routing import path_edges
from qbackbone.core.optimize.traffic import TrafficProblem


def overloaded_links(whole: TrafficProblem, routing: Routing) -> set[tuple[str, str]]:
    """Links carrying more than their capacity."""
    return {e for e, v in whole.loads(routing).items()
            if v > whole.graph.edges[e]["capacity"] * (1 + 1e-9)}


def neighbourhood(whole: TrafficProblem, links: set[tuple[str, str]]) -> list[int]:
    """Free demands with a candidate path over any of the links."""
    return [d for d, demand in enumerate(whole.free)
            if any(e in links for path in demand.paths for e in path_edges(path))]


def cp_sat_reroute(whole: TrafficProblem, routing: Routing, movable: list[int],
                   time_limit: float) -> Routing | None:
    """The best routing CP-SAT finds moving only `movable` demands (None: none feasible)."""
    model, constraints = routing_model(whole)
    fixed = set(range(len(whole.free))) - set(movable)
    for d in sorted(fixed):
        constraints.append(LinearConstraint({whole.variable_of[d][routing[d]]: 1}, 1))
    found = cp_sat(model, time_limit, constraints=constraints)
    if found is None:
        return None
    return [int(np.argmax([found.x[i] for i in idx])) for idx in whole.variable_of]


def repair_routing(whole: TrafficProblem, routing: Routing,
                   time_limit: float) -> tuple[Routing, str]:
    """A feasible routing near `routing` (when one is found) and how it was repaired."""
    if not overloaded_links(whole, routing):
        return routing, "none"
    start = time.perf_counter()
    greedy = whole.routing_of(whole.repair(whole.encode(routing)))
    if greedy is not None and not overloaded_links(whole, greedy):
        return greedy, "greedy"
    current = greedy if greedy is not None and score(whole, greedy) < score(whole, routing) \
        else routing
    movable = neighbourhood(whole, overloaded_links(whole, current))
    found = cp_sat_reroute(whole, current, movable, 0.5 * time_limit)
    if found is not None:
        return found, f"cpSat({len(movable)} demands near overloaded links)"
    left = time_limit - (time.perf_counter() - start)
    found = cp_sat_reroute(whole, current, list(range(len(whole.free))), max(left, 0.5))
    if found is not None:
        return found, "cpSat(every demand)"
    return current, "failed"
