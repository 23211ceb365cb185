"""Several jobs scheduled together with the L3 scheduler: valid, precedence kept, all served."""

from __future__ import annotations

from qiskit import QuantumCircuit, qasm2

from qbackbone.api.policy import SchedulerOptions
from qbackbone.core import scheduling as sched
from qbackbone.core.pipeline import decide_job, start_job
from qbackbone.core.pipeline.joint import annealing_params, schedule_jointly
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import make_job, make_qpu

FLEET = build_fleet([make_qpu("small", qubits=5), make_qpu("wide", qubits=8,
                                                          shotTime="60us", setupTime="1s")])


def ghz(width: int) -> str:
    circuit = QuantumCircuit(width)
    circuit.h(0)
    for q in range(width - 1):
        circuit.cx(q, q + 1)
    return qasm2.dumps(circuit)


def test_jobs_are_scheduled_jointly_with_precedence_and_validated() -> None:
    jobs = [make_job(ghz(4), ["ZZZZ"], name="small-job", shots=1000, deadline="5m"),
            make_job(ghz(10), ["Z" + "I" * 8 + "Z"], name="cut-job", shots=500, deadline="10m"),
            make_job(ghz(3), ["ZZZ"], name="classical-job", execution={"mode": "Classical"})]
    decided = [decide_job(start_job(j), FLEET, {}) for j in jobs]
    joint = schedule_jointly(decided, FLEET, SchedulerOptions(seed=1))
    assert joint.skipped == {"classical-job": "path Classical: runs on ordinary nodes"}
    report = sched.validate(joint.problem, joint.schedule)
    assert report.valid, report.violations
    assert joint.schedule.served == 2
    cut = next(j for j in joint.problem.jobs if j.name == "cut-job")
    assert len(cut.subcircuits) >= 2 and cut.precedence  # LOCC measure -> prepare
    for before, after in cut.precedence:
        ends = [f.end for f in joint.schedule.fragments
                if f.job == "cut-job" and f.subcircuit == before]
        starts = [f.start for f in joint.schedule.fragments
                  if f.job == "cut-job" and f.subcircuit == after]
        assert max(ends) <= min(starts)


def test_policy_scheduler_fields_map_onto_annealing() -> None:
    params = annealing_params(SchedulerOptions(seed=4, shotSplitting=False, iterations=300))
    assert (params.seed, params.shot_splitting, params.iterations) == (4, False, 300)
    defaults = annealing_params(SchedulerOptions())
    assert defaults.iterations == sched.AnnealingParams().iterations  # unset: scheduler's own
    assert defaults.cooling_rate is None


def test_policy_budgets_map_onto_annealing_and_bound_the_joint_schedule() -> None:
    options = SchedulerOptions(seed=2, timeBudgetSeconds=5, workBudget=3000)
    params = annealing_params(options)
    assert (params.time_limit, params.work_budget) == (5.0, 3000)
    unset = annealing_params(SchedulerOptions())
    assert (unset.time_limit, unset.work_budget) == (None, None)  # the automatic budget
    jobs = [make_job(ghz(4), ["ZZZZ"], name=f"job-{i}", shots=2000, deadline="5m")
            for i in range(3)]
    decided = [decide_job(start_job(j), FLEET, {}) for j in jobs]
    joint = schedule_jointly(decided, FLEET, options)
    assert joint.schedule.method == "qb" and joint.schedule.served == 3
    assert joint.schedule.stats["work"] <= 1.1 * 3000
    greedy = schedule_jointly(decided, FLEET, SchedulerOptions(algorithm="greedyEDF"))
    assert greedy.schedule.method == "edf"
