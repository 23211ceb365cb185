"""Problem jobs in the cluster: the recorded job with its topology inline, and the classical
solver pod's input and result (the QAOA path reuses the fragment pods of a sampling job)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus
from qbackbone.core.optimize.classical import QuboSolution
from qbackbone.core.optimize.qubo import bits_from_key, key_from_bits
from qbackbone.core.optimize.topology import ConfigMapReader
from qbackbone.core.pipeline import DecidedProblem, finish_problem_samples
from qbackbone.core.pipeline.optimize import solve_problem_spec
from qbackbone.k8s.builders import JobRef
from qbackbone.k8s.fragments import SlotResult
from qbackbone.k8s.names import result_name
from qbackbone.k8s.objects import recorded_policy
from qbackbone.k8s.single import SingleSource


def inline_topology(body: Mapping[str, Any], read_config_map: ConfigMapReader) -> dict[str, Any]:
    """The job body with every ConfigMap its problem reads replaced by the text itself: a
    topology's configMapRef (trafficEngineering, generated telemetry) by ``document``, a
    telemetry CSV's configMapRef by ``csv``.

    The decision record then holds everything the problem was decided from, so a later
    change to a ConfigMap cannot change a decided job. KeyError when a ConfigMap or key is
    missing (its message names which and where it was asked for).
    """
    out = json.loads(json.dumps(body))
    problem = (out.get("spec") or {}).get("problem") or {}
    topologies = [((problem.get("trafficEngineering") or {}).get("topology"),
                   "trafficEngineering.topology")]
    for kind in ("anomalyDetection", "forecast"):
        telemetry = (problem.get(kind) or {}).get("telemetry")
        if not isinstance(telemetry, dict):
            continue
        _inline(telemetry, "csv", f"{kind}.telemetry", read_config_map)
        topologies.append(((telemetry.get("generated") or {}).get("topology"),
                           f"{kind}.telemetry.generated.topology"))
    for topology, where in topologies:
        if isinstance(topology, dict):
            _inline(topology, "document", where, read_config_map)
    return out


def inline_network_state(policy: Mapping[str, Any] | None,
                         read_config_map: ConfigMapReader) -> dict[str, Any] | None:
    """The policy body with its networkState's ConfigMap read into ``document`` (the state
    as it was at decision time); unchanged when it has none. A ConfigMap that cannot be read
    is left to the QIP, which ignores the state and says so in a rule."""
    if policy is None:
        return None
    out: dict[str, Any] = json.loads(json.dumps(policy))
    state = (out.get("spec") or {}).get("networkState")
    if not isinstance(state, dict):
        return out
    ref = state.get("configMapRef")
    if isinstance(ref, dict):
        try:
            state["document"] = read_config_map(str(ref.get("name")), str(ref.get("key")))
        except KeyError:
            state.pop("document", None)
    return out


def _inline(section: dict[str, Any], key: str, where: str, read: ConfigMapReader) -> None:
    """Replace ``section.configMapRef`` by ``section[key]`` = the text it names."""
    ref = section.get("configMapRef")
    if not isinstance(ref, dict):
        return
    try:
        section[key] = read(str(ref.get("name")), str(ref.get("key")))
    except KeyError as err:
        raise KeyError(f"{where}.configMapRef: {err.args[0]}") from None
    del section["configMapRef"]


def problem_input_data(job: JobRef, work: str, recorded_job: Mapping[str, Any],
                       policy: Mapping[str, Any] | None, seed: int | None,
                       time_limit: float) -> dict[str, str]:
    """What the classical solver pod needs: the job (topology inline), its policy, the seed."""
    return {"kind": "problem", "job": job.name, "jobUid": job.uid, "result": result_name(work),
            "job.json": json.dumps(recorded_job, sort_keys=True, default=str),
            "policy.json": json.dumps(policy, sort_keys=True, default=str),
            "seed": json.dumps(seed), "timeLimitSeconds": f"{time_limit:.3f}"}


def problem_result_data(solution: QuboSolution, pod: str | None) -> dict[str, str]:
    """The solver's raw answer: the assignment (Qiskit order) and how it was found."""
    return {"kind": "problem", "pod": pod or "", "seconds": f"{solution.seconds:.4f}",
            "assignment": key_from_bits(solution.x), "energy": repr(solution.energy),
            "method": solution.method, "provenOptimal": json.dumps(solution.proven_optimal)}


def problem_solution(data: Mapping[str, str]) -> QuboSolution:
    """The raw answer stored by problem_result_data."""
    key = data["assignment"]
    x = bits_from_key(key, len(key)) if key else np.zeros(0, dtype=np.int8)
    return QuboSolution(x=x, energy=float(data["energy"]), method=data["method"],
                        proven_optimal=bool(json.loads(data["provenOptimal"])),
                        seconds=float(data.get("seconds") or 0.0))


class ProblemSource(SingleSource):
    """The QAOA circuit of a problem job: the fragments of a sampling job, finished by
    decoding, repairing and verifying the samples."""

    def __init__(self, decided: DecidedProblem) -> None:
        assert decided.circuit_job is not None
        super().__init__(decided.circuit_job)
        self.problem = decided

    def finish(self, results: Mapping[str, SlotResult]) -> QuantumJobStatus:
        """``finish_problem_samples`` with the samples of the QPUs that produced them."""
        status = finish_problem_samples(self.problem, self.as_ran(results))
        self.plan_as_ran(results)
        return status


def run_problem_input(data: Mapping[str, str], pod: str | None) -> dict[str, str]:
    """The worker's side: solve the recorded job's QUBO classically; the result data."""
    job = QuantumJob.model_validate(json.loads(data["job.json"]))
    policy = recorded_policy(data["policy.json"])
    solution = solve_problem_spec(job, policy, json.loads(data["seed"]),
                                  float(data["timeLimitSeconds"]))
    return problem_result_data(solution, pod)
