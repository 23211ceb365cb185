"""A requested execution.mode (SingleQPU, Distributed) is honoured or the job fails with the
reason; the classical fallback serves only Auto (issue 15). Auto keeps its fallback. A
Classical result computed by statevector is labelled a self-check, not MatchesExact."""

from __future__ import annotations

from dataclasses import replace

import pytest
from qiskit import qasm2

from qbackbone.api.policy import InvocationPolicy, InvocationPolicySpec
from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.classical.fallback import ClassicalOutcome
from qbackbone.core.pipeline import decide_job, finish_classical, run_job, start_job
from qbackbone.core.qip.engine import decide
from qbackbone.core.qip.inputs import JobInputs
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import make_job, make_qpu
from tests.cutting.test_buildable import OBS, cu1_bridge

from .test_qip import FEATURES, POLICY, assess, context, qpu

NO_CUTTING = POLICY.model_copy(update={"cutting": POLICY.cutting.model_copy(
    update={"enabled": False})})
SMALL = (assess(qpu("a", qubits=4)),)


def test_single_qpu_too_wide_is_refused_while_auto_falls_back() -> None:
    auto = decide(JobInputs(FEATURES, context("Auto"), SMALL), NO_CUTTING)
    assert auto.path == "Classical"
    asked = decide(JobInputs(FEATURES, context("SingleQPU"), SMALL), POLICY)
    assert asked.refused and asked.reason == "NoEligibleQPU"
    assert "execution.mode SingleQPU was requested" in asked.message
    assert "a: qubitsFit 8 vs 4" in asked.message


def test_single_qpu_too_slow_for_the_deadline_is_refused() -> None:
    slow = (assess(qpu("a", setup=30.0)),)
    assert decide(JobInputs(FEATURES, context("Auto", deadline=10.0), slow),
                  POLICY).path == "Classical"
    asked = decide(JobInputs(FEATURES, context("SingleQPU", deadline=10.0), slow), POLICY)
    assert asked.refused and asked.reason == "DeadlineInfeasible"
    assert "SingleQPU was requested" in asked.message and "deadline" in asked.message


@pytest.mark.parametrize("mode", ["SingleQPU", "Distributed"])
def test_outside_the_quantum_region_a_requested_mode_is_refused(mode: str) -> None:
    policy = InvocationPolicySpec.model_validate({"features": {"minQubits": 12}})
    assert decide(JobInputs(FEATURES, context("Auto"), (assess(qpu("a")),)),
                  policy).path == "Classical"
    asked = decide(JobInputs(FEATURES, context(mode), (assess(qpu("a")),)), policy)
    assert asked.refused and asked.reason == "NoEligibleQPU"
    assert f"execution.mode {mode} was requested" in asked.message
    assert "qubitsAtLeast" in asked.message


def test_distributed_without_cutting_or_usable_qpus_is_refused() -> None:
    no_cut = decide(JobInputs(FEATURES, context("Distributed"), SMALL), NO_CUTTING)
    assert no_cut.refused and no_cut.reason == "CutInfeasible"
    assert "forbids cutting" in no_cut.message
    not_ready = (replace(assess(qpu("a")), ready=False),)  # wide enough, not ready
    refused = decide(JobInputs(FEATURES, context("Distributed"), not_ready), POLICY)
    assert refused.refused and refused.reason == "NoEligibleQPU"
    assert "a: ready" in refused.message
    assert decide(JobInputs(FEATURES, context("Auto"), not_ready), POLICY).path == "Classical"


def test_distributed_is_chosen_when_cutting_can_honour_it() -> None:
    assert decide(JobInputs(FEATURES, context("Distributed"), SMALL), POLICY).path == "Distributed"


# End to end: two 3-qubit ideal QPUs, a 6-qubit job, the fallback enabled.
TWO_HALVES = build_fleet([make_qpu("left", qubits=3), make_qpu("right", qubits=3)])


def policies(**cutting: object) -> dict[str, InvocationPolicy]:
    return {"default": InvocationPolicy.model_validate({"metadata": {"name": "default"}, "spec": {
        "cutting": {"allowedCutKinds": ["loWire"], "maxSamplingOverhead": 10, **cutting},
        "fallback": {"enabled": True}}})}


def job(mode: str) -> QuantumJob:
    return make_job(qasm2.dumps(cu1_bridge()), OBS, shots=500, execution={"mode": mode})


def test_requested_distributed_that_no_cut_plan_fits_fails_with_cut_infeasible() -> None:
    status = run_job(job("Distributed"), TWO_HALVES, policies(), seed=1)
    assert status.phase == "Failed" and status.result is None
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert failed.reason == "CutInfeasible"
    assert "execution.mode Distributed was requested" in failed.message
    assert "gamma^2 = 16 > maxSamplingOverhead 10" in failed.message
    auto = run_job(job("Auto"), TWO_HALVES, policies(), seed=1)
    assert auto.phase == "Succeeded" and auto.result is not None
    assert auto.result.path == "Classical"


def test_requested_single_qpu_on_too_small_qpus_fails_with_no_eligible_qpu() -> None:
    status = run_job(job("SingleQPU"), TWO_HALVES, policies(), seed=1)
    assert status.phase == "Failed" and status.result is None
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert failed.reason == "NoEligibleQPU"
    assert "execution.mode SingleQPU was requested" in failed.message


def test_requested_distributed_that_a_cut_plan_fits_succeeds() -> None:
    status = run_job(job("Distributed"), TWO_HALVES,
                     policies(allowedCutKinds=["gate", "loccWire"], maxSamplingOverhead=1000),
                     seed=1)
    assert status.phase == "Succeeded", status.conditions
    assert status.result is not None and status.result.path == "Distributed"


# Classical results: statevector is checked against the same exact statevector (a self-check);
# MPS is checked against it independently.
def classical_job(sampling: bool = False) -> QuantumJob:
    return make_job(qasm2.dumps(cu1_bridge()), None if sampling else OBS, shots=2000,
                    execution={"mode": "Classical"})


def fallback(method: str) -> dict[str, InvocationPolicy]:
    return {"default": InvocationPolicy.model_validate({"metadata": {"name": "default"},
                                                       "spec": {"fallback": {"method": method}}})}


def verified_reason(status: object) -> str:
    return next(c.reason for c in status.conditions  # type: ignore[attr-defined]
                if c.type == "Verified")


@pytest.mark.parametrize("sampling", [False, True])
def test_a_statevector_result_is_verified_only_as_a_self_check(sampling: bool) -> None:
    status = run_job(classical_job(sampling), TWO_HALVES, fallback("statevector"), seed=2)
    assert status.phase == "Succeeded", status.conditions
    assert status.result is not None and status.result.method == "statevector"
    v = status.verification
    assert v is not None and v.passed and v.method == "SelfCheck"
    assert v.details.startswith("self-check, no independent verification")
    assert verified_reason(status) == "SelfCheck"


def test_an_mps_result_is_checked_independently_against_exact() -> None:
    status = run_job(classical_job(), TWO_HALVES, fallback("mps"), seed=2)
    assert status.phase == "Succeeded", status.conditions
    assert status.result is not None and status.result.method == "matrix_product_state"
    assert status.verification is not None and status.verification.method == "ExactStatevector"
    assert verified_reason(status) == "MatchesExact"


def test_a_wrong_statevector_result_still_fails_its_self_check() -> None:
    decided = decide_job(start_job(classical_job()), TWO_HALVES, fallback("statevector"), seed=2)
    wrong = ClassicalOutcome([0.5] * len(OBS), None, "statevector")
    status = finish_classical(decided, wrong)
    assert status.phase == "Failed"
    assert status.verification is not None and status.verification.method == "SelfCheck"
    assert not status.verification.passed
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert failed.reason == "VerificationFailed"


@pytest.mark.parametrize("left_out", [{"selected": False}, {"ready": False}])
def test_qpus_the_job_cannot_use_do_not_stop_it_being_cut(left_out: dict[str, bool]) -> None:
    # The job's qpuSelector names only the 4-qubit QPU (or the wide one is not Ready): the
    # wide QPU neither runs a part nor makes cutting "unable to fix" the job.
    wide = replace(assess(qpu("wide", qubits=16)), **left_out)
    asked = decide(JobInputs(FEATURES, context("Distributed"), (*SMALL, wide)), POLICY)
    assert asked.path == "Distributed" and asked.eligible == ["a"], asked.message
