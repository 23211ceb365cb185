"""Slice-admission instances on a backbone graph (benchmarks and examples/decomposition).

Each request is homed at a PoP chosen in proportion to its degree; it needs vCPUs there
(8-32), bandwidth on one link from it (1-4 Gbit/s, in Mbit/s) and, for half of them, vCPUs at
that link's other end (4-16). Revenue follows the resources used, with noise (whole units).
Capacities are set so that the requests ask for `load` times what a resource holds (1.6: most
requests compete for some capacity), but never below the largest single request on it (every
request fits on its own). Resources are named as sliceAdmission.topology expects:
'pop-<node>' and '<a>--<b>', node names lower-cased with spaces as '-'.
"""

from __future__ import annotations

import math
from typing import Any

import networkx as nx
import numpy as np


def place_name(node: str) -> str:
    """A node's name in resource names."""
    return "-".join(str(node).lower().split())


def slice_requests(graph: nx.Graph, count: int, seed: int,
                   load: float = 1.6) -> dict[str, Any]:
    """resources and slices (camelCase, as in a manifest) of `count` requests."""
    rng = np.random.default_rng(seed)
    nodes = sorted(graph.nodes, key=str)
    degree = np.array([graph.degree(n) for n in nodes], dtype=float)
    slices, asked = [], {}
    for k in range(count):
        at = nodes[int(rng.choice(len(nodes), p=degree / degree.sum()))]
        other = sorted(graph.neighbors(at), key=str)[int(rng.integers(graph.degree(at)))]
        pop, link = f"pop-{place_name(at)}", "--".join(sorted((place_name(at),
                                                               place_name(other))))
        demands = {pop: float(8 * rng.integers(1, 5)), link: float(1000 * rng.integers(1, 5))}
        if rng.random() < 0.5:
            demands[f"pop-{place_name(other)}"] = float(4 * rng.integers(1, 5))
        revenue = sum(v / 8 for r, v in demands.items() if r.startswith("pop-")) \
            + demands[link] / 1000 + float(rng.integers(0, 4))
        slices.append({"name": f"slice-{k}", "revenue": float(round(revenue)),
                       "demands": demands})
        for r, v in demands.items():
            asked.setdefault(r, []).append(v)
    resources = []
    for r, amounts in sorted(asked.items()):
        step = 1000 if "--" in r else 4
        capacity = max(max(amounts), step * math.ceil(sum(amounts) / load / step))
        resources.append({"name": r, "capacity": float(capacity)})
    return {"resources": resources, "slices": slices}
