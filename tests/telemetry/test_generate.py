"""The telemetry generator: reproducible, routed as stated, anomalies labelled where injected."""

from __future__ import annotations

import itertools
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from qbackbone.api.problem import Topology
from qbackbone.core.optimize.topology import link_name, load_topology
from qbackbone.core.telemetry.generate import GeneratorOptions, generate
from qbackbone.core.telemetry.traffic import node_profiles, shortest_path

ZOO = Path(__file__).resolve().parents[2] / "examples" / "optimize" / "topologies"


def abilene() -> nx.Graph:
    text = (ZOO / "Abilene.graphml").read_text()
    return load_topology(Topology(document=text, format="graphml", node_attribute="label"))


def ring(n: int = 6) -> nx.Graph:
    graph = nx.cycle_graph([f"n{k}" for k in range(n)])
    nx.set_edge_attributes(graph, 100.0, "capacity")
    return graph


def test_same_seed_same_telemetry_other_seed_differs() -> None:
    a = generate(abilene(), GeneratorOptions(seed=3, days=3))
    b = generate(abilene(), GeneratorOptions(seed=3, days=3))
    c = generate(abilene(), GeneratorOptions(seed=4, days=3))
    assert np.array_equal(a.link_values, b.link_values)
    assert [x.model_dump() for x in a.anomalies] == [x.model_dump() for x in b.anomalies]
    assert not np.allclose(a.link_values, c.link_values)


def test_shape_scale_and_labels() -> None:
    options = GeneratorOptions(seed=1, days=7, anomalies=5)
    tel = generate(abilene(), options)
    assert tel.link_values.shape == (7 * 24, 14)
    assert tel.node_values.shape == (7 * 24, 11)
    normal = tel.link_values[~tel.labels]
    # the busiest link's 95th percentile is scaled to peak_utilisation (noise aside)
    assert np.max(np.quantile(normal, 0.95, axis=0)) == pytest.approx(0.6, abs=0.06)
    assert [a.kind for a in tel.anomalies] == ["linkFailure", "volumetricSurge", "flashCrowd",
                                               "routeFlap", "slowDrift"]
    expected = np.zeros(tel.steps, dtype=bool)
    for a in tel.anomalies:
        assert 24 <= a.start < a.end <= tel.steps and a.links
        expected[a.start:a.end] = True
    assert np.array_equal(tel.labels, expected)


def test_link_failure_empties_the_link_and_reroutes() -> None:
    tel = generate(abilene(), GeneratorOptions(seed=2, days=4, anomalies=1, noise=0.0,
                                               anomaly_kinds=("linkFailure",)))
    failure = tel.anomalies[0]
    failed = failure.detail.split(" fails")[0]
    k = tel.links.index(failed)
    assert np.all(tel.link_values[failure.start:failure.end, k] == 0.0)
    assert np.all(tel.link_values[:failure.start, k] > 0.0)
    assert failed in failure.links and len(failure.links) > 1


def test_daily_and_weekly_seasonality() -> None:
    hours = np.arange(24 * 14, dtype=float)
    profile = node_profiles(hours, np.zeros(1), 0.0)[:, 0]
    assert np.argmax(profile[:24]) == 20  # peak at 20:00 local
    assert profile[24 * 5 + 20] == pytest.approx(0.72 * profile[20])  # Saturday
    grown = node_profiles(hours, np.zeros(1), 0.1)[:, 0]
    assert grown[168 + 20] / grown[20] == pytest.approx(1.1 * profile[168 + 20] / profile[20])


def test_loads_are_demands_routed_on_shortest_paths() -> None:
    graph = ring(7)
    tel = generate(graph, GeneratorOptions(seed=0, days=2, anomalies=0, noise=0.0,
                                           max_endpoints=2))
    # two PoPs, one demand: the loaded links are exactly one shortest path between two nodes,
    # all with the same utilisation (equal capacities; 1 % measurement noise)
    row = tel.link_values[0]
    loaded = [name for name, v in zip(tel.links, row, strict=True) if v > 0]
    sub = nx.Graph([name.split("--") for name in loaded])
    ends = [n for n in sub.nodes if sub.degree(n) == 1]
    assert nx.is_connected(sub) and len(ends) == 2
    path = shortest_path(graph, min(ends), max(ends))
    assert set(loaded) == {link_name(u, v) for u, v in itertools.pairwise(path)}
    assert len(path) - 1 == nx.shortest_path_length(graph, *ends)
    values = row[row > 0]
    assert np.allclose(values, values.mean(), rtol=0.05)
