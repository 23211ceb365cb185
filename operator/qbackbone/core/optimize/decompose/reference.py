"""Checks and classical references on the whole problem.

- `recompute_loads`: link loads from the reported routes alone (the decision in network terms),
  independent of the QUBO and the routing indices, and the capacity violations they imply.
- `cp_sat_reference` / `annealing_reference`: the whole problem solved classically in a given
  time, refined the same way, with CP-SAT's lower bound when it has one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from qbackbone.api.problem import Demand, RoutedDemand
from qbackbone.core.optimize.classical import cp_sat, simulated_annealing
from qbackbone.core.optimize.qubo import LinearConstraint, Qubo
from qbackbone.core.optimize.routing import Edge, path_edges
from qbackbone.core.optimize.solve import refine
from qbackbone.core.optimize.traffic import TrafficProblem


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


CAPACITY_SCALE = 1000  # volumes and capacities in thousandths of their unit in CP-SAT


def routing_model(whole: TrafficProblem) -> tuple[Qubo, list[LinearConstraint]]:
    """The whole problem over its path variables only: congestion as the objective, one path
    per demand and every capacity (not the QUBO's conservative units) as hard constraints."""
    n = sum(len(idx) for idx in whole.variable_of)
    objective = whole.objective_qubo or whole.qubo
    paths_only = Qubo(objective.variables[:n], objective.linear[:n].copy(),
                      objective.quadratic[:n, :n].copy(), objective.offset)
    constraints = [LinearConstraint({i: 1 for i in idx}, 1) for idx in whole.variable_of]
    users: dict[Edge, dict[int, int]] = {}
    for d, (demand, idx) in enumerate(zip(whole.free, whole.variable_of, strict=True)):
        for p, i in enumerate(idx):
            for e in path_edges(demand.paths[p]):
                users.setdefault(e, {})[i] = round(whole.free[d].volume * CAPACITY_SCALE)
    for e, use in sorted(users.items()):
        room = whole.graph.edges[e]["capacity"] - whole.background.get(e, 0.0)
        if sum(use.values()) > room * CAPACITY_SCALE:
            constraints.append(LinearConstraint(use, math.floor(room * CAPACITY_SCALE + 1e-6),
                                                equality=False))
    return paths_only, constraints


def cp_sat_reference(whole: TrafficProblem, time_limit: float) -> Reference:
    """CP-SAT on the whole routing model (exact capacities) for the time limit, refined; its
    bound is CP-SAT's best objective bound."""
    model, constraints = routing_model(whole)
    found = cp_sat(model, time_limit, constraints=constraints)
    if found is None:
        return Reference("cpSat", math.inf, False, None, False, round(time_limit, 4))
    routing = [int(np.argmax([found.x[i] for i in idx])) for idx in whole.variable_of]
    candidate = refine(whole, whole.encode(routing))
    bound = found.energy if found.proven_optimal else found.bound
    return Reference("cpSat", candidate.objective, candidate.feasible, bound,
                     found.proven_optimal, round(found.seconds, 4))


def annealing_reference(whole: TrafficProblem, time_limit: float, seed: int = 0) -> Reference:
    """Simulated annealing on the whole QUBO for the time limit, refined."""
    found = simulated_annealing(whole.qubo, time_limit, seed, restarts=1_000_000)
    candidate = refine(whole, found.x)
    return Reference(found.method, candidate.objective, candidate.feasible, None, False,
                     round(found.seconds, 4))


def ratio(objective: float, reference: float) -> float | None:
    """reference / objective for a minimised objective (1: as good; below 1: worse)."""
    if not (math.isfinite(objective) and math.isfinite(reference)) or objective <= 0:
        return None
    return reference / objective
