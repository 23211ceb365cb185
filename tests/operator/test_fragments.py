"""Fragments of a cut job without a cluster: the decision record's job cut with one LOCC wire,
each fragment's input run by the worker's own code, results handed back in different orders
and to a fresh source (an operator restart). The preparation subcircuit's inputs and the
estimate must not depend on either."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from qiskit import qasm2
from qiskit.quantum_info import SparsePauliOp, Statevector

from qbackbone.core.circuits.serialize import circuits_to_b64
from qbackbone.k8s.builders import (
    PRECEDENCE_GATE,
    JobRef,
    WorkerConfig,
    build_fragment_pod,
    fragment_input_data,
)
from qbackbone.k8s.decision import DecisionRecord
from qbackbone.k8s.dispatch import slot_result
from qbackbone.k8s.fragments import CutSource, Slot, SlotResult, cut_plan
from qbackbone.k8s.names import attempt_name, fragment_name
from qbackbone.worker.run import run_fragment
from tests.operator.kit import qpunode, quantum_job
from tests.operator.test_distributed import GHZ, GHZ_OBSERVABLES, ghz_job

REF = JobRef("ghz", "ns", "uid-1")
NOW = datetime(2026, 11, 23, 4, 0, tzinfo=UTC)


def _record(seed: int | None = 11) -> DecisionRecord:
    job = ghz_job("ghz")
    job["metadata"].update(namespace="ns", uid="uid-1", generation=1)
    nodes = [qpunode(n, "aer", "aer_simulator", qubits=8) for n in ("qa", "qb")]
    return DecisionRecord(job=job, fleet=nodes, policy=None, now=NOW, seed=seed)


def _source(record: DecisionRecord, stored: dict[str, str] | None = None
            ) -> tuple[CutSource, dict[str, str]]:
    decided = record.decide(record.start())
    assert decided.qip.path == "Distributed"
    plan, data = cut_plan(decided, stored)
    assert plan is not None and plan.method == "locc"
    return CutSource(decided, plan, record.stamp), data


def _run(source: CutSource, record: DecisionRecord, slot: Slot,
         results: dict[str, SlotResult]) -> tuple[str, SlotResult] | None:
    """The slot's input as the operator writes it, run by the worker; None while gated."""
    work = source.work(slot, slot.qpu, 0, results)
    if work is None:
        return None
    node = next(n for n in record.fleet if n["metadata"]["name"] == slot.qpu)
    name = fragment_name(REF.name, slot.key)
    data = fragment_input_data(REF, name, node, work.shots, work.seed,
                               circuits_to_b64(work.circuits))
    return data["circuits.qpy"], slot_result(run_fragment(data, name), record.now)


def _run_all(source: CutSource, record: DecisionRecord, order: Iterable[Slot]
             ) -> tuple[dict[str, SlotResult], dict[str, str]]:
    results: dict[str, SlotResult] = {}
    inputs: dict[str, str] = {}
    pending = list(order)
    while pending:
        slot = pending.pop(0)
        ran = _run(source, record, slot, results)
        if ran is None:
            pending.append(slot)
            continue
        inputs[slot.key], results[slot.key] = ran
    return results, inputs


def test_preparation_waits_for_every_measurement_fragment() -> None:
    record = _record()
    source, _ = _source(record)
    measure = [s for s in source.slots if not s.gated]
    prepare = [s for s in source.slots if s.gated]
    assert len(measure) == len(prepare) == 2  # each subcircuit split over both QPUs
    results: dict[str, SlotResult] = {}
    for slot in measure:
        assert all(_run(source, record, p, results) is None for p in prepare)
        ran = _run(source, record, slot, results)
        assert ran is not None
        results[slot.key] = ran[1]
    assert all(_run(source, record, p, results) is not None for p in prepare)


@pytest.mark.parametrize("seed", [11, None])
def test_inputs_and_estimate_survive_a_restart_and_any_result_order(seed: int | None) -> None:
    record = _record(seed)
    source, stored = _source(record)
    results, inputs = _run_all(source, record, source.slots)
    status = source.finish(results)
    assert status.phase == "Succeeded", status.conditions
    state = Statevector(qasm2.loads(GHZ))
    for ev, label in zip(status.result.expectation_values or [], GHZ_OBSERVABLES, strict=True):
        want = float(state.expectation_value(SparsePauliOp(label)).real)
        assert abs(ev.value - want) <= 4 * ev.std_error + 1e-9, (ev, want)
    # A restarted operator: the same record, the stored plan, the results in reverse order.
    again, _ = _source(record, stored)
    for slot in reversed(again.slots):
        if slot.gated:
            ran = _run(again, record, slot, results)
            assert ran is not None and ran[0] == inputs[slot.key]  # identical input
    restarted = again.finish(dict(reversed(list(results.items()))))
    assert restarted.result == status.result


def test_gated_pods_and_retry_names() -> None:
    pod = build_fragment_pod(REF, "ghz-frag-sub1-qa", "ghz-frag-sub1-qa-in", "qa",
                             WorkerConfig(), gated=True)
    assert pod["spec"]["schedulingGates"] == [{"name": PRECEDENCE_GATE}]
    assert "schedulingGates" not in build_fragment_pod(REF, "p", "p-in", "qa",
                                                       WorkerConfig())["spec"]
    base = fragment_name("ghz", "sub1-qa")
    assert attempt_name(base, 0) == base and attempt_name(base, 2) == f"{base}-r2"
    assert len(attempt_name(fragment_name("j" * 80, "sub1-qa"), 3)) <= 63
    data = fragment_input_data(REF, base, {}, [5, 0, 7], 3, "", result="ghz-frag-sub1-qa-out")
    assert data["shots"] == "[5, 0, 7]" and data["result"] == "ghz-frag-sub1-qa-out"


@pytest.mark.parametrize("kinds", [["gate"], ["loWire"]])
def test_gate_and_lo_wire_plans_have_no_precedence(kinds: list[str]) -> None:
    policy = {"apiVersion": "qbackbone.io/v1alpha1", "kind": "InvocationPolicy",
              "metadata": {"name": "lo", "namespace": "ns", "generation": 1},
              "spec": {"cutting": {"allowedCutKinds": kinds}}}
    base = _record()
    base.job["spec"]["policyRef"] = {"name": "lo"}
    record = DecisionRecord(job=base.job, fleet=base.fleet, policy=policy, now=NOW, seed=11)
    decided = record.decide(record.start())
    plan, _ = cut_plan(decided, None)
    assert plan is not None and plan.method == "lo" and not plan.edges
    source = CutSource(decided, plan, record.stamp)
    assert source.slots and not any(s.gated for s in source.slots)
    results, _ = _run_all(source, record, reversed(source.slots))
    status = source.finish(results)
    assert status.phase == "Succeeded" and status.verification is not None
    assert status.verification.passed and status.verification.method == "ExactStatevector"


def test_a_sampling_job_too_wide_for_every_qpu_falls_back_to_classical() -> None:
    record = _record()
    del record.job["spec"]["circuit"]["observables"]
    record.job["spec"]["circuit"]["sampling"] = True
    decided = record.decide(record.start())
    assert decided.qip.path == "Distributed"
    plan, data = cut_plan(decided, None)
    assert plan is None and "sampling job cannot be cut" in data["classical"]
    assert decided.run.status.decision is not None
    assert decided.run.status.decision.path == "Classical"
    again = record.decide(record.start())
    assert cut_plan(again, data)[0] is None  # the stored record decides the same way
    assert again.run.status.decision is not None
    assert again.run.status.decision.path == "Classical"


def test_a_chain_of_locc_cuts_releases_each_level_after_the_one_before() -> None:
    """18 qubits on 8-qubit QPUs: sub0 -> sub1 -> sub2, the middle one both prepares and
    measures. sub2 waits for sub1's results even when sub0's exist."""
    width = 18
    qasm = ('OPENQASM 2.0;\ninclude "qelib1.inc";\n' + f"qreg q[{width}];\nh q[0];\n"
            + "".join(f"cx q[{i}],q[{i + 1}];\n" for i in range(width - 1)))
    observables = ["Z" + "I" * (width - 2) + "Z", "X" * width]
    job = quantum_job("chain", qasm, observables, shots=200)
    job["metadata"].update(namespace="ns", uid="uid-2", generation=1)
    record = DecisionRecord(job=job, fleet=_record().fleet, policy=None, now=NOW, seed=11)
    source, _ = _source(record)
    assert source.plan.edges == [("sub0", "sub1"), ("sub1", "sub2")]
    results: dict[str, SlotResult] = {}
    for level in ("sub0", "sub1", "sub2"):
        later = [s for s in source.slots if s.subcircuit > level]
        for slot in [s for s in source.slots if s.subcircuit == level]:
            assert all(_run(source, record, s, results) is None for s in later)
            ran = _run(source, record, slot, results)
            assert ran is not None
            results[slot.key] = ran[1]
    status = source.finish(results)
    assert status.phase == "Succeeded" and status.verification is not None
    assert status.verification.passed and status.verification.method == "ExactStatevector"
