"""Estimator fragments without a cluster: a SingleQPU share of an expectation-value job on a
noisy QPU is run by the worker's own code as one mitigated Estimator call, finished by
``finish_single_qpu`` exactly as the in-process path finishes it; a share moved to another QPU
runs with, and is reported under, the mitigation that QPU was assessed with."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from qiskit import qasm2
from qiskit.quantum_info import SparsePauliOp, Statevector

from qbackbone.core.circuits.serialize import circuits_from_b64
from qbackbone.core.errors import JobFailure
from qbackbone.core.mitigation.uncertainty import MitigatedValue
from qbackbone.core.pipeline import plan_single_qpu
from qbackbone.core.pipeline.single import execute_single_qpu, finish_single_qpu
from qbackbone.k8s.decision import DecisionRecord
from qbackbone.k8s.dispatch import slot_result
from qbackbone.k8s.estimation import ESTIMATOR_KEY, estimator_input
from qbackbone.k8s.fragments import SINGLE, SlotResult
from qbackbone.k8s.names import attempt_name, fragment_name
from qbackbone.k8s.single import SingleSource
from qbackbone.worker.run import run_fragment
from tests.operator.kit import ENTANGLED_QASM, quantum_job
from tests.operator.test_moves import NOW, REF, ready_node

QASM = ENTANGLED_QASM
OBSERVABLES = ["ZZI", "IZZ", "IIZ", "XXX"]


def _exact() -> list[float]:
    state = Statevector(qasm2.loads(QASM))
    return [float(state.expectation_value(SparsePauliOp(o)).real) for o in OBSERVABLES]


def _record(nodes: list[dict[str, Any]], **spec: Any) -> DecisionRecord:
    job = quantum_job("job", QASM, OBSERVABLES, shots=2000, execution={"mode": "SingleQPU"},
                      **spec)
    job["metadata"].update(namespace="ns", uid="uid-1", generation=1)
    fleet = [{k: v for k, v in n.items() if k != "status"} for n in nodes]
    return DecisionRecord(job=job, fleet=fleet, policy=None, now=NOW, seed=5)


def _source(record: DecisionRecord, shares: dict[str, int]) -> SingleSource:
    """The recorded job decided again, admitted with ``shares`` (as admission writes it)."""
    source = SingleSource(record.decide(record.start()))
    source.assign({SINGLE: shares})
    plan_single_qpu(source.decided)
    return source


def _ran(record: DecisionRecord, source: SingleSource, key: str, qpu: str,
         attempt: int = 0) -> SlotResult:
    """The slot's attempt on ``qpu`` as the operator writes its input, run by the worker."""
    (slot,) = [s for s in source.slots if s.key == key]
    work = source.work(slot, qpu, attempt, {})
    assert work is not None
    node = next(n for n in record.fleet if n["metadata"]["name"] == qpu)
    name = attempt_name(fragment_name(REF.name, key), attempt)
    return slot_result(run_fragment(work.input_data(REF, name, node), name), record.now)


def test_an_estimator_fragment_gives_the_in_process_result() -> None:
    """Same decision, seed and compilation: the pod's values are the in-process values."""
    record = _record([ready_node("qa", qubits=8), ready_node("qn", "fake", "fake_manila")])
    source = _source(record, {"qn": 1})
    (slot,) = source.slots
    work = source.work(slot, "qn", 0, {})
    assert work is not None and ESTIMATOR_KEY in work.extra
    (circuit,) = work.circuits
    assert not any(i.operation.name == "measure" for i in circuit.data)  # the Estimator's
    ran = _ran(record, source, "qn", "qn")
    assert ran.counts == [] and ran.estimates is not None and len(ran.estimates) == 4
    status = source.finish({"qn": ran})
    assert status.phase == "Succeeded", status.conditions

    alone = _source(record, {"qn": 1})
    in_process = finish_single_qpu(alone.decided, execute_single_qpu(alone.decided))
    assert status.result is not None and in_process.result is not None
    assert status.result.expectation_values == in_process.result.expectation_values
    assert status.result.mitigation == in_process.result.mitigation
    assert status.result.shots == in_process.result.shots

    result = status.result
    assert result.mitigation is not None and result.mitigation[0].level == "ZNE"
    assert result.mitigation[0].qpus == ["qn"] and result.backends == ["fake_manila"]
    assert result.expectation_values is not None
    for ev, want in zip(result.expectation_values, _exact(), strict=True):
        assert ev.systematic_error is not None and ev.systematic_error > 0
        assert abs(ev.value - want) <= 3 * math.hypot(ev.std_error, ev.systematic_error), ev
    reasons = {c.type: c.reason for c in status.conditions}
    assert reasons["Verified"] == "WithinReportedUncertainty"
    assert status.plan is not None and status.plan.fragments[0].estimated_fidelity == round(
        ran.fidelity, 4)


def test_ideal_qpus_and_sampling_jobs_keep_counts_fragments() -> None:
    record = _record([ready_node("qa", qubits=8), ready_node("qn", "fake", "fake_manila")])
    source = _source(record, {"qa": 1})
    (slot,) = source.slots
    ideal = source.work(slot, "qa", 0, {})
    assert ideal is not None and not ideal.extra
    assert len(ideal.circuits) == len(source.decided.reduced.measured_circuits)
    sampling = quantum_job("job", QASM.replace("cx q[1], q[2];\n", "cx q[1], q[2];\n"
                                               "creg c[3];\nmeasure q -> c;\n"))
    sampling["metadata"].update(namespace="ns", uid="uid-1", generation=1)
    recorded = DecisionRecord(job=sampling, fleet=record.fleet, policy=None, now=NOW, seed=5)
    sampled = SingleSource(recorded.decide(recorded.start()))
    assert sampled.decided.reduced.observables is None
    assert sampled.estimator_work("qn") is None  # counts are reported as measured
    noisy = sampled.work(sampled.slots[0], "qn", 0, {})
    assert noisy is not None and not noisy.extra


def test_a_moved_share_runs_with_the_mitigation_of_the_qpu_it_moved_to() -> None:
    """Planned on fake_manila (ZNE fits its deadline), moved to fake_lima, where 50 ms per
    shot leave time for readout mitigation only: the pod runs fake_lima's plan, and the
    result names fake_lima and that plan."""
    nodes = [ready_node("qm", "fake", "fake_manila", shotTime="1us"),
             ready_node("ql", "fake", "fake_lima", shotTime="50ms")]
    record = _record(nodes, deadline="600s")
    source = _source(record, {"qm": 1})
    plans = {a.descriptor.name: a.mitigation for a in source.decided.assessments}
    assert (plans["qm"].level, plans["ql"].level) == ("ZNE", "Readout")
    (slot,) = source.slots
    moved = source.work(slot, "ql", 1, {})
    assert moved is not None
    decoded = estimator_input(moved.input_data(REF, "p", {}), moved.circuits)
    assert decoded is not None and decoded.plan == plans["ql"]
    status = source.finish({"qm": _ran(record, source, "qm", "ql", attempt=1)})
    assert status.phase == "Succeeded", status.conditions
    result = status.result
    assert result is not None and result.qpus == ["ql"] and result.backends == ["fake_lima"]
    assert result.mitigation is not None and len(result.mitigation) == 1
    assert (result.mitigation[0].level, result.mitigation[0].qpus) == ("Readout", ["ql"])
    assert result.shots == 2 * 2 * 2000  # 2 bases x 2000 shots x TREX's 2x
    assert status.plan is not None and status.plan.fragments[0].qpu == "ql"
    assert "qm" not in json.dumps(result.model_dump())


def _values(value: float, std: float, sys: float, n: int = 4) -> list[MitigatedValue]:
    return [MitigatedValue(value, std, sys, "TREX")] * n


def _synthetic(qpu: str, estimates: list[MitigatedValue] | None,
               counts: list[dict[str, int]] | None = None) -> SlotResult:
    return SlotResult(counts=counts or [], qpu=qpu, backend="fake_manila", fidelity=0.8,
                      started=1.0, ended=2.0, estimates=estimates)


@pytest.fixture(scope="module")
def pair() -> tuple[DecisionRecord, SingleSource]:
    nodes = [ready_node("qm", "fake", "fake_manila"), ready_node("qn", "fake", "fake_manila")]
    record = _record(nodes)
    return record, _source(record, {"qm": 1, "qn": 3})


def test_shares_that_ran_on_one_qpu_are_one_stratum(pair: tuple[DecisionRecord, SingleSource]
                                                    ) -> None:
    record, _ = pair
    source = _source(record, {"qm": 1, "qn": 3})
    shots = {s.qpu: s.shots for s in source.decided.qip.shares}
    assert shots == {"qm": 500, "qn": 1500}
    outcomes = source.outcomes_as_ran({"qm": _synthetic("qn", _values(0.2, 0.04, 0.02)),
                                       "qn": _synthetic("qn", _values(0.6, 0.02, 0.06))})
    assert not outcomes.counts and list(outcomes.estimates) == ["qn"]
    merged = outcomes.estimates["qn"][0]
    assert merged.value == pytest.approx(0.25 * 0.2 + 0.75 * 0.6)
    assert merged.std_error == pytest.approx(math.hypot(0.25 * 0.04, 0.75 * 0.02))
    assert merged.systematic_error == pytest.approx(0.25 * 0.02 + 0.75 * 0.06)
    assert [(s.qpu, s.shots) for s in source.decided.qip.shares] == [("qn", 2000)]


@pytest.mark.parametrize(("results", "message"), [
    ({"qm": _synthetic("qn", None, [{"0": 1}]), "qn": _synthetic("qn", _values(0.1, 0.1, 0.1))},
     "counts and expectation values"),
    ({"qm": _synthetic("qm", _values(0.1, 0.1, 0.1, n=3)),
      "qn": _synthetic("qn", _values(0.1, 0.1, 0.1))}, "3 expectation value"),
    ({"qm": _synthetic("qm", _values(0.1, math.nan, 0.1)),
      "qn": _synthetic("qn", _values(0.1, 0.1, 0.1))}, "unusable error"),
])
def test_unusable_estimates_fail_the_job_clearly(pair: tuple[DecisionRecord, SingleSource],
                                                 results: dict[str, SlotResult],
                                                 message: str) -> None:
    record, _ = pair
    source = _source(record, {"qm": 1, "qn": 3})
    with pytest.raises(JobFailure, match=message) as failure:
        source.outcomes_as_ran(results)
    assert failure.value.reason == "ExecutionFailed"


def test_an_estimator_input_carries_the_compiled_circuit(
        pair: tuple[DecisionRecord, SingleSource]) -> None:
    _, source = pair
    work = source.work(source.slots[0], "qm", 0, {})
    assert work is not None
    data = work.input_data(REF, "p", {})
    (circuit,) = circuits_from_b64(data["circuits.qpy"])
    estimator = source.estimator_work("qm")
    assert estimator is not None and circuit == estimator.circuit
    assert json.loads(data["shots"]) == 500
