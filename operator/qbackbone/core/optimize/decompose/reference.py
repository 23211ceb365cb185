"""Checks and classical references on the whole problem.

- `recompute_loads`: link loads from the reported routes alone (the decision in network terms),
  independent of the QUBO and the routing indices, and the capacity violations they imply.
- `cp_sat_reference` / `annealing_reference`: the whole problem (any Decomposable) solved
  classically in a given time, refined the same way, with CP-SAT's bound when it has one.
  (The slice-admission check, from the admitted names alone, is in slices.py.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from qbackbone.api.problem import Demand, RoutedDemand
from qbackbone.core.optimize.classical import cp_sat, simulated_annealing
from qbackbone.core.optimize.decompose.base import Decomposable
from qbackbone.core.optimize.problem import Sense
from qbackbone.core.optimize.routing import Edge, path_edges
from qbackbone.core.optimize.solve import refine


@dataclass(frozen=True)
class LoadCheck:
    """Link loads recomputed from routes, the congestion they give, and what they break."""

    loads: dict[Edge, float]
    congestion: float
    violations: list[str]


def recompute_loads(graph: nx.Graph, routes: Sequence[RoutedDemand],
                    demands: Sequence[Demand] = ()) -> LoadCheck:
    """Sum every route's volume on the links of its path; check links exist, capacities, and
    (when `demands` are given) that every requested volume is routed between its ends."""
    loads: dict[Edge, float] = {}
    violations = []
    asked: dict[tuple[str, str], float] = {}
    for d in demands:
        pair = (min(d.source, d.target), max(d.source, d.target))
        asked[pair] = asked.get(pair, 0.0) + d.volume
    routed: dict[tuple[str, str], float] = {}
    for route in routes:
        pair = (min(route.source, route.target), max(route.source, route.target))
        routed[pair] = routed.get(pair, 0.0) + route.volume
    for pair, volume in sorted(asked.items()):
        if abs(routed.get(pair, 0.0) - volume) > 1e-6 * max(volume, 1.0):
            violations.append(f"demand {pair[0]}<->{pair[1]}: {volume:g} asked, "
                              f"{routed.get(pair, 0.0):g} routed")
    for route in routes:
        if route.path[0] not in (route.source, route.target) or \
                route.path[-1] not in (route.source, route.target):
            violations.append(f"route {route.source}->{route.target} does not join its ends")
        for e in path_edges(route.path):
            if not graph.has_edge(*e):
                violations.append(f"route {route.source}->{route.target} uses a missing link "
                                  f"{e[0]}--{e[1]}")
                continue
            loads[e] = loads.get(e, 0.0) + route.volume
    congestion = 0.0
    for e, v in sorted(loads.items()):
        if not graph.has_edge(*e):
            continue
        capacity = float(graph.edges[e]["capacity"])
        congestion += (v / capacity) ** 2
        if v > capacity * (1 + 1e-9):
            violations.append(f"link {e[0]}--{e[1]} carries {v:g} over capacity {capacity:g}")
    return LoadCheck(loads, congestion, violations)


@dataclass(frozen=True)
class Reference:
    """A classical answer to the whole problem within a time limit."""

    method: str
    objective: float  # refined, inf when nothing feasible was found
    feasible: bool
    bound: float | None  # a lower bound on the optimum (CP-SAT), when known
    proven: bool
    seconds: float


def cp_sat_reference(whole: Decomposable, time_limit: float) -> Reference:
    """CP-SAT on the whole problem's exact model (exact capacities) for the time limit,
    refined; its bound is CP-SAT's best objective bound, in the reported objective's terms."""
    model, constraints = whole.exact_model()
    found = cp_sat(model, time_limit, constraints=constraints)
    if found is None:
        return Reference("cpSat", math.inf if whole.sense == "minimize" else -math.inf, False,
                         None, False, round(time_limit, 4))
    candidate = refine(whole.problem, whole.encode(whole.state_of_model(found.x)))
    bound = found.energy if found.proven_optimal else found.bound
    if bound is not None and whole.sense == "maximize":
        bound = -bound  # the model minimises minus the objective
    return Reference("cpSat", candidate.objective, candidate.feasible, bound,
                     found.proven_optimal, round(found.seconds, 4))


def annealing_reference(whole: Decomposable, time_limit: float, seed: int = 0) -> Reference:
    """Simulated annealing on the whole QUBO for the time limit, refined."""
    found = simulated_annealing(whole.problem.qubo, time_limit, seed, restarts=1_000_000)
    candidate = refine(whole.problem, found.x)
    return Reference(found.method, candidate.objective, candidate.feasible, None, False,
                     round(found.seconds, 4))


def ratio(objective: float, reference: float, sense: Sense = "minimize") -> float | None:
    """How the decomposed objective compares with a reference: reference / objective when
    minimised, objective / reference when maximised (1: as good; below 1: worse)."""
    if not (math.isfinite(objective) and math.isfinite(reference)):
        return None
    if sense == "maximize":
        return objective / reference if reference > 0 else (1.0 if objective == 0 else None)
    return None if objective <= 0 else reference / objective
