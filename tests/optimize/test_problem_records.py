"""What the operator stores for problem jobs: topology inlined from ConfigMaps, the classical
solver pod's input and result, and an exact replay of the recorded decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.pipeline import decide_problem, finish_problem_classically, start_job
from qbackbone.core.pipeline.optimize import (
    classical_time_limit,
    shortcut_outcome,
    solve_problem_spec,
)
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.k8s.builders import JobRef
from qbackbone.k8s.problem import (
    inline_topology,
    problem_input_data,
    problem_result_data,
    problem_solution,
)
from tests.conftest import make_qpu

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "optimize"
FLEET = build_fleet([make_qpu("ideal", qubits=16)])


def abilene() -> tuple[dict, dict[str, dict[str, str]], InvocationPolicy]:  # type: ignore[type-arg]
    docs = list(yaml.safe_load_all((EXAMPLES / "traffic-abilene.yaml").read_text()))
    cm = yaml.safe_load((EXAMPLES / "abilene-topology.yaml").read_text())
    policy = InvocationPolicy.model_validate(docs[0])
    return docs[1], {cm["metadata"]["name"]: cm["data"]}, policy


def test_inlining_replaces_the_configmap_ref_with_the_document() -> None:
    body, maps, _ = abilene()
    inlined = inline_topology(body, lambda n, k: maps[n][k])
    topology = inlined["spec"]["problem"]["trafficEngineering"]["topology"]
    assert "configMapRef" not in topology and topology["document"].startswith("<?xml")
    assert "configMapRef" in body["spec"]["problem"]["trafficEngineering"]["topology"]
    with pytest.raises(KeyError):
        inline_topology(body, lambda n, k: maps["missing"][k])


def test_classical_pod_round_trip_gives_the_same_verified_answer() -> None:
    body, maps, policy = abilene()
    recorded = inline_topology(body, lambda n, k: maps[n][k])
    job = QuantumJob.model_validate(recorded)
    decided = decide_problem(start_job(job), FLEET, {policy.metadata.name: policy}, seed=1)
    assert decided.path == "Classical"
    data = problem_input_data(JobRef("te-abilene", "ns", "uid"), "te-abilene-classical",
                              recorded, policy.model_dump(mode="json", by_alias=True), 1,
                              classical_time_limit(decided))
    # What the worker pod does with that input:
    raw = solve_problem_spec(QuantumJob.model_validate(json.loads(data["job.json"])),
                             InvocationPolicy.model_validate(json.loads(data["policy.json"])),
                             json.loads(data["seed"]), float(data["timeLimitSeconds"]))
    back = problem_solution(problem_result_data(raw, "pod-1"))
    assert list(back.x) == list(raw.x) and back.proven_optimal == raw.proven_optimal
    status = finish_problem_classically(decided, back)
    assert status.phase == "Succeeded"
    assert status.result.solution.feasible  # type: ignore[union-attr]
    assert len(status.result.solution.routes) == 10  # type: ignore[union-attr]


def test_replaying_the_shortcut_outcome_decides_the_same() -> None:
    job = QuantumJob.model_validate(yaml.safe_load(
        (EXAMPLES / "maxcut-qubo.yaml").read_text()))
    first = decide_problem(start_job(job), FLEET, {}, seed=2)
    assert first.path == "Classical" and shortcut_outcome(first.state.run.status) is True
    replay = decide_problem(start_job(job), FLEET, {}, seed=2,
                            shortcut_proved=shortcut_outcome(first.state.run.status))
    assert replay.path == first.path
    rules = [(r.name, r.passed) for r in replay.state.run.status.decision.rules]  # type: ignore[union-attr]
    assert rules == [(r.name, r.passed) for r in first.state.run.status.decision.rules]  # type: ignore[union-attr]
