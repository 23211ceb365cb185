"""Regions of a backbone: from a node attribute (sites) where given, else a balanced partition.

A demand belongs to the region of its anchor, the middle node of its shortest candidate path.
A partition is built by recursive bisection: the heaviest region (by the QUBO variables of the
demands anchored in it) is split until there are enough regions for the QPU width; each split
is a breadth-first order cut at half the weight, refined by Kernighan-Lin when that keeps the
halves balanced.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import networkx as nx

from qbackbone.core.optimize.routing import AggregatedDemand

PARTITION = "partition"
ATTRIBUTE = "attribute"
_KL_IMBALANCE = 1.25  # a Kernighan-Lin refinement may make the heavier half this much heavier


@dataclass(frozen=True)
class Region:
    """A set of backbone nodes solved together, and the site whose QPUs should solve it."""

    name: str
    nodes: frozenset[str]
    site: str | None = None
    origin: str = PARTITION  # "attribute" (from node labels) or "partition"


def anchor(demand: AggregatedDemand) -> str:
    """The node a demand is homed at: the middle node of its shortest candidate path."""
    path = demand.paths[0]
    return path[len(path) // 2]


def demand_weights(demands: Sequence[AggregatedDemand]) -> dict[str, float]:
    """QUBO path variables per anchor node."""
    weight: dict[str, float] = {}
    for d in demands:
        node = anchor(d)
        weight[node] = weight.get(node, 0.0) + len(d.paths)
    return weight


def regions_from_attribute(graph: nx.Graph, attribute: str) -> list[Region] | None:
    """Regions named by a node attribute; unlabelled nodes join the nearest labelled region.

    None when no node carries the attribute.
    """
    label = {n: str(v) for n, v in graph.nodes(data=attribute) if v not in (None, "")}
    if not label:
        return None
    frontier = list(label)
    while frontier:  # breadth-first from every labelled node at once
        following = []
        for node in frontier:
            for other in sorted(graph.neighbors(node), key=str):
                if other not in label:
                    label[other] = label[node]
                    following.append(other)
        frontier = following
    for node in graph.nodes:  # a component with no labelled node
        label.setdefault(node, "unlabelled")
    names = sorted(set(label.values()))
    return [Region(name, frozenset(n for n, v in label.items() if v == name), site=name,
                   origin=ATTRIBUTE) for name in names]


def _bfs_order(graph: nx.Graph) -> list[str]:
    """Nodes in breadth-first order from a peripheral node of each component."""
    order: list[str] = []
    for component in sorted(nx.connected_components(graph), key=lambda c: min(map(str, c))):
        start = min(component, key=str)
        far = list(nx.bfs_tree(graph, start))[-1]  # farther from the centre: a cleaner cut
        order += list(nx.bfs_tree(graph, far))
    return order


def bisect(graph: nx.Graph, weight: Mapping[str, float],
           seed: int) -> tuple[set[str], set[str]]:
    """Two halves of a graph of equal weight, few links between them."""
    order = _bfs_order(graph)
    total = sum(weight.get(n, 0.0) for n in order)
    running, cut = 0.0, 1
    for k, node in enumerate(order[:-1], start=1):
        running += weight.get(node, 0.0)
        cut = k
        if running >= total / 2:
            break
    first, second = set(order[:cut]), set(order[cut:])
    heavier = max(sum(weight.get(n, 0.0) for n in half) for half in (first, second))
    refined = nx.community.kernighan_lin_bisection(graph, partition=(first, second), seed=seed)
    a, b = set(refined[0]), set(refined[1])
    if a and b and max(sum(weight.get(n, 0.0) for n in half)
                       for half in (a, b)) <= _KL_IMBALANCE * heavier + 1e-9:
        return a, b
    return first, second


def partition_regions(graph: nx.Graph, weight: Mapping[str, float], count: int,
                      seed: int = 0) -> list[Region]:
    """`count` regions by recursive bisection of the heaviest region."""
    eps = {n: weight.get(n, 0.0) + 1e-3 for n in graph.nodes}  # empty nodes still count a bit
    parts: list[set[str]] = [set(graph.nodes)]
    while len(parts) < min(count, graph.number_of_nodes()):
        splittable = [p for p in parts if len(p) > 1]
        if not splittable:
            break
        heaviest = max(splittable, key=lambda p: (sum(eps[n] for n in p), sorted(map(str, p))))
        parts.remove(heaviest)
        parts += list(bisect(graph.subgraph(heaviest), eps, seed))
    parts.sort(key=lambda p: min(map(str, p)))
    return [Region(f"region-{k}", frozenset(p)) for k, p in enumerate(parts)]


def make_regions(graph: nx.Graph, demands: Sequence[AggregatedDemand], width: int,
                 attribute: str | None, seed: int = 0,
                 weight: Mapping[str, float] | None = None) -> list[Region]:
    """Regions from `attribute` when nodes carry it, else a partition with about `width`
    variables per region; `weight` (QUBO variables per node) replaces the demands' when
    given (slice admission)."""
    if attribute:
        labelled = regions_from_attribute(graph, attribute)
        if labelled is not None:
            return labelled
    weight = demand_weights(demands) if weight is None else weight
    count = max(1, math.ceil(sum(weight.values()) / max(width, 1)))
    return partition_regions(graph, weight, count, seed)


def home_regions(regions: Sequence[Region], demands: Sequence[AggregatedDemand]) -> list[int]:
    """The index of each demand's region (that of its anchor)."""
    where = {n: k for k, r in enumerate(regions) for n in r.nodes}
    return [where[anchor(d)] for d in demands]


def crosses_border(region: Region, demand: AggregatedDemand) -> bool:
    """Whether any candidate path of the demand leaves the region."""
    return any(n not in region.nodes for path in demand.paths for n in path)
