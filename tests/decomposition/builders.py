"""Small backbones for the decomposition tests: a ring of rings with two sites, and demands."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from qbackbone.api.problem import TrafficEngineeringProblem


def ring_of_rings(rings: int = 3, size: int = 4, capacity: float = 10.0
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Rings of `size` PoPs (site s<k>), neighbouring rings joined by two links."""
    nodes = [{"id": f"r{k}n{i}", "site": f"s{k}"} for k in range(rings) for i in range(size)]
    links = []
    for k in range(rings):
        for i in range(size):
            links.append({"source": f"r{k}n{i}", "target": f"r{k}n{(i + 1) % size}",
                          "capacity": capacity})
        nxt = (k + 1) % rings
        links.append({"source": f"r{k}n0", "target": f"r{nxt}n{size // 2}",
                      "capacity": capacity})
        links.append({"source": f"r{k}n1", "target": f"r{nxt}n{size // 2 + 1}",
                      "capacity": capacity})
    return nodes, links


def demands(nodes: list[dict[str, Any]], count: int, seed: int, low: float = 2.0,
            high: float = 6.0) -> list[dict[str, Any]]:
    """`count` demands between distinct random node pairs, volumes in [low, high]."""
    rng = np.random.default_rng(seed)
    names = [n["id"] for n in nodes]
    pairs: set[tuple[str, str]] = set()
    out = []
    while len(out) < count:
        a, b = sorted(rng.choice(len(names), 2, replace=False))
        pair = (names[a], names[b])
        if pair in pairs:
            continue
        pairs.add(pair)
        out.append({"source": pair[0], "target": pair[1],
                    "volume": float(rng.integers(int(low), int(high) + 1))})
    return out


def te_spec(count: int = 12, seed: int = 3, with_sites: bool = True,
            **kwargs: Any) -> dict[str, Any]:
    """A trafficEngineering spec on the ring of rings (node-link document, so sites survive)."""
    nodes, links = ring_of_rings(**kwargs)
    if not with_sites:
        nodes = [{"id": n["id"]} for n in nodes]
    document = json.dumps({"nodes": nodes, "links": links})
    return {"topology": {"format": "nodeLink", "document": document},
            "demands": demands(nodes, count, seed), "candidatePaths": 3}


def te_problem(count: int = 12, seed: int = 3, with_sites: bool = True,
               **kwargs: Any) -> TrafficEngineeringProblem:
    """The spec as a model."""
    return TrafficEngineeringProblem.model_validate(te_spec(count, seed, with_sites, **kwargs))


def slice_spec(count: int = 24, seed: int = 1, with_sites: bool = True, capacity: float = 10.0,
               sites: int | None = None, slack_bits: int = 2, request_rings: int | None = None,
               **kwargs: Any) -> dict[str, Any]:
    """A sliceAdmission spec on the ring of rings: a capacity at every PoP ('pop-<node>') and
    on every link ('<a>--<b>'); each request uses its PoP and one link from it, revenue 1-9.

    `sites` folds the rings into that many sites (1: a single region); `request_rings` puts
    the requests' PoPs on the first rings only (the others' sites get none).
    """
    nodes, links = ring_of_rings(capacity=capacity, **kwargs)
    if sites is not None:
        nodes = [{"id": n["id"], "site": f"s{min(int(n['site'][1:]), sites - 1)}"}
                 for n in nodes]
    if not with_sites:
        nodes = [{"id": n["id"]} for n in nodes]
    rng = np.random.default_rng(seed)
    resources = [{"name": f"pop-{n['id']}", "capacity": capacity} for n in nodes]
    resources += [{"name": f"{link['source']}--{link['target']}", "capacity": capacity}
                  for link in links]
    names = [n["id"] for n in nodes
             if request_rings is None or int(n["id"][1:n["id"].index("n")]) < request_rings]
    requests = []
    for k in range(count):
        at = names[int(rng.integers(len(names)))]
        near = [link for link in links if at in (link["source"], link["target"])]
        link = near[int(rng.integers(len(near)))]
        requests.append({"name": f"slice-{k}", "revenue": float(rng.integers(1, 10)),
                         "demands": {f"pop-{at}": float(rng.integers(2, 7)),
                                     f"{link['source']}--{link['target']}":
                                         float(rng.integers(2, 7))}})
    document = json.dumps({"nodes": nodes, "links": links})
    return {"topology": {"format": "nodeLink", "document": document}, "resources": resources,
            "slices": requests, "slackBits": slack_bits}
