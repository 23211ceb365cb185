"""Traffic engineering and slice admission: penalties rank feasible above infeasible, repair,
decoding, and the real Topology Zoo backbones."""

from __future__ import annotations

import itertools
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

from qbackbone.api.problem import (
    ProblemSpec,
    SliceAdmissionProblem,
    TrafficEngineeringProblem,
)
from qbackbone.core.optimize.problem import ProblemError
from qbackbone.core.optimize.reduce import reduce_problem
from qbackbone.core.optimize.slices import SliceProblem, reduce_slices
from qbackbone.core.optimize.solve import exact_solution, refine
from qbackbone.core.optimize.traffic import TrafficProblem, reduce_traffic

TOPOLOGIES = Path(__file__).resolve().parents[2] / "examples" / "optimize" / "topologies"

SQUARE = {"links": [{"source": "a", "target": "b", "capacity": 10},
                    {"source": "b", "target": "c", "capacity": 10},
                    {"source": "a", "target": "d", "capacity": 10},
                    {"source": "d", "target": "c", "capacity": 10},
                    {"source": "b", "target": "d", "capacity": 5}]}


def square_te(demands: list[tuple[str, str, float]]) -> TrafficEngineeringProblem:
    return TrafficEngineeringProblem.model_validate({
        "topology": SQUARE,
        "demands": [{"source": s, "target": t, "volume": v} for s, t, v in demands]})


def slices() -> SliceAdmissionProblem:
    return SliceAdmissionProblem.model_validate({
        "slackBits": 2,
        "resources": [{"name": "p", "capacity": 9}, {"name": "l", "capacity": 6}],
        "slices": [{"name": "s0", "revenue": 5, "demands": {"p": 4, "l": 3}},
                   {"name": "s1", "revenue": 4, "demands": {"p": 5}},
                   {"name": "s2", "revenue": 3, "demands": {"l": 4}},
                   {"name": "s3", "revenue": 2, "demands": {"p": 2, "l": 1}}]})


def quantised_feasible(problem: TrafficProblem | SliceProblem, x: np.ndarray) -> bool:
    """Whether x meets the reduced model's constraints exactly (slack bits included)."""
    for c in problem.constraints:
        lhs = sum(a * int(x[i]) for i, a in c.coefficients.items())
        if (lhs != c.rhs) if c.equality else (lhs > c.rhs):
            return False
    return True


@pytest.mark.parametrize("build", [
    lambda: reduce_traffic(square_te([("a", "c", 6), ("b", "d", 4), ("a", "d", 3)]), None),
    lambda: reduce_slices(slices()),
])
def test_every_feasible_assignment_beats_every_infeasible_one(build) -> None:  # type: ignore[no-untyped-def]
    problem = build()
    n = problem.qubo.size
    assert 6 <= n <= 16
    xs = np.array(list(itertools.product([0, 1], repeat=n)), dtype=np.int8)
    energies = problem.qubo.energy(xs)
    feasible = np.array([quantised_feasible(problem, x) for x in xs])
    assert feasible.any() and (~feasible).any()
    assert energies[feasible].max() < energies[~feasible].min()
    # The reduced model is conservative: what it calls feasible meets the real constraints.
    for x in xs[feasible]:
        assert problem.violations(x) == []


def test_traffic_decision_is_routes_on_real_paths_within_capacity() -> None:
    problem = reduce_traffic(square_te([("a", "c", 6), ("b", "d", 4), ("a", "d", 3)]), None)
    exact = exact_solution(problem, 10.0)
    assert exact is not None and exact.proven_optimal
    best = refine(problem, exact.x)
    assert best.feasible
    routing = problem.routing_of(best.x)
    assert routing is not None
    for demand, p in zip(problem.free, routing, strict=True):
        path = demand.paths[p]
        assert path[0] in (demand.source, demand.target)
        assert nx.is_simple_path(problem.graph, path)
    # Brute force over routings (3 demands) confirms the optimum of the network objective.
    options = [range(len(d.paths)) for d in problem.free]
    feasible_costs = [problem.congestion(problem.loads(list(r)))
                      for r in itertools.product(*options)
                      if problem.overload(problem.loads(list(r))) == 0]
    assert best.objective == pytest.approx(min(feasible_costs))


def test_repair_turns_any_sample_into_a_feasible_decision() -> None:
    problem = reduce_traffic(square_te([("a", "c", 6), ("b", "d", 4), ("a", "d", 3)]), None)
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.integers(0, 2, problem.qubo.size).astype(np.int8)
        assert problem.violations(refine(problem, x).x) == []
    sliced = reduce_slices(slices())
    for _ in range(200):
        x = rng.integers(0, 2, sliced.qubo.size).astype(np.int8)
        assert sliced.violations(refine(sliced, x).x) == []


def test_infeasible_demand_is_never_reported_feasible() -> None:
    problem = reduce_traffic(square_te([("a", "c", 25)]), None)  # 25 > 10 on every path
    assert any("overloads every candidate path" in n for n in problem.notes)
    result = refine(problem, np.zeros(problem.qubo.size, dtype=np.int8))
    assert not result.feasible
    assert problem.violations(result.x)


def test_aggregation_pins_the_smallest_demands_to_fit() -> None:
    spec = square_te([("a", "c", 6), ("b", "d", 4), ("a", "d", 3), ("b", "c", 1)])
    full = reduce_traffic(spec, None)
    fitted = reduce_traffic(spec, 8)
    assert full.qubo.size > 8 >= fitted.qubo.size
    assert fitted.pinned and min(d.volume for d in fitted.pinned) == 1
    assert any("pinned to their least-loaded candidate path" in n for n in fitted.notes)


@pytest.mark.parametrize("name, demands", [
    ("Abilene", [("New York", "Los Angeles", 3000), ("Chicago", "Houston", 2500),
                 ("Seattle", "Atlanta", 2000), ("Sunnyvale", "Washington DC", 1500)]),
    ("Geant2012", [("UK", "GR", 4000), ("DE", "ES", 3000), ("FR", "AT", 3500)]),
])
def test_real_backbones_from_graphml(name: str, demands: list[tuple[str, str, float]]) -> None:
    text = (TOPOLOGIES / f"{name}.graphml").read_text()
    spec = ProblemSpec.model_validate({"trafficEngineering": {
        "topology": {"format": "graphml", "document": text, "nodeAttribute": "label",
                     "capacityAttribute": "LinkSpeedRaw", "capacityScale": 1e-6},
        "demands": [{"source": s, "target": t, "volume": v} for s, t, v in demands]}})
    problem = reduce_problem(spec, None)
    assert isinstance(problem, TrafficProblem)
    assert problem.graph.number_of_nodes() == {"Abilene": 11, "Geant2012": 40}[name]
    exact = exact_solution(problem, 20.0)
    assert exact is not None
    best = refine(problem, exact.x)
    assert best.feasible


def test_bad_problems_are_named() -> None:
    with pytest.raises(ProblemError, match="not in the topology"):
        reduce_traffic(square_te([("a", "zz", 1)]), None)
    with pytest.raises(ProblemError, match="unknown resource"):
        reduce_slices(SliceAdmissionProblem.model_validate({
            "resources": [{"name": "p", "capacity": 1}],
            "slices": [{"name": "s", "revenue": 1, "demands": {"q": 1}}]}))
    with pytest.raises(ProblemError, match="not valid graphml"):
        reduce_problem(ProblemSpec.model_validate({"trafficEngineering": {
            "topology": {"format": "graphml", "document": "<graphml"},
            "demands": [{"source": "a", "target": "b", "volume": 1}]}}), None)
