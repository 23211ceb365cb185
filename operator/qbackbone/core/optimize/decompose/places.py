"""Where the resources of a slice-admission problem are, and the independent admission check.

A resource is at one PoP ('Paris', 'pop-paris') or on a link between two ('paris--lyon').
With a topology, every resource must name a node or two nodes of it (names compared without
case, spaces as '-', a 'pop-' prefix dropped); regions come from the topology (site labels
or a partition of the backbone). Without one, the places are read from the names alone and
the graph to partition joins the two ends of every link resource and the places one slice
uses together.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from qbackbone.api.problem import SliceAdmissionProblem
from qbackbone.core.optimize.problem import ProblemError

LINK_SEPARATOR = "--"
POP_PREFIX = "pop-"


def _normal(name: str) -> str:
    text = "-".join(name.strip().lower().split())
    return text[len(POP_PREFIX):] if text.startswith(POP_PREFIX) else text


def _lookup(graph: nx.Graph) -> dict[str, str]:
    """Normalised node name -> node (the first, when two normalise alike)."""
    out: dict[str, str] = {}
    for node in sorted(graph.nodes, key=str):
        out.setdefault(_normal(str(node)), str(node))
        out.setdefault(str(node), str(node))
    return out


def _parse(resource: str) -> list[str]:
    """The place names a resource name gives (one PoP, or the two ends of a link)."""
    if LINK_SEPARATOR in resource:
        ends = [e for e in resource.split(LINK_SEPARATOR) if e.strip()]
        if len(ends) == 2:
            return ends
    return [resource]


def resource_places(spec: SliceAdmissionProblem,
                    graph: nx.Graph | None) -> dict[str, tuple[str, ...]]:
    """The node(s) of every resource; ProblemError naming those a topology does not place."""
    out: dict[str, tuple[str, ...]] = {}
    lookup = _lookup(graph) if graph is not None else None
    unplaced = []
    for resource in spec.resources:
        names = _parse(resource.name)
        if lookup is None:
            out[resource.name] = tuple(dict.fromkeys(_normal(n) for n in names))
            continue
        found = [lookup.get(n.strip(), lookup.get(_normal(n))) for n in names]
        if (any(f is None for f in found) and len(names) == 2
                and resource.name in lookup):  # a node whose own name holds the separator
            found = [lookup[resource.name]]
        if any(f is None for f in found):
            unplaced.append(resource.name)
            continue
        out[resource.name] = tuple(dict.fromkeys(f for f in found if f is not None))
    if unplaced:
        raise ProblemError(
            f"sliceAdmission: resource(s) {', '.join(sorted(unplaced)[:10])} name no node of "
            "the topology: name a PoP resource after its node ('Paris' or 'pop-paris') and a "
            f"link resource after its ends ('paris{LINK_SEPARATOR}lyon'), or give no topology")
    return out


def place_graph(spec: SliceAdmissionProblem, places: dict[str, tuple[str, ...]],
                graph: nx.Graph | None) -> nx.Graph:
    """The graph regions are cut from: the topology, else the places joined by link
    resources and by the slices that use them together."""
    if graph is not None:
        return graph
    out = nx.Graph()
    for ends in places.values():
        out.add_nodes_from(ends)
        out.add_edges_from(itertools.pairwise(ends))
    for s in spec.slices:
        used = sorted({p for r, a in s.demands.items() if a > 0 for p in places[r]})
        out.add_edges_from(itertools.pairwise(used))
    return out


@dataclass(frozen=True)
class AdmissionCheck:
    """Resource use recomputed from the admitted names, the revenue, and what is broken."""

    usage: dict[str, float]
    revenue: float
    violations: list[str]


def check_admission(spec: SliceAdmissionProblem, admitted: Sequence[str],
                    rejected: Sequence[str]) -> AdmissionCheck:
    """From the problem's own numbers and the decision's slice names only (no QUBO, no index):
    every request decided exactly once, every capacity held, and the revenue earned."""
    violations = []
    requests = {s.name: s for s in spec.slices}
    decided = [*admitted, *rejected]
    for name in sorted(set(requests) - set(decided)):
        violations.append(f"slice {name!r} is neither admitted nor rejected")
    for name in sorted({n for n in decided if decided.count(n) > 1}):
        violations.append(f"slice {name!r} is decided more than once")
    for name in sorted(set(decided) - set(requests)):
        violations.append(f"slice {name!r} was not requested")
    usage: dict[str, float] = {r.name: 0.0 for r in spec.resources}
    revenue = 0.0
    for name in admitted:
        if name not in requests:
            continue
        revenue += requests[name].revenue
        for resource, amount in requests[name].demands.items():
            usage[resource] = usage.get(resource, 0.0) + amount
    for r in spec.resources:
        if usage[r.name] > r.capacity * (1 + 1e-9):
            violations.append(f"{r.name} uses {usage[r.name]:g} of capacity {r.capacity:g}")
    return AdmissionCheck(usage, revenue, violations)
