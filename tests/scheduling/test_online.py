"""Re-planning keeps what already runs and plans the rest again."""

from __future__ import annotations

from qbackbone.core.scheduling import (
    AnnealingParams,
    InstanceParams,
    anneal,
    check_schedule,
    generate,
    make_fleet,
    render_gantt,
    replan,
)

from .conftest import make_job

PARAMS = AnnealingParams(iterations=200, seed=3)


def test_new_job_keeps_running_fragments_fixed() -> None:
    problem = generate(InstanceParams(n_jobs=10, n_qpus=4, load=1.0, deadline_coef=2.0, seed=5))
    first = anneal(problem, PARAMS)
    check_schedule(problem, first)
    now = sorted(f.start for f in first.fragments)[len(first.fragments) // 3] + 1e-3
    newcomer = make_job("late-arrival", now, now + 60.0, [2000], [5])
    solved, second = replan(problem, first, now, PARAMS, new_jobs=[newcomer])
    check_schedule(solved, second)
    started = {f for f in first.fragments if f.start < now}
    assert started and started <= set(second.fragments)
    assert {f.job for f in started} <= second.admitted
    assert all(f.start >= now for f in set(second.fragments) - started)
    assert "late-arrival" in second.admitted


def test_a_qpu_that_goes_away_gets_no_new_work() -> None:
    problem = generate(InstanceParams(n_jobs=8, n_qpus=4, load=0.8, deadline_coef=3.0, seed=6))
    first = anneal(problem, PARAMS)
    now = min(f.start for f in first.fragments) + 1e-3
    gone = next(f.qpu for f in first.fragments if f.start < now)
    fleet = [q for q in problem.qpus if q.name != gone]
    solved, second = replan(problem, first, now, PARAMS, qpus=fleet)
    check_schedule(solved, second)
    assert all(f.start < now for f in second.fragments if f.qpu == gone)


def test_gantt_png(tmp_path: object) -> None:
    from pathlib import Path

    problem = generate(InstanceParams(n_jobs=6, n_qpus=3, seed=2))
    s = anneal(problem, PARAMS)
    out = render_gantt(problem, s, Path(str(tmp_path)) / "g.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert make_fleet(3)[0].name == "kolkata-0"


def test_warm_start_from_a_previous_plan_is_one_more_start() -> None:
    """anneal(warm=plan) never serves fewer than anneal without it (the warm state is one
    more start), follows the plan's QPUs where they still serve, and ignores jobs and QPUs
    the plan names that the problem does not have."""
    from dataclasses import replace as dc_replace

    from qbackbone.core.scheduling import Fragment, InstanceParams, generate

    for seed in range(4):
        problem = generate(InstanceParams(n_jobs=14, n_qpus=4, load=1.5, deadline_coef=1.0,
                                          seed=seed))
        params = AnnealingParams(work_budget=20_000, seed=seed)
        strong = anneal(problem, AnnealingParams(work_budget=400_000, seed=seed))
        cold = anneal(problem, params)
        strange = Fragment("no-such-job", 0, "no-such-qpu", 5, 0.0, 1.0)
        warm_plan = dc_replace(strong, fragments=(*strong.fragments, strange))
        warm = anneal(problem, params, warm=warm_plan)
        check_schedule(problem, warm)
        assert warm.served >= cold.served
        assert warm.served >= strong.served  # the strong plan itself is one of its starts
