"""The operator's joint plan (``plan_waiting``): the policy's algorithm, budgets and seed."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from qbackbone.core.scheduling import (
    AnnealingParams,
    Fragment,
    Job,
    Problem,
    Subcircuit,
    anneal,
    check_schedule,
    random_schedule,
)
from qbackbone.core.scheduling.admission import (
    ONLINE_SECONDS,
    ONLINE_WORK_FLOOR,
    ONLINE_WORK_PER_JOB,
    online_params,
    plan_waiting,
    waiting_jobs,
)

from .conftest import make_qpu


def waiting_problem(n_jobs: int, seed: int = 0) -> Problem:
    """As the operator builds it: jobs released now (no cut plans: never re-cut), one
    admitted job running on ``a`` (a fixed fragment), deadlines from tight to roomy."""
    rng = random.Random(seed)
    qpus = (make_qpu("a", shot=0.01, setup=1.0), make_qpu("b", shot=0.01, setup=1.0),
            make_qpu("c", shot=0.02, setup=1.0))
    running = Job("committed:x", 0.0, 100.0, (Subcircuit(1, 0, 300, frozenset({"a"})),))
    jobs = [running]
    for i in range(n_jobs):
        subs = tuple(Subcircuit(2, 5, rng.choice([200, 500, 1000]))
                     for _ in range(rng.choice([1, 1, 2])))
        edges = ((0, 1),) if len(subs) == 2 else ()
        jobs.append(Job(f"w{i}", 0.0, rng.uniform(3.0, 25.0), subs, edges))
    fixed = (Fragment("committed:x", 0, "a", 300, -1.0, 3.0),)
    return Problem(qpus, tuple(jobs), 0.0, fixed)


@pytest.mark.parametrize(("algorithm", "method"),
                         [("greedyEDF", "edf"), ("list", "list"), ("random", "random")])
def test_a_baseline_algorithm_is_what_plans(algorithm: str, method: str) -> None:
    for n_jobs in (1, 8):
        problem = waiting_problem(n_jobs)
        plan = plan_waiting(problem, algorithm, AnnealingParams(seed=2))
        assert plan.method == method
        assert "committed:x" in plan.admitted  # admitted work is never dropped
        check_schedule(problem, plan)


def test_the_random_baseline_uses_the_seed() -> None:
    problem = waiting_problem(8)
    for seed in (1, 2, 3):
        plan = plan_waiting(problem, "random", AnnealingParams(seed=seed))
        assert plan.fragments == random_schedule(problem, seed).fragments


def test_annealing_places_one_waiting_job_greedily_and_several_with_the_annealer() -> None:
    problem = waiting_problem(1)
    roomy = replace(problem, jobs=(problem.jobs[0], replace(problem.jobs[1], deadline=20.0)))
    one = plan_waiting(roomy, "annealing", AnnealingParams())
    assert one.method == "edf" and "w0" in one.admitted  # the fast path: EDF serves it
    hopeless = plan_waiting(problem, "annealing", AnnealingParams())  # 6 s > its 3.9 s
    assert hopeless.method == "qb" and "w0" not in hopeless.admitted
    several = plan_waiting(waiting_problem(8), "annealing", AnnealingParams())
    assert several.method == "qb"


def test_annealing_without_a_budget_has_the_online_budget_and_the_seed() -> None:
    budget = max(ONLINE_WORK_FLOOR, ONLINE_WORK_PER_JOB * 8)
    online = AnnealingParams(seed=5, work_budget=budget, time_limit=ONLINE_SECONDS)
    assert online_params(AnnealingParams(seed=5), 8) == online
    # roomy deadlines: the heuristics serve every job, so the plan is a function of the seed
    problem = waiting_problem(8)
    problem = replace(problem, jobs=tuple(replace(j, deadline=200.0) for j in problem.jobs))
    for seed in (5, 6):
        plan = plan_waiting(problem, "annealing", AnnealingParams(seed=seed))
        same = anneal(problem, replace(online, seed=seed))
        assert plan.fragments == same.fragments and plan.served == 9
        assert plan.stats["work"] == same.stats["work"] <= 1.1 * budget


def test_the_online_budget_bounds_the_latency() -> None:
    """Nothing admitted yet and jobs the heuristics cannot all serve: the CP-SAT step runs,
    within the online wall-clock cap (uncapped it took 2-4 s here)."""
    problem = waiting_problem(20)
    problem = replace(problem, jobs=problem.jobs[1:], fixed=())
    plan = plan_waiting(problem, "annealing", AnnealingParams())
    assert plan.stats["seconds"] < ONLINE_SECONDS + 1.5
    check_schedule(problem, plan)


def test_annealing_honours_the_policys_work_budget() -> None:
    problem = waiting_problem(8)
    small = plan_waiting(problem, "annealing", AnnealingParams(seed=1, work_budget=2_000))
    large = plan_waiting(problem, "annealing", AnnealingParams(seed=1, work_budget=60_000))
    assert small.stats["work"] <= 1.1 * 2_000 < large.stats["work"]
    assert large.stats["work"] > max(ONLINE_WORK_FLOOR, ONLINE_WORK_PER_JOB * 8)  # not capped
    check_schedule(problem, small)


def test_annealing_honours_the_policys_time_budget() -> None:
    """A time budget replaces the online budget: 10 ms stops the search at once, with a
    valid plan (the portfolio's best)."""
    problem = waiting_problem(20)
    params = online_params(AnnealingParams(time_limit=0.01), 20)
    assert params.work_budget is None and params.time_limit == 0.01
    untimed = plan_waiting(problem, "annealing", AnnealingParams())
    timed = plan_waiting(problem, "annealing", AnnealingParams(time_limit=0.01))
    assert timed.stats["iterations"] < untimed.stats["iterations"]
    assert timed.stats["seconds"] < 2.0
    check_schedule(problem, timed)


def test_the_plan_never_re_cuts_and_names_unknown_algorithms() -> None:
    assert online_params(AnnealingParams(locc_aware=False), 3).locc_aware
    with pytest.raises(ValueError, match="unknown scheduler algorithm"):
        plan_waiting(waiting_problem(2), "fifo", AnnealingParams())
    assert len(waiting_jobs(waiting_problem(2))) == 2
