"""The stepwise pipeline (what the operator drives across reconciles and pods) gives the same
answer as run_job in one process."""

from __future__ import annotations

from qiskit import qasm2
from qiskit.circuit.random import random_circuit

from qbackbone.api.policy import InvocationPolicy
from qbackbone.core.pipeline import (
    decide_job,
    finish_classical,
    finish_single_qpu,
    plan_single_qpu,
    run_classical_fallback,
    run_job,
    start_job,
)
from qbackbone.core.pipeline.single import ShareOutcomes
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import make_job, make_qpu

FLEET = build_fleet([make_qpu("a", qubits=6), make_qpu("b", qubits=6, shotTime="30us")])
# Shots split over both QPUs whatever the deadline, so the steps cover several fragments.
SPLIT = {"default": InvocationPolicy.model_validate(
    {"metadata": {"name": "default"}, "spec": {"scheduler": {"shotSplitting": "Always"}}})}


def test_steps_match_run_job() -> None:
    job = make_job(qasm2.dumps(random_circuit(4, 4, max_operands=2, seed=9)),
                   ["ZZII", "XIIX", "IYZI"], shots=3000)
    whole = run_job(job, FLEET, SPLIT, seed=3)
    run = start_job(job)
    decided = decide_job(run, FLEET, SPLIT, seed=3)
    work = plan_single_qpu(decided)
    assert [w.qpu for w in work] == ["a", "b"]  # faster QPU (20us per shot) first, both used
    by_name = {q.name: q for q in FLEET}
    counts = {w.qpu: by_name[w.qpu].executor.run(w.circuits, w.shots, derive_seed(3, w.qpu))
              for w in work}
    stepped = finish_single_qpu(decided, ShareOutcomes(counts=counts))
    assert stepped.phase == whole.phase == "Succeeded"
    assert stepped.result == whole.result
    assert stepped.plan == whole.plan


def test_missing_fragment_counts_fail_the_job_clearly() -> None:
    job = make_job(qasm2.dumps(random_circuit(3, 3, seed=1)), ["ZZZ"], shots=500)
    decided = decide_job(start_job(job), FLEET, {})
    plan_single_qpu(decided)
    try:
        finish_single_qpu(decided, ShareOutcomes())
    except Exception as err:
        assert "no results from" in str(err)
    else:
        raise AssertionError("finishing without counts must fail")


def test_classical_steps() -> None:
    job = make_job(qasm2.dumps(random_circuit(3, 3, seed=2)), ["ZZZ"],
                   execution={"mode": "Classical"})
    decided = decide_job(start_job(job), FLEET, {})
    status = finish_classical(decided, run_classical_fallback(decided))
    assert status.phase == "Succeeded" and status.result is not None
    assert status.result.path == "Classical"
