"""Regions: from site attributes (unlabelled nodes join the nearest site), else a partition."""

from __future__ import annotations

import networkx as nx
import pytest

from qbackbone.core.optimize.decompose.regions import (
    anchor,
    crosses_border,
    demand_weights,
    home_regions,
    make_regions,
    partition_regions,
    regions_from_attribute,
)
from qbackbone.core.optimize.traffic import reduce_traffic
from tests.decomposition.builders import te_problem


def test_sites_name_the_regions_and_unlabelled_nodes_join_the_nearest() -> None:
    graph = nx.path_graph(["a", "b", "c", "d", "e"])
    nx.set_node_attributes(graph, {"a": "west", "e": "east"}, "site")
    regions = regions_from_attribute(graph, "site")
    assert regions is not None
    by_name = {r.name: r.nodes for r in regions}
    assert by_name["west"] >= {"a", "b"} and by_name["east"] >= {"d", "e"}
    assert by_name["west"] | by_name["east"] == set(graph.nodes)
    assert not by_name["west"] & by_name["east"]
    assert all(r.site == r.name and r.origin == "attribute" for r in regions)
    assert regions_from_attribute(graph, "country") is None


def test_the_topology_document_keeps_its_site_attribute() -> None:
    whole = reduce_traffic(te_problem(12, 3), None)
    regions = make_regions(whole.graph, whole.free, 8, "site")
    assert [r.name for r in regions] == ["s0", "s1", "s2"]
    assert all(len(r.nodes) == 4 for r in regions)


@pytest.mark.parametrize("count", [2, 3, 5])
def test_a_partition_covers_every_node_once_and_balances_the_weight(count: int) -> None:
    graph = nx.grid_2d_graph(6, 6)
    graph = nx.relabel_nodes(graph, {n: f"{n[0]}-{n[1]}" for n in graph.nodes})
    weight = {n: 1.0 for n in graph.nodes}
    regions = partition_regions(graph, weight, count, seed=1)
    assert len(regions) == count
    seen = [n for r in regions for n in r.nodes]
    assert sorted(seen) == sorted(graph.nodes)
    sizes = sorted(len(r.nodes) for r in regions)
    assert sizes[-1] <= 2.5 * 36 / count  # recursive halving: within a factor of the mean
    for r in regions:  # every region is a connected piece of a grid
        assert nx.is_connected(graph.subgraph(r.nodes))


def test_without_sites_the_partition_is_sized_to_the_width() -> None:
    whole = reduce_traffic(te_problem(16, 5, with_sites=False, capacity=16), None)
    weights = demand_weights(whole.free)
    total = sum(weights.values())
    regions = make_regions(whole.graph, whole.free, 8, "site")
    assert all(r.origin == "partition" for r in regions)
    assert len(regions) == min(-(-int(total) // 8), whole.graph.number_of_nodes())
    homes = home_regions(regions, whole.free)
    for d, h in zip(whole.free, homes, strict=True):
        assert anchor(d) in regions[h].nodes
        assert anchor(d) in d.paths[0]
    assert any(crosses_border(regions[h], d) for d, h in zip(whole.free, homes, strict=True))
