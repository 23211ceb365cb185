"""Schedule several decided jobs together with the L3 scheduler (DESIGN.md section 5)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from qbackbone.api.policy import SchedulerOptions
from qbackbone.core import scheduling as sched
from qbackbone.core.execute.estimates import estimates_mitigated
from qbackbone.core.pipeline.decide import DecidedJob
from qbackbone.core.pipeline.distributed import cut_plan_for
from qbackbone.core.qpus.fleet import QPU


@dataclass(frozen=True)
class JointSchedule:
    """The scheduling problem built from the jobs, and the scheduler's answer."""

    problem: sched.Problem
    schedule: sched.Schedule
    skipped: dict[str, str]  # job -> why it is not on a QPU (classical, refused cut)


def scheduling_qpus(fleet: Sequence[QPU]) -> list[sched.QPU]:
    """The fleet in the scheduler's model (unbounded depth for ideal simulators)."""
    return [sched.QPU(q.name, q.descriptor.qubits, q.descriptor.max_depth or 10**9,
                      q.descriptor.shot_time, q.descriptor.setup_time,
                      available_at=0.0) for q in fleet if not q.descriptor.cordoned]


def scheduling_job(decided: DecidedJob, horizon: float) -> sched.Job:
    """One job in the scheduler's model: its subcircuits (cut or whole) and precedence.

    A job without a deadline gets ``horizon``, by which all work could finish in sequence.
    Each subcircuit may run only where its decision placed it: an uncut job on the QPUs the
    QIP made eligible (the chosen QPU and its noise class), a cut subcircuit on those its
    plan allows (ideal simulators as the policy says).
    """
    reduced, qip = decided.reduced, decided.qip
    name = decided.run.job.metadata.name
    deadline = reduced.deadline_remaining or horizon
    f = reduced.features
    policy = reduced.policy.spec
    if qip.path == "SingleQPU":
        # Shots run, mitigation included: the largest multiplier over the eligible QPUs.
        plans = {a.descriptor.name: a.mitigation for a in decided.assessments}
        by_name = {q.name: q for q in decided.fleet}
        expectation = reduced.observables is not None
        multiplier = max((plans[q].shot_multiplier for q in qip.eligible
                          if estimates_mitigated(by_name[q], expectation)), default=1.0)
        whole = sched.Subcircuit(qubits=f.qubits, depth=f.two_qubit_depth,
                                 shots=math.ceil(f.total_shots * multiplier),
                                 qpus=frozenset(qip.eligible))
        return sched.Job(name, 0.0, deadline, (whole,),
                         splittable=policy.scheduler.shot_splitting)
    assert reduced.observables is not None, "sampling jobs are never cut"
    plan = cut_plan_for(reduced.circuit, reduced.observables, decided.fleet, qip.eligible,
                        policy.cutting, reduced.shots, decided.seed,
                        policy.hardware.ideal_simulators, policy.scheduler.split_fidelity_gap)
    index = {s.name: i for i, s in enumerate(plan.subcircuits)}
    subcircuits = tuple(sched.Subcircuit(qubits=s.qubits, depth=s.two_qubit_depth,
                                         shots=s.shots, qpus=frozenset(s.eligible_qpus))
                        for s in plan.subcircuits)
    precedence = tuple((index[before], index[s.name])
                       for s in plan.subcircuits for before in s.depends_on)
    return sched.Job(name, 0.0, deadline, subcircuits, precedence,
                     splittable=policy.scheduler.shot_splitting)


def annealing_params(options: SchedulerOptions) -> sched.AnnealingParams:
    """The policy's scheduler fields; iterations and cooling only where the policy set them;
    ``timeBudgetSeconds`` and ``workBudget`` as ``time_limit`` and ``work_budget`` (unset:
    none, and the scheduler's automatic budget)."""
    explicit = options.model_fields_set
    return sched.AnnealingParams(
        iterations=options.iterations if "iterations" in explicit
        else sched.AnnealingParams().iterations,
        initial_temperature=options.initial_temperature,
        cooling_rate=options.cooling_rate if "cooling_rate" in explicit else None,
        seed=options.seed or 0,
        shot_splitting=options.shot_splitting,
        locc_aware=options.locc_aware,
        time_limit=options.time_budget_seconds,
        work_budget=options.work_budget,
    )


def schedule_jointly(decided: Sequence[DecidedJob], fleet: Sequence[QPU],
                     options: SchedulerOptions) -> JointSchedule:
    """Admit, split and order every quantum job's fragments over the fleet at once."""
    from qbackbone.core.cutting import CutPlanningError

    jobs, skipped, open_ended = [], {}, set()
    for d in decided:
        name = d.run.job.metadata.name
        if d.qip.path not in ("SingleQPU", "Distributed"):
            skipped[name] = f"path {d.qip.path}: runs on ordinary nodes"
            continue
        try:
            jobs.append(scheduling_job(d, horizon=0.0))
        except CutPlanningError as err:
            skipped[name] = f"no cut plan fits: {err}"
            continue
        if d.reduced.deadline_remaining is None:
            open_ended.add(name)
    qpus = scheduling_qpus(fleet)
    # Jobs without a deadline get a horizon by which all work fits in sequence on the
    # slowest QPU, so they are always servable and the chart keeps a sensible scale.
    setup, shot = max(((q.setup_time, q.shot_time) for q in qpus), default=(0.0, 0.0))
    horizon = sum(setup + sub.shots * shot for job in jobs for sub in job.subcircuits)
    horizon = max([horizon, *(j.deadline for j in jobs)])
    jobs = [replace(j, deadline=horizon) if j.name in open_ended else j for j in jobs]
    problem = sched.Problem(tuple(qpus), tuple(jobs))
    params = annealing_params(options)
    plan = sched.schedule(problem, options.algorithm, params)
    solved = sched.problem_for(problem, params)
    sched.check_schedule(solved, plan)
    return JointSchedule(solved, plan, skipped)
