"""qbackbone run on a job wider than every QPU: decomposed on the QPUs at the regions' sites,
verified against an exhaustive optimum computed here from the links and demands alone."""

from __future__ import annotations

import itertools
import json
from typing import Any

import networkx as nx
import pytest

from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import make_qpu
from tests.decomposition.builders import te_spec

FLEET = build_fleet([make_qpu("qpu-s0", qubits=8, site="s0"),
                     make_qpu("qpu-s1", qubits=8, site="s1"),
                     make_qpu("nairobi", provider="fake", backend="fake_nairobi", site="s2")])


def _job(spec: dict[str, Any], mode: str = "SingleQPU") -> QuantumJob:
    return QuantumJob.model_validate({"metadata": {"name": "te"}, "spec": {
        "execution": {"mode": mode}, "shots": 500,
        "problem": {"trafficEngineering": spec}}})


def _policies(enabled: bool = True) -> dict[str, InvocationPolicy]:
    return {"default": InvocationPolicy.model_validate({
        "metadata": {"name": "default"},
        "spec": {"optimization": {"exactTimeLimitSeconds": 5, "decomposition": {
            "enabled": enabled, "maxRegionVariables": 6, "iterations": 4}}}})}


def _congestion(graph: nx.Graph, routes: list[tuple[float, list[str]]]) -> tuple[float, float]:
    """(overload, congestion) from routes: computed here, not by the library."""
    load: dict[frozenset[str], float] = {}
    for volume, path in routes:
        for a, b in itertools.pairwise(path):
            assert graph.has_edge(a, b)
            load[frozenset((a, b))] = load.get(frozenset((a, b)), 0.0) + volume
    over = sum(max(0.0, v - graph.edges[tuple(e)]["capacity"]) for e, v in load.items())
    return over, sum((v / graph.edges[tuple(e)]["capacity"]) ** 2 for e, v in load.items())


def _exhaustive(graph: nx.Graph, demands: list[dict[str, Any]]) -> float:
    """The best congestion over every choice of the 3 shortest paths (stretch 2) per pair."""
    volume: dict[tuple[str, str], float] = {}
    for d in demands:
        pair = tuple(sorted((d["source"], d["target"])))
        volume[pair] = volume.get(pair, 0.0) + d["volume"]  # type: ignore[index]
    options = []
    for (s, t), v in volume.items():
        paths = list(itertools.islice(nx.shortest_simple_paths(graph, s, t), 3))
        options.append([(v, p) for p in paths if len(p) - 1 <= 2 * (len(paths[0]) - 1)])
    best = float("inf")
    for combo in itertools.product(*options):
        over, congestion = _congestion(graph, list(combo))
        if over <= 1e-9:
            best = min(best, congestion)
    return best


@pytest.fixture(scope="module")
def decomposed() -> tuple[dict[str, Any], QuantumJobStatus]:
    spec = te_spec(12, 3)
    return spec, run_job(_job(spec), FLEET, _policies(), seed=1)


def test_the_job_runs_decomposed_on_the_qpus_of_each_site(decomposed: tuple) -> None:
    _, status = decomposed
    assert status.phase == "Succeeded", status.conditions
    assert status.decision is not None and status.decision.path == "Distributed"
    result = status.result
    assert result is not None and result.path == "Distributed"
    report = result.decomposition
    assert report is not None
    assert report.whole_variables > 8 and report.width == 6
    assert report.region_source == "attribute"
    assert [r.name for r in report.regions] == ["s0", "s1", "s2"]
    for region in report.regions[:2]:  # the ideal QPU at the region's own site solved it
        assert region.subproblems > 0 and region.paths == ["SingleQPU"]
        assert region.qpus == [f"qpu-{region.name}"] and region.solvers == ["qaoa"]
    noisy = report.regions[2]  # the noisy QPU at s2 sampled it, readout-mitigated
    assert noisy.qpus == ["nairobi"] and noisy.noisy and noisy.mitigation == [
        "nairobi: readout (M3)"]
    assert status.verification is not None and status.verification.noisy
    assert report.qpu_calls == sum(r.subproblems for r in report.regions
                                   if r.paths == ["SingleQPU"])
    assert report.rounds and report.rounds[0].overload_before > 0
    assert report.reconciled_overload == 0 or report.final_congestion <= \
        report.reconciled_congestion
    assert report.cp_sat is not None and report.cp_sat.proven


def test_the_decision_is_feasible_and_near_the_exhaustive_optimum(decomposed: tuple) -> None:
    spec, status = decomposed
    graph = nx.Graph()
    for link in json.loads(spec["topology"]["document"])["links"]:
        graph.add_edge(link["source"], link["target"], capacity=link["capacity"])
    solution = status.result.solution
    assert solution.feasible and status.verification.passed
    routed: dict[tuple[str, str], float] = {}
    for r in solution.routes:
        assert {r.path[0], r.path[-1]} == {r.source, r.target}
        pair = tuple(sorted((r.source, r.target)))
        routed[pair] = routed.get(pair, 0.0) + r.volume
    asked: dict[tuple[str, str], float] = {}
    for d in spec["demands"]:
        pair = tuple(sorted((d["source"], d["target"])))
        asked[pair] = asked.get(pair, 0.0) + d["volume"]
    assert routed == asked
    over, congestion = _congestion(graph, [(r.volume, r.path) for r in solution.routes])
    assert over == 0
    assert congestion == pytest.approx(solution.objective, abs=1e-6)
    best = _exhaustive(graph, spec["demands"])
    assert best <= congestion + 1e-9
    assert best / congestion >= 0.9


@pytest.mark.parametrize(("enabled", "mode"), [(False, "SingleQPU"), (True, "Classical")])
def test_not_decomposed_when_disabled_or_classical(enabled: bool, mode: str) -> None:
    status = run_job(_job(te_spec(12, 3), mode), FLEET, _policies(enabled), seed=1)
    assert status.result is None or status.result.decomposition is None
    assert status.decision is not None and status.decision.path != "Distributed"
