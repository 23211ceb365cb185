"""Labelled anomalies injected into generated telemetry.

Each anomaly changes the demands or the routing of a window of steps; the links it involves
are recorded with it (a failed link and every link its reroute moves traffic onto, a surge's
path, ...). Magnitudes are relative to the capacity of the links involved, so they read the
same on every backbone:

- linkFailure: a link (not a bridge) carries nothing for 2-8 h; its demands take the shortest
  path without it.
- volumetricSurge: one demand grows by 15-35 % of its path's smallest capacity for 1-4 h.
- flashCrowd: every demand to or from one PoP (drawn by its traffic) jumps 2-4x, then
  decays over about 6 h.
- routeFlap: a link's demands alternate, step by step, between their path and the detour.
- slowDrift: one demand creeps up linearly by 20-35 % of its path's capacity over 1-2 days.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np

from qbackbone.api.telemetry import AnomalyKind, InjectedAnomaly
from qbackbone.core.optimize.topology import link_name
from qbackbone.core.telemetry.traffic import Demands, route_matrix

CHANGED = 1e-9


@dataclass
class Scenario:
    """What the generator routes: demands per step, and routing overrides per step."""

    volumes: np.ndarray  # steps x pairs
    overrides: dict[int, np.ndarray]  # step -> pairs x links routing


@dataclass(frozen=True)
class Network:
    """The backbone the anomalies act on."""

    graph: nx.Graph
    demands: Demands
    capacity: np.ndarray  # per link, in the volumes' unit
    steps_per_hour: float


def slots(steps: int, count: int, warmup: int) -> list[tuple[int, int]]:
    """``count`` equal, disjoint slots of [warmup, steps) (one anomaly each)."""
    width = (steps - warmup) // max(count, 1)
    return [(warmup + k * width, warmup + (k + 1) * width) for k in range(count)]


def _window(rng: np.random.Generator, slot: tuple[int, int], hours: tuple[float, float],
            per_hour: float) -> tuple[int, int]:
    lo, hi = slot
    length = max(1, round(rng.uniform(*hours) * per_hour))
    length = min(length, max(1, hi - lo - 1))
    start = int(rng.integers(lo, max(lo + 1, hi - length)))
    return start, start + length


def _links_of(net: Network, mask: np.ndarray) -> list[str]:
    return [net.demands.links[k] for k in np.flatnonzero(mask)]


def _detour(net: Network, rng: np.random.Generator) -> tuple[int, np.ndarray] | None:
    """A used, non-bridge link and the routing without it (None if none exists)."""
    used = np.flatnonzero(net.demands.routing.sum(axis=0) > 0)
    ends = {link_name(u, v): (u, v) for u, v in net.graph.edges}
    bridges = {link_name(u, v) for u, v in nx.bridges(net.graph)}
    candidates = [k for k in used if net.demands.links[k] not in bridges]
    if not candidates:
        return None
    k = int(rng.choice(candidates))
    cut = net.graph.copy()
    cut.remove_edge(*ends[net.demands.links[k]])
    return k, route_matrix(cut, net.demands.pairs, net.demands.links)


def _path_capacity(net: Network, pair: int) -> tuple[np.ndarray, float]:
    on = net.demands.routing[pair] > 0
    return on, float(net.capacity[on].min())


def inject(kind: AnomalyKind, net: Network, scenario: Scenario, slot: tuple[int, int],
           rng: np.random.Generator) -> InjectedAnomaly | None:
    """Inject one anomaly of ``kind`` inside ``slot``; None when the backbone has no place
    for it (e.g. every link is a bridge)."""
    per_hour = net.steps_per_hour
    pairs = len(net.demands.pairs)
    if pairs == 0:
        return None
    if kind in ("linkFailure", "routeFlap"):
        found = _detour(net, rng)
        if found is None:
            return None
        k, detour = found
        hours = (2.0, 8.0) if kind == "linkFailure" else (4.0, 10.0)
        start, end = _window(rng, slot, hours, per_hour)
        moved = np.abs(detour - net.demands.routing).sum(axis=0) > CHANGED
        for step in range(start, end):
            if kind == "linkFailure" or (step - start) % 2 == 0:
                scenario.overrides[step] = detour
        verb = "fails" if kind == "linkFailure" else "flaps"
        return InjectedAnomaly(kind=kind, start=start, end=end, links=_links_of(net, moved),
                               detail=f"{net.demands.links[k]} {verb}; demands take the detour")
    if kind == "flashCrowd":
        ends = net.demands.endpoints
        weight = np.array([sum(v for p, v in zip(net.demands.pairs, net.demands.base,
                                                   strict=True) if n in p) for n in ends])
        node = str(rng.choice(ends, p=weight / weight.sum()))
        involved = np.array([node in pair for pair in net.demands.pairs])
        start, end = _window(rng, slot, (5.0, 8.0), per_hour)
        jump = rng.uniform(2.0, 4.0)
        before = scenario.volumes[start:end].copy()
        decay = np.exp(-np.arange(end - start) / max(1.0, 2.5 * per_hour))
        scenario.volumes[start:end, involved] *= (1.0 + (jump - 1.0) * decay)[:, None]
        extra = ((scenario.volumes[start:end] - before) @ net.demands.routing).max(axis=0)
        hit = extra > 0.05 * net.capacity
        if not hit.any():  # a small PoP: its busiest links
            hit = extra >= np.sort(extra)[-min(3, len(extra))]
        return InjectedAnomaly(kind=kind, start=start, end=end, links=_links_of(net, hit),
                               detail=f"demands to and from {node} jump {jump:.1f}x")
    pair = int(rng.integers(pairs))
    on, capacity = _path_capacity(net, pair)
    s, t = net.demands.pairs[pair]
    if kind == "volumetricSurge":
        start, end = _window(rng, slot, (1.0, 4.0), per_hour)
        size = rng.uniform(0.15, 0.35) * capacity
        scenario.volumes[start:end, pair] += size
        return InjectedAnomaly(kind=kind, start=start, end=end, links=_links_of(net, on),
                               detail=f"{s} -> {t} surges by {size:.4g}")
    start, end = _window(rng, slot, (24.0, 48.0), per_hour)
    size = rng.uniform(0.2, 0.35) * capacity
    scenario.volumes[start:end, pair] += np.linspace(size / (end - start), size, end - start)
    return InjectedAnomaly(kind="slowDrift", start=start, end=end, links=_links_of(net, on),
                           detail=f"{s} -> {t} drifts up by {size:.4g}")


def inject_all(kinds: Sequence[AnomalyKind], count: int, net: Network, scenario: Scenario,
               warmup: int, rng: np.random.Generator) -> list[InjectedAnomaly]:
    """``count`` anomalies, kinds in turn, one per equal slot after the warm-up."""
    steps = scenario.volumes.shape[0]
    out: list[InjectedAnomaly] = []
    for k, slot in enumerate(slots(steps, count, warmup)):
        if slot[1] - slot[0] < 2:
            break
        found = inject(kinds[k % len(kinds)], net, scenario, slot, rng)
        if found is not None:
            out.append(found)
    return out
