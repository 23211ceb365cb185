"""An Estimator fragment's ConfigMap data: the input (compiled circuit, laid-out observables,
fidelity, mitigation plan, target sigma) and the result (mitigated values) survive the trip
through their text form, and malformed entries are refused with a clear error."""

from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import UTC, datetime

import pytest
from qiskit import QuantumCircuit

from qbackbone.core.circuits.serialize import circuits_from_b64
from qbackbone.core.execute.estimates import EstimatorWork, prepare_estimator_work
from qbackbone.core.mitigation.plan import MitigationPlan
from qbackbone.core.mitigation.uncertainty import MitigatedValue
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.k8s.builders import JobRef
from qbackbone.k8s.codec import check_size
from qbackbone.k8s.dispatch import slot_result
from qbackbone.k8s.estimation import ESTIMATOR_KEY, estimator_input, estimator_input_data
from qbackbone.k8s.fragments import Work
from qbackbone.k8s.results import (
    ESTIMATES_KEY,
    fragment_counts,
    fragment_estimates,
    fragment_result_data,
)
from tests.conftest import make_qpu

ZNE = MitigationPlan("ZNE", "ZNE fits", readout=True, zne=True)
REF = JobRef("job", "ns", "uid-1")


def _work() -> EstimatorWork:
    (qpu,) = build_fleet([make_qpu("manila", provider="fake", backend="fake_manila")])
    circuit = QuantumCircuit(3)
    circuit.ry(0.7, 0)
    circuit.cx(0, 1)
    circuit.rx(1.1, 2)
    circuit.cx(1, 2)
    return prepare_estimator_work(qpu, circuit, ["ZZI", "IIZ", "XXX"])


def _input(work: EstimatorWork, plan: MitigationPlan = ZNE) -> dict[str, str]:
    node = {"metadata": {"name": "manila"}}
    return Work([work.circuit], 500, 3, estimator_input_data(work, plan, 0.05)).input_data(
        REF, "job-frag-manila", node)


def test_estimator_input_round_trips() -> None:
    work = _work()
    data = _input(work)
    check_size(data, "the input")
    circuits = circuits_from_b64(data["circuits.qpy"])
    decoded = estimator_input(data, circuits)
    assert decoded is not None
    assert decoded.work.circuit == work.circuit
    assert decoded.work.circuit.layout is not None  # the layout QPY keeps
    assert decoded.work.observables == work.observables
    assert all(op.num_qubits == work.circuit.num_qubits for op in decoded.work.observables)
    assert decoded.work == replace(work, circuit=decoded.work.circuit,
                                   observables=decoded.work.observables)  # every other field
    assert decoded.work.fidelity == work.fidelity and 0.0 < work.fidelity < 1.0
    assert decoded.plan == ZNE and decoded.plan.reason == "ZNE fits"
    assert decoded.target_sigma == 0.05
    assert json.loads(data["shots"]) == 500 and json.loads(data["seed"]) == 3


EVERY_FLAG = MitigationPlan("ZNE", "every technique", **{
    f.name: True for f in fields(MitigationPlan) if isinstance(f.default, bool)})


@pytest.mark.parametrize("plan", [MitigationPlan("None", "off"),
                                  MitigationPlan("Readout", "trex", readout=True,
                                                 dynamical_decoupling=True), EVERY_FLAG])
def test_every_plan_round_trips(plan: MitigationPlan) -> None:
    work = _work()
    data = _input(work, plan)
    decoded = estimator_input(data, circuits_from_b64(data["circuits.qpy"]))
    assert decoded is not None and decoded.plan == plan


def test_a_counts_fragment_has_no_estimator_input() -> None:
    work = _work()
    data = Work([work.circuit], 500, 3).input_data(REF, "w", {})
    assert ESTIMATOR_KEY not in data
    assert estimator_input(data, [work.circuit]) is None


def _edit(data: dict[str, str], changes: dict[str, object]) -> dict[str, str]:
    """``changes`` by path: ``plan.zne``, ``work.fidelity`` or a top-level key."""
    body = json.loads(data[ESTIMATOR_KEY])
    for path, value in changes.items():
        *parents, key = path.split(".")
        target = body
        for parent in parents:
            target = target[parent]
        target[key] = value
    return {**data, ESTIMATOR_KEY: json.dumps(body)}


@pytest.mark.parametrize(("changes", "message"), [
    ({"observables": [[["ZZ", 1.0, 0.0]]]}, "qubits"),
    ({"observables": []}, "no observables"),
    ({"plan.level": "Extreme"}, "unknown mitigation level"),
    ({"plan.zne": "yes"}, "boolean"),
    ({"plan.turbo": True}, "unknown plan field"),
    ({"plan": {"reason": "no level"}}, "plan.level"),
    ({"work.fidelity": 1.5}, "not a probability"),
    ({"work.speed": 0.5}, "unknown work field"),
    ({"targetSigma": 0}, "out of range"),
    ({"plan": None}, "malformed"),
])
def test_malformed_estimator_input_is_refused(changes: dict[str, object], message: str) -> None:
    work = _work()
    data = _edit(_input(work), changes)
    with pytest.raises(ValueError, match=message):
        estimator_input(data, [work.circuit])


def test_an_estimator_fragment_runs_one_circuit() -> None:
    work = _work()
    with pytest.raises(ValueError, match="one circuit"):
        estimator_input(_input(work), [work.circuit, work.circuit])
    with pytest.raises(ValueError, match="malformed"):
        estimator_input({**_input(work), ESTIMATOR_KEY: "{not json"}, [work.circuit])


VALUES = [MitigatedValue(0.4906773395201473, 0.0237, 0.0315, "ZNE linear extrapolation"),
          MitigatedValue(-1.0, 0.0, 0.25, "TREX; systematic from the residual-bias model")]


def test_mitigated_values_round_trip_through_the_result() -> None:
    data = fragment_result_data("manila", "fake_manila", [], 2.5, "pod", 100.0, 102.5, 0.81,
                                VALUES)
    check_size(data, "the result")
    assert fragment_estimates(data) == VALUES  # floats exactly, not rounded
    assert fragment_counts(data) == []
    ran = slot_result(data, datetime.fromtimestamp(90.0, UTC))
    assert ran.estimates == VALUES and ran.counts == []
    assert (ran.qpu, ran.backend, ran.fidelity, ran.started, ran.ended) == (
        "manila", "fake_manila", 0.81, 10.0, 12.5)


def test_a_counts_result_has_no_estimates() -> None:
    data = fragment_result_data("a", "aer_simulator", [{"01": 3}], 0.1, None)
    assert ESTIMATES_KEY not in data and fragment_estimates(data) is None
    assert slot_result(data, datetime.now(UTC)).estimates is None


def test_malformed_estimates_are_refused() -> None:
    data = fragment_result_data("a", "b", [], 0.1, None, estimates=VALUES)
    for broken in ('[{"value": 1.0}]', "[1, 2]", "{"):
        with pytest.raises(ValueError, match="malformed"):
            fragment_estimates({**data, ESTIMATES_KEY: broken})
