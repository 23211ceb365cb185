"""Regional sub-problems: a block of one region's demands, every other flow fixed as load.

A sub-problem is an ordinary TrafficProblem (QUBO, repair, local search) over the block's
demands, with the load of every other demand at the current routing, plus the coordinator's
reserved capacity on contested links, as background. Its objective is therefore the whole
problem's congestion with the rest held fixed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from qbackbone.core.optimize.decompose.base import State, SubProblem, apply, pack
from qbackbone.core.optimize.routing import Edge, Layout, path_edges, plan_layout
from qbackbone.core.optimize.traffic import TrafficProblem, build_traffic

Routing = State  # whole problem: candidate path index of every free demand

__all__ = ["Routing", "SubProblem", "apply", "build_subproblem", "score", "split_region",
           "traffic_moves"]


def traffic_moves(whole: TrafficProblem, sub: SubProblem, x: np.ndarray,
                  routing: Routing) -> dict[int, int]:
    """The whole-problem path changes a traffic sub-problem's assignment asks for."""
    problem = sub.problem
    assert isinstance(problem, TrafficProblem)
    chosen = problem.routing_of(x)
    paths: dict[tuple[str, str], list[str]] = {}
    if chosen is not None:
        for demand, p in zip(problem.free, chosen, strict=True):
            paths[(demand.source, demand.target)] = demand.paths[p]
    for demand in problem.pinned:  # narrowed to one path by the background
        paths[(demand.source, demand.target)] = demand.paths[0]
    out = {}
    for d in sub.demands:
        demand = whole.free[d]
        path = paths.get((demand.source, demand.target))
        if path is None:
            continue
        p = demand.paths.index(path)
        if p != routing[d]:
            out[d] = p
    return out


def contribution(whole: TrafficProblem, d: int, p: int) -> list[tuple[Edge, float]]:
    """The load demand d adds on each link of its candidate path p."""
    demand = whole.free[d]
    return [(e, demand.volume) for e in path_edges(demand.paths[p])]


def loads_without(whole: TrafficProblem, routing: Routing, excluded: Sequence[int],
                  total: Mapping[Edge, float] | None = None,
                  reserve: Mapping[Edge, float] | None = None) -> dict[Edge, float]:
    """Link loads of everything but the excluded demands, plus reserved capacity."""
    load = dict(total if total is not None else whole.loads(routing))
    for d in excluded:
        for e, v in contribution(whole, d, routing[d]):
            load[e] -= v
    for e, v in (reserve or {}).items():
        load[e] = load.get(e, 0.0) + v
    return {e: v for e, v in load.items() if v > 1e-9}


def layout_for(whole: TrafficProblem, demands: Sequence[int], routing: Routing,
               total: Mapping[Edge, float], reserve: Mapping[Edge, float]) -> Layout:
    """The layout of a block: its demands free, all other load fixed."""
    extra = loads_without(whole, routing, demands, total, reserve)
    return plan_layout(whole.graph, [whole.free[d] for d in demands], [], extra)


def split_region(whole: TrafficProblem, demands: Sequence[int], routing: Routing,
                 reserve: Mapping[Edge, float], width: int) -> list[list[int]]:
    """The region's demands (largest first) in blocks whose QUBO fits `width` variables.

    A demand whose QUBO alone is wider than `width` gets a block of its own.
    """
    total = whole.loads(routing)
    return pack(demands, lambda trial: layout_for(whole, trial, routing, total,
                                                  reserve).variables <= width)


def build_subproblem(whole: TrafficProblem, region: int, block: int, demands: Sequence[int],
                     routing: Routing, reserve: Mapping[Edge, float]) -> SubProblem:
    """The sub-QUBO of a block at the current routing."""
    layout = layout_for(whole, demands, routing, whole.loads(routing), reserve)
    return SubProblem(region, block, tuple(demands), build_traffic(whole.graph, layout))


def score(whole: TrafficProblem, routing: Routing) -> tuple[float, float]:
    """(overload, congestion) of a whole routing: lower is better, overload first."""
    load = whole.loads(routing)
    return (round(whole.overload(load), 9), whole.congestion(load))
