"""Slice admission decomposed by region: qbackbone run on a problem wider than every QPU,
checked against capacities and revenue recomputed here from the spec alone, and against a
CP-SAT model written here (not the library's) given the decomposed run's time."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from ortools.sat.python import cp_model

from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.problem import SliceAdmissionProblem
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus
from qbackbone.core.optimize.decompose import (
    ClassicalBlockSolver,
    Settings,
    SliceDecomposition,
    check_admission,
    decompose_and_solve,
)
from qbackbone.core.optimize.decompose.base import apply
from qbackbone.core.optimize.decompose.reconcile import propose, reconcile, update_prices
from qbackbone.core.optimize.slices import reduce_slices
from qbackbone.core.optimize.topology import load_topology
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import make_qpu
from tests.decomposition.builders import slice_spec

FLEET = build_fleet([make_qpu("qpu-s0", qubits=8, site="s0"),
                     make_qpu("qpu-s1", qubits=8, site="s1"),
                     make_qpu("nairobi", provider="fake", backend="fake_nairobi", site="s2")])
MARGIN = 0.9  # the decomposed revenue is at least 90 % of CP-SAT's in the same time


def _job(spec: dict[str, Any], mode: str = "SingleQPU") -> QuantumJob:
    return QuantumJob.model_validate({"metadata": {"name": "slices"}, "spec": {
        "execution": {"mode": mode}, "shots": 500, "problem": {"sliceAdmission": spec}}})


def _policies(enabled: bool = True, exact: float = 5) -> dict[str, InvocationPolicy]:
    return {"default": InvocationPolicy.model_validate({
        "metadata": {"name": "default"},
        "spec": {"optimization": {"exactTimeLimitSeconds": exact, "decomposition": {
            "enabled": enabled, "maxRegionVariables": 6, "iterations": 4}}}})}


def _recheck(spec: dict[str, Any], admitted: list[str], rejected: list[str]) -> float:
    """Every request decided once and every capacity held, from the spec's numbers alone;
    the revenue earned."""
    names = [s["name"] for s in spec["slices"]]
    assert sorted(admitted + rejected) == sorted(names)
    used: dict[str, float] = {}
    chosen = [s for s in spec["slices"] if s["name"] in set(admitted)]
    for s in chosen:
        for resource, amount in s["demands"].items():
            used[resource] = used.get(resource, 0.0) + amount
    capacity = {r["name"]: r["capacity"] for r in spec["resources"]}
    for resource, amount in used.items():
        assert amount <= capacity[resource] + 1e-9, resource
    return float(sum(s["revenue"] for s in chosen))


def _cp_sat(spec: dict[str, Any], seconds: float) -> tuple[float, bool]:
    """The best revenue a plain CP-SAT knapsack model finds in `seconds`, and whether proven."""
    model = cp_model.CpModel()
    x = [model.new_bool_var(s["name"]) for s in spec["slices"]]
    for r in spec["resources"]:
        terms = [(round(s["demands"][r["name"]] * 1000), v)
                 for s, v in zip(spec["slices"], x, strict=True) if r["name"] in s["demands"]]
        if terms:
            model.add(sum(a * v for a, v in terms) <= round(r["capacity"] * 1000))
    model.maximize(sum(round(s["revenue"]) * v for s, v in zip(spec["slices"], x, strict=True)))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = seconds
    solver.parameters.num_workers = 2
    status = solver.solve(model)
    assert status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
    return solver.objective_value, status == cp_model.OPTIMAL


@pytest.fixture(scope="module")
def decomposed() -> tuple[dict[str, Any], QuantumJobStatus]:
    spec = slice_spec(24, 1)
    spec["slices"].append({"name": "too-big", "revenue": 50.0,
                           "demands": {"pop-r0n0": 11.0, "r0n0--r0n1": 1.0}})
    return spec, run_job(_job(spec), FLEET, _policies(), seed=1)


def test_the_job_runs_decomposed_on_the_qpus_of_each_site(decomposed: tuple) -> None:
    _, status = decomposed
    assert status.phase == "Succeeded", status.conditions
    assert status.decision is not None and status.decision.path == "Distributed"
    assert status.result is not None and status.result.path == "Distributed"
    report = status.result.decomposition
    assert report is not None and report.kind == "sliceAdmission"
    assert report.whole_variables > 8 and report.width == 6
    assert report.region_source == "attribute"
    assert [r.name for r in report.regions] == ["s0", "s1", "s2"]
    assert sum(r.demands for r in report.regions) == 25
    for region in report.regions[:2]:
        assert region.subproblems > 0 and region.paths == ["SingleQPU"]
        assert region.qpus == [f"qpu-{region.name}"] and region.solvers == ["qaoa"]
        assert region.max_variables <= 6
    noisy = report.regions[2]  # the noisy QPU at s2, or classical where the QIP says so
    assert noisy.qpus == ["nairobi"] and noisy.noisy and "SingleQPU" in noisy.paths
    assert report.qpu_calls + report.classical_calls == sum(r.subproblems
                                                            for r in report.regions)
    assert report.qpu_calls >= report.regions[0].subproblems + report.regions[1].subproblems
    assert report.rounds and report.rounds[0].revenue_before == 0
    assert report.rounds[0].congestion_before is None and report.final_congestion is None
    assert report.initial_revenue == 0 and report.final_revenue is not None
    assert report.final_revenue >= report.reconciled_revenue > 0
    assert report.border_resources  # the links between rings are shared by two sites
    assert all("--" in r for r in report.border_resources)
    assert report.cp_sat is not None and report.cp_sat.ratio is not None
    assert report.load_check.startswith("passed")


def test_an_unservable_request_is_rejected_with_its_reason(decomposed: tuple) -> None:
    _, status = decomposed
    report = status.result.decomposition
    assert report.unservable == ["slice 'too-big' needs pop-r0n0 11 of capacity 10: it cannot "
                                 "be admitted"]
    assert "too-big" in status.result.solution.rejected


def test_the_decision_is_feasible_and_near_cp_sat_in_the_same_time(decomposed: tuple) -> None:
    spec, status = decomposed
    solution = status.result.solution
    assert solution.feasible and status.verification.passed
    revenue = _recheck(spec, solution.admitted, solution.rejected)
    assert revenue == pytest.approx(solution.objective)
    assert revenue == pytest.approx(status.result.decomposition.final_revenue)
    best, _ = _cp_sat(spec, max(1.0, status.result.decomposition.seconds))
    assert revenue >= MARGIN * best


@pytest.mark.parametrize(("enabled", "mode"), [(False, "SingleQPU"), (True, "Classical")])
def test_not_decomposed_when_disabled_or_classical(enabled: bool, mode: str) -> None:
    status = run_job(_job(slice_spec(24, 1), mode), FLEET, _policies(enabled), seed=1)
    assert status.result is None or status.result.decomposition is None
    assert status.decision is not None and status.decision.path != "Distributed"


def test_a_problem_that_fits_a_qpu_is_not_decomposed() -> None:
    spec = slice_spec(4, 2, slack_bits=1)
    assert reduce_slices(SliceAdmissionProblem.model_validate(spec)).qubo.size <= 8
    status = run_job(_job(spec), FLEET, _policies(), seed=1)
    assert status.phase == "Succeeded", status.conditions
    assert status.decision.path == "SingleQPU" and status.result.decomposition is None


def test_a_single_region() -> None:
    spec = slice_spec(16, 3, sites=1)
    status = run_job(_job(spec), FLEET, _policies(exact=0), seed=2)
    assert status.phase == "Succeeded", status.conditions
    report = status.result.decomposition
    assert [r.name for r in report.regions] == ["s0"] and report.border_resources == []
    assert report.regions[0].qpus == ["qpu-s0"] and report.regions[0].demands == 16
    assert report.cp_sat is None  # exactTimeLimitSeconds 0: no reference
    _recheck(spec, status.result.solution.admitted, status.result.solution.rejected)


def test_a_region_with_no_requests() -> None:
    spec = slice_spec(16, 4, request_rings=2)
    status = run_job(_job(spec), FLEET, _policies(exact=0), seed=3)
    assert status.phase == "Succeeded", status.conditions
    empty = status.result.decomposition.regions[2]
    assert (empty.name, empty.demands, empty.subproblems, empty.qpus) == ("s2", 0, 0, [])
    _recheck(spec, status.result.solution.admitted, status.result.solution.rejected)


def test_a_resource_the_topology_cannot_place_fails_the_job_clearly() -> None:
    spec = slice_spec(24, 1)
    spec["resources"].append({"name": "pop-atlantis", "capacity": 5})
    spec["slices"][0]["demands"]["pop-atlantis"] = 1.0
    status = run_job(_job(spec), FLEET, _policies(), seed=1)
    assert status.phase == "Failed"
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert failed.reason == "InvalidProblem"
    assert "pop-atlantis name no node of the topology" in failed.message


def _whole(spec: dict[str, Any]) -> SliceDecomposition:
    model = SliceAdmissionProblem.model_validate(spec)
    graph = None if model.topology is None else load_topology(model.topology)
    return SliceDecomposition(reduce_slices(model), graph)


@pytest.mark.parametrize(("count", "seed", "with_sites"),
                         [(24, 1, True), (40, 2, True), (40, 5, False), (60, 3, False)])
def test_classical_blocks_reach_cp_sat_within_the_margin(count: int, seed: int,
                                                         with_sites: bool) -> None:
    spec = slice_spec(count, seed, with_sites=with_sites)
    if not with_sites:  # no topology either: regions from the resource names alone
        del spec["topology"]
    whole = _whole(spec)
    regions = whole.regions(8, "site")
    assert len(regions) >= 2
    assert {r.origin for r in regions} == {"attribute" if with_sites else "partition"}
    outcome = decompose_and_solve(whole, regions, ClassicalBlockSolver(1.0),
                                  Settings(8, 6, 60))
    assert all(b.variables <= 8 for b in outcome.blocks)
    for r in outcome.rounds:  # reconciliation never makes the whole decision worse
        assert r.after <= r.before and r.after[0] == 0
    admitted = [spec["slices"][k]["name"] for k, v in enumerate(outcome.routing) if v]
    rejected = [spec["slices"][k]["name"] for k, v in enumerate(outcome.routing) if not v]
    revenue = _recheck(spec, admitted, rejected)
    assert revenue == -outcome.final[1]
    best, proven = _cp_sat(spec, 20.0)
    assert proven and revenue <= best + 1e-9
    assert revenue >= MARGIN * best


def test_the_sub_problem_is_the_whole_problem_with_the_rest_fixed() -> None:
    spec = slice_spec(30, 6)
    whole = _whole(spec)
    regions = whole.regions(8, "site")
    homes = whole.homes(regions)
    rng = np.random.default_rng(0)
    state = whole.initial()
    for k in rng.permutation(whole.units):  # a random feasible state to start from
        trial = apply(state, {int(k): 1})
        if not whole.overloaded(trial):
            state = trial
    capacity = {r["name"]: r["capacity"] for r in spec["resources"]}
    blocked_by_others = 0  # combos that fit the capacities alone, not with the rest admitted
    for region in sorted(set(homes)):
        members = [k for k, h in enumerate(homes) if h == region]
        for b, block in enumerate(whole.blocks(members, state, {}, 8)):
            sub = whole.subproblem(region, b, block, state, {}, 8)
            assert sub.variables <= 8
            for combo in itertools.product((0, 1), repeat=len(block)):
                x = sub.problem.encode([p for p, v in enumerate(combo) if v])
                moved = apply(state, sub.moves(whole, x, state))
                assert [moved[k] for k in block] == list(combo)
                sub_ok = not sub.problem.violations(x)
                whole_ok = not whole.problem.violations(whole.encode(moved))
                assert sub_ok == whole_ok
                alone: dict[str, float] = {}
                for k, v in zip(block, combo, strict=True):
                    for r, a in spec["slices"][k]["demands"].items():
                        alone[r] = alone.get(r, 0.0) + a * v
                blocked_by_others += all(v <= capacity[r] for r, v in alone.items()) \
                    and not whole_ok
                assert -whole.score(moved)[1] == pytest.approx(
                    sub.problem.objective(x) + sum(spec["slices"][k]["revenue"] for k, v
                                                   in enumerate(state) if v and k not in block))
    assert blocked_by_others > 0  # the other admitted requests' use is what limits the block


def test_reconciliation_keeps_one_of_two_requests_that_collide_on_a_border_link() -> None:
    spec = {"resources": [{"name": "pop-a", "capacity": 10}, {"name": "pop-b", "capacity": 10},
                          {"name": "a--b", "capacity": 10}],
            "slices": [{"name": "left", "revenue": 5, "demands": {"pop-a": 2, "a--b": 7}},
                       {"name": "right", "revenue": 4, "demands": {"pop-b": 2, "a--b": 6}}]}
    whole = _whole(spec)
    state = whole.initial()
    proposals = [propose(whole, state, k, {k: 1}) for k in range(2)]
    outcome = reconcile(whole, state, proposals)
    assert outcome.merged[0] > 0  # both admitted overflow a--b
    assert outcome.strategy == "greedy" and outcome.accepted == [0]
    assert outcome.routing == [1, 0] and outcome.score == (0.0, -5.0)
    prices = update_prices(whole, state, proposals, {})
    assert set(prices) == {"a--b"} and prices["a--b"] == pytest.approx(1.5)
    check = check_admission(SliceAdmissionProblem.model_validate(spec), ["left", "right"], [])
    assert check.violations == ["a--b uses 13 of capacity 10"] and math.isclose(check.revenue, 9)
