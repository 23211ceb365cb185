"""Demands on a topology: aggregation, candidate paths, pruning and pinning, and the layout
of a traffic QUBO (its variables and capacity rows), all decided before any matrix is built."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import islice, pairwise

import networkx as nx

from qbackbone.api.problem import TrafficEngineeringProblem
from qbackbone.core.optimize.limits import MAX_DEMAND_PAIRS, check_count, check_quantity
from qbackbone.core.optimize.problem import ProblemError

SLACK_BITS = 3
Edge = tuple[str, str]


@dataclass(frozen=True)
class AggregatedDemand:
    """Demands between one unordered node pair, summed, with their candidate paths."""

    source: str
    target: str
    volume: float
    paths: list[list[str]]


def path_edges(path: list[str]) -> list[Edge]:
    """The links of a path, each as a sorted node pair."""
    return [tuple(sorted((a, b))) for a, b in pairwise(path)]  # type: ignore[misc]


def candidate_paths(graph: nx.Graph, source: str, target: str, k: int,
                    max_stretch: float) -> list[list[str]]:
    """The k shortest simple paths by hops, pruned to max_stretch times the shortest."""
    paths = list(islice(nx.shortest_simple_paths(graph, source, target), k))
    shortest = len(paths[0]) - 1
    return [p for p in paths if len(p) - 1 <= max_stretch * shortest]


def aggregate_demands(graph: nx.Graph, spec: TrafficEngineeringProblem) -> list[AggregatedDemand]:
    """Merge demands of the same unordered pair; find candidate paths; largest first.

    Every volume and node is checked, and the number of distinct pairs is bounded, before
    any path is searched.
    """
    volume: defaultdict[tuple[str, str], float] = defaultdict(float)
    for index, d in enumerate(spec.demands):
        where = f"trafficEngineering.demands[{index}] ({d.source}->{d.target})"
        for end, node in (("source", d.source), ("target", d.target)):
            if node not in graph:
                raise ProblemError(f"{where}: {end} {node!r} is not in the topology "
                                   f"({_some_nodes(graph)})")
        if d.source == d.target:
            raise ProblemError(f"{where}: source and target are the same node")
        check_quantity(f"trafficEngineering.demands[{index}].volume ({d.source}->{d.target})",
                       d.volume)
        pair = (d.source, d.target) if d.source < d.target else (d.target, d.source)
        volume[pair] += d.volume
    check_count(len(volume), MAX_DEMAND_PAIRS, "distinct demand node pairs",
                "merge demands or route the smallest ones outside the optimisation")
    component = {node: k for k, nodes in enumerate(nx.connected_components(graph))
                 for node in nodes}
    out = []
    for (s, t), v in volume.items():
        check_quantity(f"the demands between {s} and {t}, added up,", v)
        if component[s] != component[t]:
            raise ProblemError(f"demand {s}<->{t}: no path in the topology")
        out.append(AggregatedDemand(s, t, v, candidate_paths(graph, s, t, spec.candidate_paths,
                                                             spec.max_stretch)))
    return sorted(out, key=lambda d: (-d.volume, d.source, d.target))


def _some_nodes(graph: nx.Graph, shown: int = 8) -> str:
    names = sorted(map(str, graph.nodes))
    more = f", ... ({len(names)} in all)" if len(names) > shown else ""
    return "nodes: " + ", ".join(names[:shown]) + more


def background_load(pinned: list[AggregatedDemand],
                    extra: Mapping[Edge, float] | None = None) -> dict[Edge, float]:
    """Link loads of the pinned demands on their (single) paths, plus `extra` load."""
    load: dict[Edge, float] = {e: v for e, v in (extra or {}).items() if v > 0}
    for demand in pinned:
        for e in path_edges(demand.paths[0]):
            load[e] = load.get(e, 0.0) + demand.volume
    return load


def prune_paths(graph: nx.Graph, free: list[AggregatedDemand], pinned: list[AggregatedDemand],
                extra: Mapping[Edge, float] | None = None
                ) -> tuple[list[AggregatedDemand], list[AggregatedDemand], list[AggregatedDemand]]:
    """Drop candidate paths the demand alone would overload (given the pinned background).

    A demand left with one path is pinned to it; repeated until nothing changes. Returns the
    free and pinned demands, and the stranded ones: pinned to their least-overloaded path
    because every candidate overloads on its own.
    """
    stranded: list[AggregatedDemand] = []
    changed = True
    while changed:
        changed = False
        background = background_load(pinned, extra)
        kept_free = []
        for d in free:
            def overload(path: list[str], d: AggregatedDemand = d,
                         background: dict[Edge, float] = background) -> float:
                return max(background.get(e, 0.0) + d.volume - graph.edges[e]["capacity"]
                           for e in path_edges(path))
            fitting = [p for p in d.paths if overload(p) <= 0]
            if not fitting:
                fitting = [min(d.paths, key=overload)]
                stranded.append(d)
            if len(fitting) == len(d.paths):
                kept_free.append(d)
                continue
            changed = True
            narrowed = AggregatedDemand(d.source, d.target, d.volume, fitting)
            (kept_free if len(fitting) > 1 else pinned).append(narrowed)
        free = kept_free
    return free, pinned, stranded


@dataclass
class Layout:
    """What a QUBO over these demands would hold, decided before any matrix is built."""

    free: list[AggregatedDemand]
    pinned: list[AggregatedDemand]
    stranded: list[AggregatedDemand]
    background: dict[Edge, float]
    on_link: dict[Edge, list[tuple[int, float, int]]]  # link -> (variable, volume, demand)
    rows: list[tuple[Edge, bool]]  # links that need a capacity penalty: (link, at most one)

    @property
    def variables(self) -> int:
        """Path variables plus the slack bits of the capacity rows."""
        return (sum(len(d.paths) for d in self.free)
                + SLACK_BITS * sum(1 for _, pairwise in self.rows if not pairwise))


def plan_layout(graph: nx.Graph, free: list[AggregatedDemand],
                pinned: list[AggregatedDemand],
                extra: Mapping[Edge, float] | None = None) -> Layout:
    """Prune, then decide which links need capacity penalties: no matrix is built.

    `extra` is load on links from outside these demands (a region's neighbours)."""
    free, pinned, stranded = prune_paths(graph, list(free), list(pinned), extra)
    background = background_load(pinned, extra)
    on_link: defaultdict[Edge, list[tuple[int, float, int]]] = defaultdict(list)
    index = 0
    for d, demand in enumerate(free):
        for path in demand.paths:
            for e in path_edges(path):
                on_link[e].append((index, demand.volume, d))
            index += 1
    rows = []
    for e in sorted(on_link):
        room = graph.edges[e]["capacity"] - background.get(e, 0.0)
        volumes = {d: v for _, v, d in on_link[e]}  # one volume per demand using the link
        if sum(volumes.values()) <= room:
            continue
        # Every two demands overload the link iff its two smallest demands do: at most one.
        smallest = sorted(volumes.values())[:2]
        rows.append((e, len(smallest) < 2 or smallest[0] + smallest[1] > room))
    return Layout(free, pinned, stranded, background, dict(on_link), rows)


def pin_sequence(graph: nx.Graph, free: list[AggregatedDemand],
                 pinned: list[AggregatedDemand]) -> list[AggregatedDemand]:
    """The free demands, smallest first, each on the candidate path that adds least overload,
    then congestion, to the background of the demands pinned before it."""
    background = background_load(pinned)
    out = []
    for demand in reversed(free):
        def cost(path: list[str], demand: AggregatedDemand = demand) -> tuple[float, float]:
            loads = [(background.get(e, 0.0) + demand.volume) / graph.edges[e]["capacity"]
                     for e in path_edges(path)]
            return (sum(max(0.0, u - 1.0) for u in loads), sum(u * u for u in loads))

        path = min(demand.paths, key=cost)
        for e in path_edges(path):
            background[e] = background.get(e, 0.0) + demand.volume
        out.append(AggregatedDemand(demand.source, demand.target, demand.volume, [path]))
    return out


LINEAR_PINS = 64  # up to this many free demands, pin counts are tried one at a time


def fewest_pins(fits: Callable[[int], bool], most: int) -> int:
    """The fewest pins k in 1..most with fits(k), given that fits(most) holds.

    Tried one at a time for up to LINEAR_PINS free demands; above that by bisection (which
    assumes pinning more never makes the QUBO larger), so a huge demand set costs log(n)
    layouts instead of n.
    """
    if most <= LINEAR_PINS:
        return next(k for k in range(1, most + 1) if k == most or fits(k))
    low, high = 0, most  # fits(low) is false, fits(high) is true
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(middle) else (middle, high)
    return high
