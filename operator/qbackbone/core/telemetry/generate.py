"""Seeded synthetic backbone telemetry with labelled anomalies (docs/detect-predict.md).

Steps: (1) gravity demands between the largest PoPs (traffic.py), routed on shortest paths;
(2) each demand follows its ends' daily/weekly profiles, growth and AR(1) lognormal noise;
(3) demands are scaled so the busiest link's 95th-percentile utilisation is
``peak_utilisation``; (4) anomalies are injected (anomalies.py), one per equal slot after a
one-day warm-up; (5) link utilisation = routed load / capacity, plus 1 % measurement noise;
node traffic = the load on the node's links. The same seed gives the same telemetry.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from qbackbone.api.telemetry import ALL_ANOMALY_KINDS, AnomalyKind
from qbackbone.core.optimize.problem import ProblemError, ProblemTooLarge
from qbackbone.core.optimize.topology import link_name
from qbackbone.core.telemetry.anomalies import Network, Scenario, inject_all
from qbackbone.core.telemetry.model import Telemetry
from qbackbone.core.telemetry.traffic import (
    build_demands,
    largest_component,
    local_offsets,
    node_profiles,
    pair_series,
)

MEASUREMENT_NOISE = 0.01
MAX_STEPS = 20_000
MAX_CELLS = 5_000_000  # steps x demand pairs, and steps x links


@dataclass(frozen=True)
class GeneratorOptions:
    """The generator's knobs (GeneratedTelemetry without the topology)."""

    seed: int = 0
    days: int = 14
    step_minutes: int = 60
    peak_utilisation: float = 0.6
    noise: float = 0.05
    growth_per_week: float = 0.01
    anomalies: int = 8
    anomaly_kinds: tuple[AnomalyKind, ...] = field(default=ALL_ANOMALY_KINDS)
    max_endpoints: int = 30


def _routed(volumes: np.ndarray, routing: np.ndarray, overrides: dict[int, np.ndarray]
            ) -> np.ndarray:
    loads = volumes @ routing
    for step, matrix in overrides.items():
        loads[step] = volumes[step] @ matrix
    return loads


def _check_size(steps: int, pairs: int, links: int) -> None:
    if steps > MAX_STEPS:
        raise ProblemTooLarge(f"generated telemetry would have {steps:,} steps, above the limit of "
                           f"{MAX_STEPS:,}: fewer days or a longer stepMinutes")
    cells = steps * max(pairs, links)
    if cells > MAX_CELLS:
        raise ProblemTooLarge(f"generated telemetry would hold {cells:,} values (steps x demand "
                           f"pairs or links), above {MAX_CELLS:,}: fewer days, a longer "
                           "stepMinutes or fewer maxEndpoints")


def generate(graph: nx.Graph, options: GeneratorOptions) -> Telemetry:
    """Telemetry over ``graph`` (links carry ``capacity``), reproducible from the seed."""
    rng = np.random.default_rng(options.seed)
    core = largest_component(graph)
    per_day = max(1, round(24 * 60 / options.step_minutes))
    steps = options.days * per_day
    endpoints = min(options.max_endpoints, core.number_of_nodes())
    _check_size(steps, endpoints * (endpoints - 1) // 2, core.number_of_edges())
    demands = build_demands(core, rng, options.max_endpoints)
    if not demands.pairs:
        raise ProblemError("the topology needs at least two connected PoPs to carry traffic")
    hours = np.arange(steps) * options.step_minutes / 60.0
    profiles = node_profiles(hours, local_offsets(core, demands.endpoints),
                             options.growth_per_week)
    volumes = pair_series(demands, profiles, options.noise, rng)
    ends = {link_name(u, v): (u, v) for u, v in core.edges}
    capacity = np.array([float(core.edges[ends[name]]["capacity"]) for name in demands.links])
    normal = volumes @ demands.routing
    peak = float(np.max(np.quantile(normal, 0.95, axis=0) / capacity))
    volumes *= options.peak_utilisation / peak
    net = Network(core, demands, capacity, 60.0 / options.step_minutes)
    scenario = Scenario(volumes, {})
    injected = inject_all(options.anomaly_kinds, options.anomalies, net, scenario,
                          warmup=per_day, rng=rng)
    loads = _routed(scenario.volumes, demands.routing, scenario.overrides)
    utilisation = loads / capacity * (1.0 + MEASUREMENT_NOISE * rng.normal(size=loads.shape))
    utilisation = np.maximum(utilisation, 0.0)
    nodes = sorted(core.nodes)
    incidence = np.zeros((len(demands.links), len(nodes)))
    where = {n: k for k, n in enumerate(nodes)}
    for k, name in enumerate(demands.links):
        for end in ends[name]:
            incidence[k, where[end]] = 1.0
    labels = np.zeros(steps, dtype=bool)
    link_labels = np.zeros((steps, len(demands.links)), dtype=bool)
    index = {name: k for k, name in enumerate(demands.links)}
    for anomaly in injected:
        labels[anomaly.start:anomaly.end] = True
        for name in anomaly.links:
            link_labels[anomaly.start:anomaly.end, index[name]] = True
    return Telemetry(step_minutes=options.step_minutes, links=demands.links,
                     link_values=utilisation, nodes=nodes, node_values=loads @ incidence,
                     labels=labels, link_labels=link_labels, anomalies=injected,
                     source="generated")

