"""CEL QPU selectors (issue 18): the QIP sees the attributes the DRA publisher publishes, a
job's and its policy's selectors both hold, a job whose selector admits one QPU runs there
(checked against exact simulation), and hostile expressions end in InvalidQPUSelector before
they can run long."""

from __future__ import annotations

import time

import pytest
from qiskit import qasm2

from qbackbone.api.conditions import Reason
from qbackbone.api.policy import InvocationPolicy
from qbackbone.core.errors import JobFailure
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.core.qpus.selector import MAX_EXPRESSION, compile_selector, device_attributes
from qbackbone.dra.attributes import device_of
from qbackbone.k8s.qpunodes import qpunode_status
from tests.conftest import exact_values, ghz_circuit, make_job, make_qpu

A = 'device.attributes["qpu.qbackbone.io"]'
NODES = [make_qpu("aer-ideal", qubits=12, site="fra"),
         make_qpu("nairobi", provider="fake", backend="fake_nairobi", site="fra"),
         make_qpu("quito", provider="fake", backend="fake_quito", site="ams")]
FLEET = build_fleet(NODES)
OBSERVABLES = ["ZZI", "IZZ", "XXX"]


def by_name(name: str):  # type: ignore[no-untyped-def]
    return next(q for q in FLEET if q.name == name)


def test_the_qip_sees_exactly_what_the_publisher_publishes() -> None:
    for node in NODES:
        body = node.model_dump(by_alias=True, mode="json", exclude_none=True)
        body["status"] = qpunode_status(body).model_dump(by_alias=True, mode="json",
                                                         exclude_none=True)
        published = {k: next(iter(v.values()))
                     for k, v in device_of(body).entry["attributes"].items()}
        assert device_attributes(by_name(node.metadata.name)) == published
    quito = device_attributes(by_name("quito"))
    assert quito is not None and quito["qubits"] == 5 and quito["site"] == "ams"
    assert not quito["ideal"] and 0 < int(quito["error2qPpm"]) < 1_000_000


@pytest.mark.parametrize(("expression", "admitted"), [
    (f'{A}.site == "fra"', {"aer-ideal", "nairobi"}),
    (f'{A}.site == "fra" && !{A}.ideal', {"nairobi"}),
    (f"{A}.qubits >= 7", {"aer-ideal", "nairobi"}),
    (f'{A}.backend.startsWith("fake_") && {A}.error2qPpm <= 1000000', {"nairobi", "quito"}),
    (f'device.driver == "qpu.qbackbone.io" && {A}.qpu == "quito"', {"quito"}),
    (f"{A}.t1Us >= 1000000000", {"aer-ideal"}),  # ideal: unbounded coherence
])
def test_selectors_admit_what_the_attributes_say(expression: str, admitted: set[str]) -> None:
    selector = compile_selector(expression, "test")
    assert {q.name for q in FLEET if selector.matches(q)} == admitted


@pytest.mark.parametrize(("expression", "says"), [
    ("", "is empty"),
    (f"{A}.nope > 1", "fails on QPU"),  # like kube-scheduler: an error, not a non-match
    (f"{A}.qubits", "not a boolean"),
    (f"{A}.site == 1", "fails on QPU"),
    (f"{A}[", "does not parse"),
    ("[1, 2].exists(x, x > 1)", "comprehension macro exists"),
    ("[1,2].map(x, [1,2].map(y, x))  == []", "comprehension macro map"),
    ("(" * 40 + "true" + ")" * 40, "nests 40 levels"),
    ("true || " * 2000 + "true", "characters; at most"),
])
def test_hostile_selectors_fail_clearly(expression: str, says: str) -> None:
    started = time.monotonic()
    with pytest.raises(JobFailure) as caught:
        compile_selector(expression, "spec.execution.qpuSelector.cel").matches(FLEET[1])
    assert caught.value.reason is Reason.INVALID_QPU_SELECTOR
    assert says in caught.value.message
    assert time.monotonic() - started < 5


def test_a_long_selector_within_the_limit_still_evaluates_quickly() -> None:
    expression = " || ".join([f'{A}.site == "x"'] * 200)[:MAX_EXPRESSION]
    expression = expression[:expression.rfind(" ||")]
    selector = compile_selector(expression, "test")
    started = time.monotonic()
    assert not any(selector.matches(q) for q in FLEET)
    assert time.monotonic() - started < 5


def test_deep_unbracketed_chains_are_an_error_not_a_crash() -> None:
    with pytest.raises(JobFailure) as caught:
        compile_selector("!" * 5000 + "true", "test").matches(FLEET[0])
    assert caught.value.reason is Reason.INVALID_QPU_SELECTOR


@pytest.mark.slow
def test_a_job_whose_selector_admits_one_qpu_runs_there_and_matches_exact() -> None:
    job = make_job(qasm2.dumps(ghz_circuit(3)), OBSERVABLES, shots=4000,
                   execution={"qpuSelector": {"cel": f'{A}.site == "ams"'}})
    status = run_job(job, FLEET, {}, seed=5)
    assert status.phase == "Succeeded", status.conditions
    assert status.result is not None and status.decision is not None
    assert status.result.qpus == ["quito"] and status.decision.eligible_qpus == ["quito"]
    assert status.verification is not None and status.verification.passed
    exact = exact_values(ghz_circuit(3), OBSERVABLES)
    values = status.result.expectation_values or []
    for v, e in zip(values, exact, strict=True):  # within its reported uncertainty
        assert abs(v.value - e) <= 4 * (v.std_error + v.systematic_error), (v, e)


def test_the_policy_selector_and_the_jobs_both_hold() -> None:
    policy = InvocationPolicy.model_validate({"metadata": {"name": "default"}, "spec": {
        "hardware": {"qpuSelector": {"cel": f"!{A}.ideal"}}}})
    job = make_job(qasm2.dumps(ghz_circuit(3)), OBSERVABLES, shots=500,
                   execution={"qpuSelector": {"cel": f'{A}.site == "fra"'}})
    status = run_job(job, FLEET, {"default": policy}, seed=5)
    assert status.decision is not None and status.decision.eligible_qpus == ["nairobi"]
    broken = make_job(qasm2.dumps(ghz_circuit(3)), OBSERVABLES, shots=500,
                      execution={"qpuSelector": {"cel": f"{A}.missing"}})
    failed = run_job(broken, FLEET, {"default": policy}, seed=5)
    assert failed.phase == "Failed"
    assert any(c.reason == Reason.INVALID_QPU_SELECTOR for c in failed.conditions)
