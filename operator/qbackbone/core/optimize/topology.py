"""Load a backbone topology into a networkx graph with a capacity on every link.

Documents are untrusted: their size is checked before parsing, GraphML with a DTD or entity
declaration is refused (nothing is ever read from a file or the network), node-link JSON is
checked for its shape, and every capacity must be a finite positive number in range.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import networkx as nx

from qbackbone.api.problem import Topology
from qbackbone.core.optimize.limits import (
    MAX_DOCUMENT_CHARS,
    MAX_LINKS,
    MAX_NODES,
    check_count,
    check_quantity,
)
from qbackbone.core.optimize.problem import ProblemError, ProblemTooLarge

ConfigMapReader = Callable[[str, str], str]
"""(name, key) -> the ConfigMap value; raises KeyError when either is missing."""

_DTD = re.compile(r"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_SCALAR_ID = (str, int, float)


def _graphml(text: str) -> nx.Graph:
    if _DTD.search(text):
        raise ProblemError("the GraphML topology declares a DOCTYPE or ENTITY: DTDs and entities "
                           "are not allowed (nothing is read from files or the network); remove "
                           "the <!DOCTYPE ...> declaration")
    try:
        graph: nx.Graph = nx.parse_graphml(text)
    # xml.etree's ParseError is a SyntaxError
    except (nx.NetworkXError, ValueError, KeyError, TypeError, SyntaxError,
            RecursionError) as err:
        raise ProblemError(f"the topology is not valid graphml: {err}") from None
    return graph


def _node_link(text: str) -> nx.Graph:
    """A MultiGraph from a node-link JSON object, every part of its shape checked."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ProblemError("the nodeLink topology is nested too deeply to be a node-link "
                           "document") from None
    except ValueError as err:
        raise ProblemError(f"the topology is not valid JSON: {err}") from None
    if not isinstance(data, dict):
        raise ProblemError("the nodeLink topology must be a JSON object with \"nodes\" and "
                           f"\"links\" (or \"edges\"), got a JSON {_json_type(data)}")
    nodes = data.get("nodes")
    key = "links" if "links" in data else "edges"
    links = data.get(key)
    if not isinstance(nodes, list) or not isinstance(links, list):
        raise ProblemError("the nodeLink topology needs \"nodes\" and \"links\" (or \"edges\") "
                           f"as JSON lists, got {_json_type(nodes)} and {_json_type(links)}")
    check_count(len(nodes), MAX_NODES, "nodeLink topology nodes", "give a smaller topology")
    check_count(len(links), MAX_LINKS, "nodeLink topology links", "give a smaller topology")
    graph: nx.Graph = nx.MultiGraph()
    for index, node in enumerate(nodes):
        if not isinstance(node, dict) or not _is_id(node.get("id")):
            raise ProblemError(f"nodeLink nodes[{index}] must be an object with an \"id\" (a "
                               "string or number)")
        graph.add_node(node["id"], **{k: v for k, v in node.items() if k != "id"})
    for index, link in enumerate(links):
        if not isinstance(link, dict):
            raise ProblemError(f"nodeLink {key}[{index}] must be an object with \"source\" and "
                               "\"target\"")
        for end in ("source", "target"):
            if not _is_id(link.get(end)) or link[end] not in graph:
                raise ProblemError(f"nodeLink {key}[{index}].{end} {link.get(end)!r} is not "
                                   "the id of a node in \"nodes\"")
        graph.add_edge(link["source"], link["target"],
                       **{k: v for k, v in link.items() if k not in ("source", "target", "key")})
    return graph


def _is_id(value: object) -> bool:
    return isinstance(value, _SCALAR_ID) and not isinstance(value, bool)


def _json_type(value: object) -> str:
    names = {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}
    return names.get(type(value), "number")


def _from_document(text: str, fmt: str) -> nx.Graph:
    if len(text) > MAX_DOCUMENT_CHARS:
        raise ProblemTooLarge(f"the {fmt} topology has {len(text):,} characters, above the limit "
                              f"of {MAX_DOCUMENT_CHARS:,}: give a smaller topology")
    graph = _graphml(text) if fmt == "graphml" else _node_link(text)
    check_count(graph.number_of_nodes(), MAX_NODES, f"{fmt} topology nodes",
                "give a smaller topology")
    check_count(graph.number_of_edges(), MAX_LINKS, f"{fmt} topology links",
                "give a smaller topology")
    return graph


def _relabel(graph: nx.Graph, attribute: str | None) -> nx.Graph:
    names: dict[object, str] = {}
    taken: set[str] = set()
    for node, data in graph.nodes(data=True):
        if attribute is None:
            name = str(node)
            if name in taken:
                raise ProblemError(f"the topology has two nodes named {name!r} (e.g. the number "
                                   f"{name} and the string \"{name}\"): give every node its own id")
        else:  # duplicate labels exist in the Topology Zoo; keep names unique
            name = str(data.get(attribute) or node)
            if name in taken:
                name = f"{name}#{node}"
        taken.add(name)
        names[node] = name
    return nx.relabel_nodes(graph, names)


def _capacity(spec: Topology, link: str, value: Any, scale: float) -> float:
    """The capacity of one document link: default when absent, else a number in range."""
    if value is None or value == "":
        return spec.default_capacity
    where = f"topology link {link} attribute {spec.capacity_attribute!r}"
    number: object = value
    if isinstance(value, str):
        try:
            number = float(value.strip()) if value.strip().isascii() else value
        except ValueError:
            number = value
    if isinstance(number, int | float) and not isinstance(number, bool):
        try:
            number = float(number) * scale
        except OverflowError:
            number = float("inf")
        if scale != 1.0:
            where += f" (x capacityScale {scale:g})"
    return check_quantity(where, number)


def load_topology(spec: Topology, read_config_map: ConfigMapReader | None = None) -> nx.Graph:
    """An undirected simple graph; parallel links are merged (capacities added)."""
    check_quantity("trafficEngineering.topology.defaultCapacity", spec.default_capacity)
    if spec.links is not None:
        check_count(len(spec.links), MAX_LINKS, "trafficEngineering.topology.links",
                    "give a smaller topology")
        raw: nx.Graph = nx.MultiGraph()
        for index, link in enumerate(spec.links):
            capacity = spec.default_capacity if link.capacity is None else check_quantity(
                f"trafficEngineering.topology.links[{index}].capacity", link.capacity)
            raw.add_edge(link.source, link.target, capacity=capacity)
        check_count(raw.number_of_nodes(), MAX_NODES, "topology nodes", "give a smaller topology")
        document = False
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
        if spec.capacity_scale <= 0:
            raise ProblemError(f"topology.capacityScale is {spec.capacity_scale:g}: it must be "
                               "positive")
        raw = _relabel(_from_document(text, spec.format), spec.node_attribute)
        document = True
    graph = nx.Graph()
    graph.add_nodes_from(raw.nodes(data=True))  # attributes name regions (decompose)
    self_loops = 0
    for u, v, data in raw.edges(data=True):
        if u == v:
            self_loops += 1
            continue
        capacity = (_capacity(spec, link_name(u, v), data.get(spec.capacity_attribute),
                              spec.capacity_scale) if document else data["capacity"])
        if graph.has_edge(u, v):
            graph[u][v]["capacity"] = check_quantity(
                f"topology link {link_name(u, v)} (parallel links added up)",
                graph[u][v]["capacity"] + capacity)
        else:
            graph.add_edge(u, v, capacity=capacity)
    if graph.number_of_edges() == 0:
        loops = f" ({self_loops} self-loop(s) ignored)" if self_loops else ""
        raise ProblemError(f"trafficEngineering.topology has no links between two different "
                           f"nodes{loops}: give at least one link")
    return graph


def link_name(u: str, v: str) -> str:
    """A stable name for an undirected link."""
    a, b = sorted((u, v))
    return f"{a}--{b}"
