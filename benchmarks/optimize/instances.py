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

from qbackbone.api.problem import (
    ProblemSpec,
    QuboProblem,
    SliceAdmissionProblem,
    TrafficEngineeringProblem,
)
from qbackbone.core.optimize.problem import ReducedProblem
from qbackbone.core.optimize.reduce import reduce_problem

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


# -- helpers for QAOA template tuning, the benchmark and tests (added for issue 7) ----------------

QAOA_KINDS = ("qubo", "trafficEngineering", "sliceAdmission")


def qubo_problem(variables: int, seed: int, density: float = 1.0) -> QuboProblem:
    """A random QUBO spec: linear and coupling coefficients uniform in [-1, 1].

    `density` is the fraction of the variable pairs that are coupled (1: every pair).
    """
    rng = np.random.default_rng(seed)
    names = [f"x{k}" for k in range(variables)]
    quadratic = [{"i": names[i], "j": names[j], "value": float(round(rng.uniform(-1, 1), 4))}
                 for i in range(variables) for j in range(i + 1, variables)
                 if rng.random() < density]
    return QuboProblem.model_validate({
        "variables": names,
        "linear": {n: float(round(rng.uniform(-1, 1), 4)) for n in names},
        "quadratic": quadratic})


def problem_spec(kind: str, spec: QuboProblem | TrafficEngineeringProblem
                 | SliceAdmissionProblem) -> ProblemSpec:
    """spec.problem holding one problem of the given kind."""
    field = {"qubo": "qubo", "trafficEngineering": "traffic_engineering",
             "sliceAdmission": "slice_admission"}[kind]
    return ProblemSpec(**{field: spec})


def qaoa_instance(kind: str, seed: int, min_variables: int,
                  max_variables: int) -> ReducedProblem | None:
    """One random reduced problem of a class with min..max QUBO variables, or None (retry).

    qubo: a dense random QUBO. trafficEngineering: gravity demands (3-10 pairs, shortest-path
    load 1.0-1.5) on a synthetic backbone of 6-14 nodes or on Abilene, aggregated to a random
    limit in [min_variables, max_variables]. sliceAdmission: 3-8 slices over 1-3 resources.
    """
    rng = np.random.default_rng(seed)
    sub = int(rng.integers(1 << 30))
    problem: ReducedProblem
    if kind == "qubo":
        n = int(rng.integers(min_variables, max_variables + 1))
        problem = reduce_problem(problem_spec(kind, qubo_problem(n, sub)), None)
    elif kind == "trafficEngineering":
        graph = (zoo_graph("Abilene") if rng.random() < 0.3
                 else synthetic_graph(int(rng.integers(6, 15)), sub))
        spec = traffic_problem(graph, int(rng.integers(3, 11)), float(rng.uniform(1.0, 1.5)),
                               sub)
        limit = int(rng.integers(min_variables, max_variables + 1))
        problem = reduce_problem(problem_spec(kind, spec), limit)
        if len(getattr(problem, "free", [])) < 2:
            return None
    elif kind == "sliceAdmission":
        spec_s = slice_problem(int(rng.integers(3, 9)), int(rng.integers(1, 4)), sub)
        problem = reduce_problem(problem_spec(kind, spec_s), None)
    else:
        raise ValueError(f"unknown problem kind {kind!r}")
    return problem if min_variables <= problem.qubo.size <= max_variables else None


def qaoa_instances(kind: str, count: int, seed: int, min_variables: int,
                   max_variables: int) -> list[ReducedProblem]:
    """`count` reduced problems of a class (qaoa_instance with seeds seed, seed + 1, ...)."""
    out: list[ReducedProblem] = []
    k = seed
    while len(out) < count:
        found = qaoa_instance(kind, k, min_variables, max_variables)
        if found is not None:
            out.append(found)
        k += 1
        if k - seed > 200 * count:
            raise RuntimeError(f"could not draw {count} {kind} instances of {min_variables}-"
                               f"{max_variables} variables")
    return out
