"""Problem jobs end to end: reduce, QIP, QAOA or classical, repair, verify; the examples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from qbackbone.api.common import ObjectMeta
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet, default_fleet_nodes
from tests.conftest import make_qpu

REPO = Path(__file__).resolve().parents[2]
IDEAL = build_fleet([make_qpu("ideal", qubits=16)])
SQUARE_TE: dict[str, Any] = {"trafficEngineering": {
    "topology": {"links": [{"source": "a", "target": "b", "capacity": 10},
                           {"source": "b", "target": "c", "capacity": 10},
                           {"source": "a", "target": "d", "capacity": 10},
                           {"source": "d", "target": "c", "capacity": 10},
                           {"source": "b", "target": "d", "capacity": 5}]},
    "demands": [{"source": "a", "target": "c", "volume": 6},
                {"source": "b", "target": "d", "volume": 4},
                {"source": "a", "target": "d", "volume": 3}]}}


def problem_job(problem: dict[str, Any], **spec: Any) -> QuantumJob:
    return QuantumJob.model_validate({"metadata": {"name": "p"},
                                      "spec": {"problem": problem, **spec}})


def policy(**optimization: Any) -> dict[str, InvocationPolicy]:
    return {"default": InvocationPolicy(metadata=ObjectMeta(name="default", generation=3),
                                        spec={"optimization": optimization})}


def rule(status: Any, name: str) -> Any:
    return next(r for r in status.decision.rules if r.name == name)


def test_quantum_path_samples_qaoa_and_reports_a_feasible_optimal_routing() -> None:
    status = run_job(problem_job(SQUARE_TE, execution={"mode": "SingleQPU"}, shots=2000),
                     IDEAL, {}, seed=5)
    assert status.phase == "Succeeded", status.conditions
    assert status.decision is not None and status.decision.path == "SingleQPU"
    assert status.decision.features["variables"] == 13
    solution = status.result.solution  # type: ignore[union-attr]
    assert solution is not None and solution.solver == "qaoa" and solution.feasible
    assert solution.samples == 2000
    assert solution.feasible_fraction_after_repair == 1.0
    assert 0 < solution.feasible_fraction_before_repair < 1  # raw QAOA samples break constraints
    assert solution.optimum_proven and solution.approximation_ratio == pytest.approx(1.0)
    assert [r.path for r in solution.routes] == [["a", "b", "c"], ["b", "d"], ["a", "d"]]
    assert status.verification.method == "OperationalConstraints"  # type: ignore[union-attr]
    assert status.result.method.startswith("qaoa(p=2")  # type: ignore[union-attr]


def test_auto_goes_classical_when_the_exact_solver_proves_the_optimum_quickly() -> None:
    status = run_job(problem_job(SQUARE_TE), IDEAL, policy(), seed=1)
    assert status.phase == "Succeeded"
    assert status.decision.path == "Classical"  # type: ignore[union-attr]
    assert status.decision.policy_generation == 3  # type: ignore[union-attr]
    assert not rule(status, "classicalNotProvenQuickly").passed
    assert "proved the optimum" in status.decision.message  # type: ignore[union-attr]
    solution = status.result.solution  # type: ignore[union-attr]
    assert solution.optimum_proven and solution.approximation_ratio == 1.0


def test_a_problem_larger_than_the_policy_allows_goes_classical() -> None:
    te = json.loads(json.dumps(SQUARE_TE))
    te["trafficEngineering"]["aggregateToFit"] = False
    status = run_job(problem_job(te, execution={"mode": "SingleQPU"}), IDEAL,
                     policy(maxVariables=6), seed=1)
    assert status.phase == "Succeeded"
    assert status.decision.path == "Classical"  # type: ignore[union-attr]
    assert not rule(status, "variablesAtMost").passed
    assert "exceed the policy's maxVariables (6)" in status.decision.message  # type: ignore[union-attr]


def test_aggregation_fits_the_policy_and_pins_demands() -> None:
    status = run_job(problem_job(SQUARE_TE, execution={"mode": "SingleQPU"}, shots=1000),
                     IDEAL, policy(maxVariables=9), seed=2)
    assert status.phase == "Succeeded"
    solution = status.result.solution  # type: ignore[union-attr]
    assert solution.variables <= 9
    assert any(r.pinned for r in solution.routes)


def test_no_qpu_fits_the_qaoa_circuit_so_the_qubo_is_solved_classically() -> None:
    small = build_fleet([make_qpu("tiny", qubits=4)])
    status = run_job(problem_job(SQUARE_TE, execution={"mode": "SingleQPU"}), small, {}, seed=1)
    assert status.phase == "Succeeded"
    assert status.decision.path == "Classical"  # type: ignore[union-attr]
    # A requested SingleQPU the QAOA circuit cannot have is refused by the QIP; the problem
    # path then solves the QUBO classically (problem jobs always have that fallback).
    assert "refused the QAOA circuit" in status.decision.message  # type: ignore[union-attr]
    assert not rule(status, "qubitsFit").passed
    assert status.result.solution.feasible  # type: ignore[union-attr]


def test_slice_admission_admits_the_best_subset_that_fits() -> None:
    problem = {"sliceAdmission": {
        "slackBits": 2,
        "resources": [{"name": "p", "capacity": 9}, {"name": "l", "capacity": 6}],
        "slices": [{"name": "s0", "revenue": 5, "demands": {"p": 4, "l": 3}},
                   {"name": "s1", "revenue": 4, "demands": {"p": 5}},
                   {"name": "s2", "revenue": 3, "demands": {"l": 4}},
                   {"name": "s3", "revenue": 2, "demands": {"p": 2, "l": 1}}]}}
    status = run_job(problem_job(problem, execution={"mode": "SingleQPU"}, shots=1000),
                     IDEAL, {}, seed=4)
    solution = status.result.solution  # type: ignore[union-attr]
    assert status.phase == "Succeeded" and solution.feasible
    # Brute force over the 16 subsets: s0 + s1 earn 9 and fit (p 9/9, l 3/6).
    assert solution.objective == 9 and solution.objective_sense == "maximize"
    assert solution.admitted == ["s0", "s1"]


def test_ising_qubo_reaches_the_maxcut_optimum() -> None:
    edges = [(0, 1), (1, 2), (2, 3), (3, 0), (0, 2)]
    problem = {"qubo": {"form": "ising", "quadratic": [
        {"i": f"v{i}", "j": f"v{j}", "value": 1} for i, j in edges]}}
    status = run_job(problem_job(problem), IDEAL, {}, seed=1)
    solution = status.result.solution  # type: ignore[union-attr]
    assert solution.objective == -3  # 4 of 5 edges cut: -4 + 1
    assert solution.feasible and solution.approximation_ratio == 1.0


def test_an_infeasible_problem_fails_and_is_never_reported_as_success() -> None:
    te = json.loads(json.dumps(SQUARE_TE))
    te["trafficEngineering"]["demands"] = [{"source": "a", "target": "c", "volume": 25}]
    status = run_job(problem_job(te), IDEAL, {}, seed=1)
    assert status.phase == "Failed"
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert failed.reason == "InfeasibleDecision" and "over capacity" in failed.message
    assert status.verification is not None and not status.verification.passed


def test_an_invalid_problem_fails_with_its_reason() -> None:
    te = json.loads(json.dumps(SQUARE_TE))
    te["trafficEngineering"]["demands"][0]["target"] = "nowhere"
    status = run_job(problem_job(te), IDEAL, {}, seed=1)
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert failed.reason == "InvalidProblem" and "'nowhere'" in failed.message


def test_the_spec_takes_a_circuit_or_a_problem_not_both() -> None:
    with pytest.raises(ValidationError, match=r"exactly one of spec\.circuit or spec\.problem"):
        QuantumJob.model_validate({"metadata": {"name": "x"}, "spec": {
            "problem": SQUARE_TE, "circuit": {"qasm": "OPENQASM 2.0;", "sampling": True}}})
    with pytest.raises(ValidationError, match="exactly one of qubo, trafficEngineering"):
        QuantumJob.model_validate({"metadata": {"name": "x"}, "spec": {"problem": {}}})


def test_noisy_qpu_path_is_verified_by_constraints_and_marked_noisy() -> None:
    fleet = [q for q in build_fleet(default_fleet_nodes()) if q.name == "torino"]
    problem = {"sliceAdmission": {
        "slackBits": 1,
        "resources": [{"name": "p", "capacity": 6}],
        "slices": [{"name": f"s{k}", "revenue": 1 + k, "demands": {"p": 2 + k}}
                   for k in range(4)]}}
    status = run_job(problem_job(problem, execution={"mode": "SingleQPU"}, shots=1000),
                     fleet, policy(qaoaLayers=1), seed=3)
    assert status.phase == "Succeeded", [c.message for c in status.conditions]
    assert status.result.qpus == ["torino"]  # type: ignore[union-attr]
    assert status.verification.noisy  # type: ignore[union-attr]
    assert status.result.solution.feasible  # type: ignore[union-attr]


def test_examples_run_through_the_cli() -> None:
    proc = subprocess.run([sys.executable, "-m", "qbackbone.cli.main", "run",
                           "examples/optimize/",
                           "-o", "json", "--seed", "7"], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    jobs = {j["metadata"]["name"]: j["status"] for j in json.loads(proc.stdout)["items"]}
    assert set(jobs) == {"te-abilene", "te-small", "slices-edge", "maxcut-ring"}
    for status in jobs.values():
        assert status["phase"] == "Succeeded"
        assert status["result"]["solution"]["feasible"]
    abilene = jobs["te-abilene"]["result"]["solution"]
    assert len(abilene["routes"]) == 10 and abilene["maxUtilisation"] <= 1.0
    assert jobs["te-small"]["decision"]["path"] == "SingleQPU"
    assert "route a->c" in proc.stderr and "admitted:" in proc.stderr
