"""Learned values in decisions: work moves off a QPU that is slower and noisier than its
QPUNode says, every learned value used is a rule with provenance, and a policy that does
not learn decides nominally."""

from __future__ import annotations

from qbackbone.api.common import ObjectMeta
from qbackbone.api.policy import InvocationPolicy, InvocationPolicySpec, LearningOptions
from qbackbone.api.qpunode import QPUNode, QPUNodeSpec
from qbackbone.api.quantumjob import CircuitSpec, QuantumJob, QuantumJobSpec
from qbackbone.core.circuits.features import CircuitFeatures
from qbackbone.core.history.record import JobRecord
from qbackbone.core.learning import apply_learning, learn
from qbackbone.core.pipeline.decide import decide_job
from qbackbone.core.pipeline.jobrun import start_job
from qbackbone.core.pipeline.optimize import decide_problem
from qbackbone.core.qip.engine import decide
from qbackbone.core.qip.inputs import JobInputs, OperationalContext, QPUAssessment
from qbackbone.core.qpus.descriptor import QPUDescriptor
from qbackbone.core.qpus.fleet import build_fleet
from tests.history.builders import fragment, record

OPTIONS = LearningOptions.model_validate({"enabled": True, "minSamples": 3})
FEATURES = CircuitFeatures(qubits=4, depth=20, two_qubit_depth=5, two_qubit_gates=8, size=40,
                           measured_bases=1, shots_per_basis=4000)
CONTEXT = OperationalContext(mode="Auto", deadline_remaining=8.0, classical_seconds=1.0,
                             classical_method="statevector")


def qpu(name: str) -> QPUDescriptor:
    return QPUDescriptor(name=name, provider="fake", backend_name=name, qubits=8,
                         device_qubits=8, ideal=False, shot_time=1e-3, setup_time=1.0,
                         max_depth=50, max_depth_derived=True, calibration=None)


def assessments() -> list[QPUAssessment]:
    return [QPUAssessment(qpu("drifted"), True, True, 5, 0.9),
            QPUAssessment(qpu("steady"), True, True, 5, 0.85)]


def history() -> list[JobRecord]:
    """The drifted QPU ran 2.5x slower and with three times the calibrated error rates."""
    return [record(f"j{i}", at=float(i), implied=0.9 ** 3,
                   fragments=[fragment("drifted", shots=1000.0 * (i + 1),
                                       actual=2.5 * (1.0 + i + 1.0), estimated=0.9)])
            for i in range(5)]


def test_static_decision_trusts_the_nominal_model() -> None:
    d = decide(JobInputs(FEATURES, CONTEXT, tuple(assessments())), InvocationPolicySpec())
    assert [s.qpu for s in d.shares] == ["drifted"]
    assert not [r for r in d.rules if r.name.startswith("learned")]


def test_learned_values_move_the_job_and_are_named_with_their_job_counts() -> None:
    view = apply_learning(assessments(), learn(history(), OPTIONS, now=10.0),
                          "expectation/q<=4/d<=10")
    d = decide(JobInputs(FEATURES, CONTEXT, tuple(view.assessments)), InvocationPolicySpec())
    assert [s.qpu for s in d.shares] == ["steady"]
    learned = {r.name: r for r in view.rules}
    assert set(learned) == {"learnedShotTimeFactor", "learnedSetupTimeFactor",
                            "learnedSuccessScale"}
    assert all(r.qpu == "drifted" and "from 5 job(s)" in str(r.threshold)
               for r in view.rules)
    assert abs(float(learned["learnedSuccessScale"].value or 0) - 3.0) < 1e-6
    drifted = view.assessments[0]
    assert drifted.descriptor.shot_time > 2e-3 and (drifted.estimated_fidelity or 1) < 0.75


def test_a_class_where_quantum_did_not_pay_goes_classical() -> None:
    bad = [record(f"q{i}", at=float(i), verified=False) for i in range(5)]
    good = [record(f"c{i}", at=float(i), path="Classical", fragments=[]) for i in range(5)]
    view = apply_learning(assessments(), learn(bad + good, OPTIONS, now=10.0),
                          "expectation/q<=4/d<=10")
    assert view.quantum_pays is False
    context = OperationalContext(**{**CONTEXT.__dict__, "quantum_pays": False,
                                    "quantum_pays_why": view.why})
    d = decide(JobInputs(FEATURES, context, tuple(view.assessments)), InvocationPolicySpec())
    assert d.path == "Classical" and "did not pay" in d.message
    rule = next(r for r in view.rules if r.name == "learnedQuantumPays")
    assert not rule.passed and "over 5 jobs" in str(rule.value)


def _decide_bell(learning: bool) -> list[str]:
    spec = QPUNodeSpec.model_validate({"backend": {"provider": "aer", "name": "aer_simulator"},
                                       "qubits": 4})
    fleet = build_fleet([QPUNode(metadata=ObjectMeta(name="sim"), spec=spec)])
    policy = InvocationPolicy(metadata=ObjectMeta(name="default"),
                              spec=InvocationPolicySpec.model_validate(
                                  {"learning": {"enabled": learning, "minSamples": 3}}))
    job = QuantumJob(metadata=ObjectMeta(name="bell"), spec=QuantumJobSpec(circuit=CircuitSpec(
        qasm='OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0],q[1];\n',
        observables=["ZZ"]), shots=100))
    records = [record(f"j{i}", at=float(i), fragments=[
        fragment("sim", shots=100.0 * (i + 1), setup=0.05, shot=2e-5, actual=1.0)])
        for i in range(4)]
    model = learn(records, policy.spec.learning, now=10.0)
    decided = decide_job(start_job(job), fleet, {"default": policy}, learned=model)
    assert decided.run.status.decision is not None
    return [r.name for r in decided.run.status.decision.rules if r.name.startswith("learned")]


def test_the_pipeline_uses_learning_only_when_the_policy_enables_it() -> None:
    assert _decide_bell(True) == ["learnedShotTimeFactor", "learnedSetupTimeFactor"]
    assert _decide_bell(False) == []


def test_a_problem_job_qaoa_circuit_is_decided_with_what_was_learned() -> None:
    spec = QPUNodeSpec.model_validate({"backend": {"provider": "aer", "name": "aer_simulator"},
                                       "qubits": 8})
    fleet = build_fleet([QPUNode(metadata=ObjectMeta(name="sim"), spec=spec)])
    names = []
    for learning in (True, False):
        policy = InvocationPolicy(metadata=ObjectMeta(name="default"),
                                  spec=InvocationPolicySpec.model_validate(
                                      {"learning": {"enabled": learning, "minSamples": 3}}))
        job = QuantumJob.model_validate({"metadata": {"name": "slices"}, "spec": {
            "execution": {"mode": "SingleQPU"}, "shots": 200, "problem": {"sliceAdmission": {
                "slackBits": 1, "resources": [{"name": "pop", "capacity": 3}],
                "slices": [{"name": f"s{i}", "revenue": i + 1, "demands": {"pop": 1 + i % 2}}
                           for i in range(3)]}}}})
        records = [record(f"j{i}", at=float(i), fragments=[
            fragment("sim", shots=100.0 * (i + 1), setup=0.05, shot=2e-5, actual=1.0)])
            for i in range(4)]
        model = learn(records, policy.spec.learning, now=10.0)
        decided = decide_problem(start_job(job), fleet, {"default": policy}, learned=model)
        assert decided.circuit_job is not None
        decision = decided.state.run.status.decision
        assert decision is not None
        names.append([r.name for r in decision.rules if r.name.startswith("learned")])
    assert names == [["learnedShotTimeFactor", "learnedSetupTimeFactor"], []]
