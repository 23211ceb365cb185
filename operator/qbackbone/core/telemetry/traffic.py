"""Gravity-model demands, shortest-path routing and seasonal demand profiles.

Demand between PoPs s and t at step k is m_s m_t g_s(k) g_t(k) (1 + noise), with masses m
drawn from a lognormal scaled by node degree and g a per-PoP profile: a daily cycle (peak
in the PoP's local evening, its time zone from its longitude), a weekend dip, and growth.
Routing is one shortest path (hops, ties broken by name) per demand; a link's load is the
sum of the demands crossing it, in either direction.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from qbackbone.core.optimize.topology import link_name

DAILY_AMPLITUDE = 0.45  # trough = (1 - a) / (1 + a) of the peak
WEEKEND_FACTOR = 0.72
PEAK_HOUR = 20.0  # local time of the daily peak


@dataclass(frozen=True)
class Demands:
    """The demand pairs, their base volumes and routes."""

    pairs: list[tuple[str, str]]
    base: np.ndarray  # volume per pair (before profiles)
    routing: np.ndarray  # pairs x links, 1 where the pair's path crosses the link
    links: list[str]
    endpoints: list[str]


def gravity_masses(graph: nx.Graph, rng: np.random.Generator) -> dict[str, float]:
    """A mass per PoP: degree times a lognormal factor (sd 0.5)."""
    nodes = sorted(graph.nodes)
    factors = rng.lognormal(0.0, 0.5, len(nodes))
    return {n: float(graph.degree(n)) * float(f) for n, f in zip(nodes, factors, strict=True)}


def route_matrix(graph: nx.Graph, pairs: Sequence[tuple[str, str]],
                 links: Sequence[str]) -> np.ndarray:
    """pairs x links incidence of each pair's shortest path (hops; deterministic ties)."""
    index = {name: k for k, name in enumerate(links)}
    out = np.zeros((len(pairs), len(links)))
    for p, (s, t) in enumerate(pairs):
        path = shortest_path(graph, s, t)
        for u, v in itertools.pairwise(path):
            out[p, index[link_name(u, v)]] = 1.0
    return out


def shortest_path(graph: nx.Graph, source: str, target: str) -> list[str]:
    """A shortest path in hops, ties broken deterministically (lexicographic node names)."""
    dist = nx.single_source_shortest_path_length(graph, target)
    if source not in dist:
        raise nx.NetworkXNoPath(f"{source} cannot reach {target}")
    path = [source]
    while path[-1] != target:
        here = path[-1]
        path.append(min(n for n in graph.neighbors(here) if dist.get(n) == dist[here] - 1))
    return path


def largest_component(graph: nx.Graph) -> nx.Graph:
    """The largest connected component (ties: the one with the smallest node names)."""
    component = max(nx.connected_components(graph), key=lambda c: (len(c), sorted(c)))
    return graph.subgraph(component).copy()


def build_demands(core: nx.Graph, rng: np.random.Generator, max_endpoints: int) -> Demands:
    """Gravity demands between the largest PoPs of a connected graph."""
    masses = gravity_masses(core, rng)
    endpoints = sorted(sorted(masses, key=lambda n: (-masses[n], n))[:max_endpoints])
    pairs = [(s, t) for s in endpoints for t in endpoints if s < t]
    base = np.array([masses[s] * masses[t] for s, t in pairs])
    links = sorted(link_name(u, v) for u, v in core.edges)
    return Demands(pairs, base, route_matrix(core, pairs, links), links, endpoints)


def local_offsets(graph: nx.Graph, nodes: Sequence[str]) -> np.ndarray:
    """Hours from the reference clock to each PoP's local time (longitude / 15; 0 if unknown)."""
    out = np.zeros(len(nodes))
    for k, n in enumerate(nodes):
        lon = graph.nodes[n].get("Longitude")
        if isinstance(lon, int | float) and math.isfinite(float(lon)):
            out[k] = float(lon) / 15.0
    return out


def node_profiles(hours: np.ndarray, offsets: np.ndarray, growth_per_week: float) -> np.ndarray:
    """steps x nodes: daily cycle (peak at PEAK_HOUR local), weekend dip, growth."""
    local = hours[:, None] + offsets[None, :]
    daily = 1.0 + DAILY_AMPLITUDE * np.cos(2 * np.pi * (local - PEAK_HOUR) / 24.0)
    weekday = np.floor(local / 24.0) % 7  # day 0 is a Monday
    weekly = np.where(weekday >= 5, WEEKEND_FACTOR, 1.0)
    growth = (1.0 + growth_per_week) ** (hours / 168.0)
    return daily * weekly * growth[:, None]


def pair_series(demands: Demands, profiles: np.ndarray, noise: float,
                rng: np.random.Generator) -> np.ndarray:
    """steps x pairs demand volumes: base x sqrt-profile of each end x lognormal AR(1) noise."""
    where = {n: k for k, n in enumerate(demands.endpoints)}
    s = np.array([where[a] for a, _ in demands.pairs])
    t = np.array([where[b] for _, b in demands.pairs])
    shape = np.sqrt(profiles[:, s] * profiles[:, t]) if len(s) else np.zeros((len(profiles), 0))
    eps = np.zeros(shape.shape)
    shocks = rng.normal(0.0, 1.0, shape.shape)
    rho = 0.5  # noise correlated over adjacent steps
    for k in range(shape.shape[0]):
        eps[k] = (rho * eps[k - 1] if k else 0.0) + math.sqrt(1 - rho * rho) * shocks[k]
    return demands.base[None, :] * shape * np.exp(noise * eps - 0.5 * noise * noise)
