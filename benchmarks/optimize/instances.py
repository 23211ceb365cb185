"""Benchmark instances: Topology Zoo backbones and synthetic graphs, with gravity-model demands.

The Topology Zoo files carry no traffic. Demands come from a gravity model: node weight is its
degree, the volume between s and t is proportional to w_s * w_t, and the `pairs` heaviest
pairs (ties broken by a seeded shuffle) are kept. Volumes are scaled so that routing every
demand on its shortest path loads the busiest link to `load` times its capacity (above 1 means
shortest-path routing overloads it and traffic engineering has work to do), then rounded to
whole units.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import networkx as nx
import numpy as np

from qbackbone.api.problem import SliceAdmissionProblem, TrafficEngineeringProblem

ROOT = Path(__file__).resolve().parents[2]
TOPOLOGIES = ROOT / "examples" / "optimize" / "topologies"
OC192_MBPS = 9953.0
DEFAULT_CAPACITY_MBPS = 10_000.0


def zoo_graph(name: str) -> nx.Graph:
    """A Topology Zoo graph, nodes named by label, capacity in Mbit/s on every link."""
    raw = nx.read_graphml(TOPOLOGIES / f"{name}.graphml")
    graph = nx.Graph()
    labels: dict[str, str] = {}
    for node, data in raw.nodes(data=True):
        label = str(data.get("label") or node)
        labels[node] = label if label not in labels.values() else f"{label}#{node}"
    for u, v, data in raw.edges(data=True):
        if u == v:
            continue
        speed = data.get("LinkSpeedRaw")
        capacity = float(speed) / 1e6 if speed else (
            OC192_MBPS if data.get("LinkType") == "OC-192" else DEFAULT_CAPACITY_MBPS)
        a, b = labels[u], labels[v]
        if graph.has_edge(a, b):
            graph[a][b]["capacity"] += capacity
        else:
            graph.add_edge(a, b, capacity=capacity)
    return graph


def synthetic_graph(nodes: int, seed: int, degree: int = 3) -> nx.Graph:
    """A connected random regular-ish backbone with 10 Gbit/s links."""
    rng = np.random.default_rng(seed)
    graph = nx.connected_watts_strogatz_graph(nodes, degree + (degree % 2), 0.3,
                                              seed=int(rng.integers(1 << 30)))
    graph = nx.relabel_nodes(graph, {n: f"n{n}" for n in graph.nodes})
    nx.set_edge_attributes(graph, DEFAULT_CAPACITY_MBPS, "capacity")
    return graph


def gravity_demands(graph: nx.Graph, pairs: int, load: float, seed: int) -> list[dict[str, object]]:
    """`pairs` gravity-model demands scaled so shortest paths load the busiest link to `load`."""
    rng = np.random.default_rng(seed)
    nodes = sorted(graph.nodes)
    weight = {n: float(graph.degree(n)) for n in nodes}
    candidates = [(a, b) for i, a in enumerate(nodes) for b in nodes[i + 1:]]
    order = rng.permutation(len(candidates))
    ranked = sorted((candidates[k] for k in order), key=lambda p: -weight[p[0]] * weight[p[1]])
    chosen = ranked[:pairs]
    raw = {p: weight[p[0]] * weight[p[1]] * rng.uniform(0.5, 1.5) for p in chosen}
    link_load: dict[tuple[str, str], float] = {}
    for (s, t), v in raw.items():
        path = nx.shortest_path(graph, s, t)
        for a, b in itertools.pairwise(path):
            e = (min(a, b), max(a, b))
            link_load[e] = link_load.get(e, 0.0) + v
    busiest = max(v / graph.edges[e]["capacity"] for e, v in link_load.items())
    scale = load / busiest
    return [{"source": s, "target": t, "volume": float(max(1, round(v * scale)))}
            for (s, t), v in raw.items()]


def traffic_problem(graph: nx.Graph, pairs: int, load: float, seed: int,
                    candidate_paths: int = 3) -> TrafficEngineeringProblem:
    """A trafficEngineering spec with inline links and gravity demands."""
    links = [{"source": u, "target": v, "capacity": d["capacity"]}
             for u, v, d in graph.edges(data=True)]
    return TrafficEngineeringProblem.model_validate({
        "topology": {"links": links}, "demands": gravity_demands(graph, pairs, load, seed),
        "candidatePaths": candidate_paths})


def slice_problem(slices: int, resources: int, seed: int,
                  oversubscription: float = 1.8) -> SliceAdmissionProblem:
    """Random slice requests over PoPs and links, oversubscribing capacity by the given factor."""
    rng = np.random.default_rng(seed)
    names = [f"pop-{k}" for k in range(resources)]
    requests = []
    use = np.zeros(resources)
    for s in range(slices):
        picked = rng.choice(resources, size=min(2, resources), replace=False)
        demands = {names[r]: float(rng.integers(2, 10)) for r in picked}
        for r in picked:
            use[r] += demands[names[r]]
        requests.append({"name": f"slice-{s}", "revenue": float(rng.integers(1, 20)),
                         "demands": demands})
    capacity = [{"name": n, "capacity": float(max(1, round(use[k] / oversubscription)))}
                for k, n in enumerate(names)]
    return SliceAdmissionProblem.model_validate({"resources": capacity, "slices": requests})
