"""A job's policy in the operator's planning (no cluster): the decision record decided as the
operator decides it, its fragment source, and the queue's joint plan.

``hardware.idealSimulators`` and ``scheduler.splitFidelityGap`` choose a cut job's plan and
the QPUs each subcircuit may use, as in ``qbackbone run``; ``scheduler.shotSplitting: Always``
keeps the decision's split by speed through admission; a mitigated Estimator share is planned
with the shots its QPU's mitigation runs (Readout 2x, ZNE 4x), so a deadline one QPU cannot
meet once they are counted splits the job.
"""

from __future__ import annotations

from typing import Any

from qiskit import qasm2

from qbackbone.core.pipeline.distributed import cut_plan_for
from qbackbone.core.scheduling.admission import Admit
from qbackbone.k8s.admission import AdmissionRecord, committed_work
from qbackbone.k8s.decision import DecisionRecord
from qbackbone.k8s.fragments import SINGLE, CutSource, cut_plan
from qbackbone.k8s.queue import FleetQueue, Waiting
from qbackbone.k8s.single import SingleSource
from tests.operator.kit import ENTANGLED_QASM, qpunode, quantum_job
from tests.operator.test_moves import NOW
from tests.operator.test_queue import Clock
from tests.pipeline.test_distributed import chain_circuit
from tests.pipeline.test_joint import ghz

CUT_OBSERVABLES = ["ZZZZZZZZZZ", "IIIIZZIIII"]
# A noisy 7-qubit device beside 6- and 5-qubit ideal QPUs (tests/pipeline/test_placement.py).
CUT_FLEET = [qpunode("nairobi", "fake", "fake_nairobi"),
             qpunode("ideal-6", "aer", "aer_simulator", qubits=6),
             qpunode("ideal-5", "aer", "aer_simulator", qubits=5)]
SLOW = {"shotTime": "1ms", "setupTime": "1s"}
QASM3 = ENTANGLED_QASM
OBSERVABLES3 = ["ZZI", "IZZ", "IIZ", "XXX"]  # two measured bases


def record(job: dict[str, Any], fleet: list[dict[str, Any]], **spec: Any) -> DecisionRecord:
    """The record the operator stores: the job, the QPUNodes, the ``default`` policy."""
    job["metadata"].update(namespace="ns", uid=f"uid-{job['metadata']['name']}",
                           generation=1)
    policy = None if not spec else {"apiVersion": "qbackbone.io/v1alpha1",
                                    "kind": "InvocationPolicy",
                                    "metadata": {"name": "default"}, "spec": spec}
    return DecisionRecord(job=job, fleet=fleet, policy=policy, now=NOW, seed=7)


def cut_source(rec: DecisionRecord) -> CutSource:
    decided = rec.decide(rec.start())
    assert decided.qip.path == "Distributed", decided.qip.message
    plan, _ = cut_plan(decided, None)
    assert plan is not None
    return CutSource(decided, plan, rec.stamp)


def test_a_cut_job_is_planned_with_its_policys_ideal_simulators_and_gap() -> None:
    """With idealSimulators Allowed the 6 + 5 plan on the ideal QPUs wins, as in-process; by
    default (Fallback) every subcircuit runs on the noisy QPU that fits it."""
    job = quantum_job("cut", qasm2.dumps(chain_circuit(10, seed=3)), CUT_OBSERVABLES,
                      shots=1000)
    allowed = cut_source(record(job, CUT_FLEET, hardware={"idealSimulators": "Allowed"}))
    assert sorted(s.qubits for s in allowed.plan.subcircuits) == [5, 6]
    needs = allowed.needs()
    assert {q for need in needs for q in need.qpus} == {"ideal-6", "ideal-5"}
    assert all(need.fixed == () and need.multiplier(q) == 1.0
               for need in needs for q in need.qpus)
    decided = allowed.decided
    policy = decided.reduced.policy.spec
    assert decided.reduced.observables is not None
    in_process = cut_plan_for(decided.reduced.circuit, decided.reduced.observables,
                              decided.fleet, decided.qip.eligible, policy.cutting,
                              decided.reduced.shots, decided.seed,
                              policy.hardware.ideal_simulators,
                              policy.scheduler.split_fidelity_gap)
    assert allowed.plan.model_dump() == in_process.model_dump()
    slot = allowed.slots[0]
    assert allowed.work(slot, slot.qpu, 0, {}) is not None  # the ideal QPU passes the check

    fallback = cut_source(record(quantum_job("cut", qasm2.dumps(chain_circuit(10, seed=3)),
                                             CUT_OBSERVABLES, shots=1000), CUT_FLEET))
    assert {q for need in fallback.needs() for q in need.qpus} == {"nairobi"}


def test_shot_splitting_always_keeps_the_decisions_split_through_admission() -> None:
    """The plan alone would put a job without a deadline on one QPU (one setup); Always keeps
    the decision's split by speed, as ``qbackbone run`` runs it."""
    fleet = [qpunode("qa", "aer", "aer_simulator", qubits=8, **SLOW),
             qpunode("qb", "aer", "aer_simulator", qubits=8, shotTime="2ms", setupTime="1s")]
    clock = Clock()
    admitted = {}
    for mode in ("WhenDeadlineNeeds", "Always"):
        job = quantum_job(f"split-{mode.lower()}", ghz(4), ["ZZZZ"], shots=3000)
        rec = record(job, fleet, scheduler={"shotSplitting": mode})
        source = SingleSource(rec.decide(rec.start()))
        waiting = Waiting.of(mode, source, source.decided, None)
        placement = FleetQueue(clock=clock).place(waiting, frozenset({"qa", "qb"}),
                                                  lambda: [])
        assert isinstance(placement.decision, Admit), placement
        admitted[mode] = placement.decision.shares[0]
        if mode == "Always":
            assert waiting.needs[0].fixed == (("qa", 2000), ("qb", 1000))  # by speed
    assert len(admitted["WhenDeadlineNeeds"]) == 1
    assert admitted["Always"] == {"qa": 2000, "qb": 1000}


def test_always_keeps_a_locc_jobs_split_and_its_precedence() -> None:
    fleet = [qpunode(n, "aer", "aer_simulator", qubits=6, **SLOW) for n in ("qa", "qb")]
    job = quantum_job("locc", ghz(10), ["Z" + "I" * 8 + "Z"], shots=500,
                      execution={"mode": "Distributed"})
    source = cut_source(record(job, fleet, scheduler={"shotSplitting": "Always"}))
    assert source.staged is not None
    needs = source.needs()
    assert all(len(need.fixed) == 2 and sum(n for _, n in need.fixed) == need.shots
               for need in needs)
    queue = FleetQueue(clock=Clock())
    placement = queue.place(Waiting.of("locc", source, source.decided, None),
                            frozenset({"qa", "qb"}), lambda: [])
    admit = placement.decision
    assert isinstance(admit, Admit)
    for i, need in enumerate(needs):
        assert admit.shares[i] == dict(need.fixed)
    record_ = AdmissionRecord.from_placement(placement, admit, needs)
    for need in needs:
        for before in need.after:  # every preparation share after every measurement share
            ends = [t for t in record_.starts[before].values()]
            assert min(record_.starts[need.subcircuit].values()) > max(ends)


def test_a_mitigated_share_is_planned_with_its_shot_multiplier() -> None:
    """Two QPUs of one noisy device, readout mitigation (TREX, 2x shots): 2 bases x 1000
    shots run 4000 shots, 5 s on one QPU (1 s setup, 1 ms per shot). A 4 s deadline needs
    both; counted without the multiplier, one QPU would have seemed to do it in 3 s."""
    fleet = [qpunode(n, "fake", "fake_manila", **SLOW) for n in ("qn-a", "qn-b")]
    job = quantum_job("mitigated", QASM3, OBSERVABLES3, shots=1000)
    rec = record(job, fleet, mitigation={"zne": "Never", "readout": "Always"})
    source = SingleSource(rec.decide(rec.start()))
    assert sorted(source.decided.qip.eligible) == ["qn-a", "qn-b"]
    (need,) = source.needs()
    assert need.shots == 2000 and need.multiplier("qn-a") == need.multiplier("qn-b") == 2.0
    clock = Clock()
    placement = FleetQueue(clock=clock).place(
        Waiting.of("mitigated", source, source.decided, clock.now + 4.0),
        frozenset({"qn-a", "qn-b"}), lambda: [])
    admit = placement.decision
    assert isinstance(admit, Admit), placement
    assert admit.shares[0] == {"qn-a": 1000, "qn-b": 1000}  # requested shots per QPU
    assert abs(admit.end - 3.0) < 1e-6  # 1 s + 2000 shots x 1 ms on each
    source.assign({SINGLE: admit.shares[0]})
    assert [s.end for s in source.decided.qip.shares] == [3.0, 3.0]
    assert {s.key: source.slot_shots(s) for s in source.slots} == {"qn-a": 2000, "qn-b": 2000}


def test_committed_work_counts_the_mitigation_of_the_qpu_a_share_runs_on() -> None:
    """A share planned on an ideal QPU runs its shots once; moved onto a noisy QPU that
    mitigates with ZNE it runs four times as many there."""
    fleet = [qpunode("ideal", "aer", "aer_simulator", qubits=8),
             qpunode("noisy", "fake", "fake_manila")]
    job = quantum_job("moved", QASM3, OBSERVABLES3, shots=1000)
    rec = record(job, fleet, hardware={"idealSimulators": "Allowed"},
                 scheduler={"shotSplitting": "Always"},
                 mitigation={"zne": "Always", "readout": "Always"})
    source = SingleSource(rec.decide(rec.start()))
    assert sorted(source.decided.qip.eligible) == ["ideal", "noisy"]
    (need,) = source.needs()
    assert need.multiplier("ideal") == 1.0 and need.multiplier("noisy") == 4.0
    source.assign({SINGLE: dict(need.fixed)})
    slot = next(s for s in source.slots if s.qpu == "ideal")
    shots = source.shares["ideal"] * 2
    assert source.slot_shots(slot) == shots and source.slot_shots(slot, "noisy") == 4 * shots

    class Moved:  # the dispatcher's view: the ideal QPU's share now waits on the noisy one
        outstanding = [(slot, "noisy", None)]

    admitted = AdmissionRecord({SINGLE: dict(need.fixed)}, {}, "admitted")
    (work,) = committed_work([("uid", source, Moved(), admitted)])  # type: ignore[list-item]
    assert work.qpu == "noisy" and work.shots == 4 * shots
