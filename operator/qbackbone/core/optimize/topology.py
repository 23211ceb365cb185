"""Load a backbone topology into a networkx graph with a capacity on every link."""

from __future__ import annotations

import json
from collections.abc import Callable

import networkx as nx

from qbackbone.api.problem import Topology
from qbackbone.core.optimize.problem import ProblemError

ConfigMapReader = Callable[[str, str], str]
"""(name, key) -> the ConfigMap value; raises KeyError when either is missing."""


def _from_document(text: str, fmt: str) -> nx.Graph:
    try:
        if fmt == "graphml":
            return nx.parse_graphml(text)
        data = json.loads(text)
        edges = "links" if "links" in data else "edges"
        return nx.node_link_graph(data, edges=edges)
    # xml.etree's ParseError is a SyntaxError
    except (nx.NetworkXError, ValueError, KeyError, TypeError, SyntaxError) as err:
        raise ProblemError(f"the topology is not valid {fmt}: {err}") from None


def _relabel(graph: nx.Graph, attribute: str | None) -> nx.Graph:
    if attribute is None:
        return nx.relabel_nodes(graph, {n: str(n) for n in graph.nodes})
    names: dict[object, str] = {}
    taken: set[str] = set()
    for node, data in graph.nodes(data=True):
        name = str(data.get(attribute) or node)
        if name in taken:  # duplicate labels exist in the Topology Zoo; keep names unique
            name = f"{name}#{node}"
        taken.add(name)
        names[node] = name
    return nx.relabel_nodes(graph, names)


def load_topology(spec: Topology, read_config_map: ConfigMapReader | None = None) -> nx.Graph:
    """An undirected simple graph; parallel links are merged (capacities added)."""
    if spec.links is not None:
        raw: nx.Graph = nx.MultiGraph()
        for link in spec.links:
            raw.add_edge(link.source, link.target,
                         capacity=link.capacity if link.capacity is not None
                         else spec.default_capacity)
        attribute, scale = "capacity", 1.0
    else:
        text = spec.document
        if spec.config_map_ref is not None:
            ref = spec.config_map_ref
            if read_config_map is None:
                raise ProblemError(f"topology.configMapRef {ref.name}/{ref.key} cannot be read "
                                   "here: give the ConfigMap with the job's manifests")
            try:
                text = read_config_map(ref.name, ref.key)
            except KeyError as err:
                raise ProblemError(f"topology.configMapRef: {err.args[0]}") from None
        assert text is not None and spec.format is not None
        raw = _relabel(_from_document(text, spec.format), spec.node_attribute)
        attribute, scale = spec.capacity_attribute, spec.capacity_scale
    graph = nx.Graph()
    graph.add_nodes_from(raw.nodes)
    for u, v, data in raw.edges(data=True):
        if u == v:
            continue
        value = data.get(attribute)
        try:
            capacity = float(value) * scale if value not in (None, "") else spec.default_capacity
        except (TypeError, ValueError):
            capacity = spec.default_capacity
        if graph.has_edge(u, v):
            graph[u][v]["capacity"] += capacity
        else:
            graph.add_edge(u, v, capacity=capacity)
    if graph.number_of_edges() == 0:
        raise ProblemError("the topology has no links")
    return graph


def link_name(u: str, v: str) -> str:
    """A stable name for an undirected link."""
    a, b = sorted((u, v))
    return f"{a}--{b}"
