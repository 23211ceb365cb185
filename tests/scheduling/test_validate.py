"""The validator catches every kind of violation (it must, since every other test uses it)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qbackbone.core.scheduling import (
    Fragment,
    Job,
    Problem,
    Schedule,
    ScheduleError,
    check_schedule,
)
from qbackbone.core.scheduling import validate as validate_schedule

from .conftest import make_job, make_qpu


@pytest.fixture
def problem() -> Problem:
    qpus = (make_qpu("a", qubits=4), make_qpu("b", qubits=2))
    jobs = (
        make_job("j1", 0.0, 10.0, [2, 2], [2, 3], ((0, 1),)),
        make_job("j2", 1.0, 5.0, [2]),
    )
    return Problem(qpus, jobs)


@pytest.fixture
def good() -> Schedule:
    return Schedule(
        frozenset({"j1", "j2"}),
        (
            Fragment("j1", 0, "a", 1, 0.0, 1.5),
            Fragment("j1", 0, "b", 1, 0.0, 1.5),
            Fragment("j2", 0, "b", 2, 1.5, 4.0),
            Fragment("j1", 1, "a", 2, 1.5, 4.0),
        ),
    )


def test_valid_schedule_passes(problem: Problem, good: Schedule) -> None:
    assert check_schedule(problem, good) == {"j1", "j2"}


def _bad(problem: Problem, schedule: Schedule, match: str) -> None:
    report = validate_schedule(problem, schedule)
    assert not report.valid
    assert any(match in v for v in report.violations), report.violations
    with pytest.raises(ScheduleError):
        check_schedule(problem, schedule)


def _swap(s: Schedule, i: int, f: Fragment) -> Schedule:
    frags = list(s.fragments)
    frags[i] = f
    return Schedule(s.admitted, tuple(frags))


def test_ineligible_qpu(problem: Problem, good: Schedule) -> None:
    _bad(problem, _swap(good, 3, replace(good.fragments[3], qpu="b", start=4.0, end=6.5)),
         "not eligible")


def test_overlap(problem: Problem, good: Schedule) -> None:
    _bad(problem, _swap(good, 2, replace(good.fragments[2], start=1.0, end=3.5)), "at once")


def test_precedence(problem: Problem, good: Schedule) -> None:
    late_measure = replace(good.fragments[1], start=4.0, end=5.5)
    _bad(problem, _swap(good, 1, late_measure), "starts before")


def test_shot_total(problem: Problem, good: Schedule) -> None:
    _bad(problem, _swap(good, 1, replace(good.fragments[1], shots=2, end=2.5)), "shots")


def test_duration(problem: Problem, good: Schedule) -> None:
    _bad(problem, _swap(good, 2, replace(good.fragments[2], end=3.0)), "end should be")


def test_deadline(problem: Problem, good: Schedule) -> None:
    _bad(problem, _swap(good, 2, replace(good.fragments[2], start=4.0, end=6.5)), "deadline")


def test_arrival(problem: Problem, good: Schedule) -> None:
    _bad(problem, _swap(good, 2, replace(good.fragments[2], start=0.5, end=3.0)), "before")


def test_dropped_job_has_no_fragments(problem: Problem, good: Schedule) -> None:
    _bad(problem, Schedule(frozenset({"j1"}), good.fragments), "dropped job")


def test_busy_qpu_and_fixed_fragments(problem: Problem, good: Schedule) -> None:
    busy = Problem((make_qpu("a", qubits=4, available_at=1.0), problem.qpus[1]), problem.jobs)
    _bad(busy, good, "QPU busy")
    fixed = Problem(problem.qpus, problem.jobs, fixed=(Fragment("j2", 0, "b", 2, 1.0, 3.5),))
    _bad(fixed, good, "fixed fragment")


def test_a_running_job_may_end_late_but_is_not_served(problem: Problem) -> None:
    late = Fragment("j2", 0, "b", 2, 3.0, 5.5)
    p = Problem(problem.qpus, problem.jobs, fixed=(late,))
    report = validate_schedule(p, Schedule(frozenset({"j2"}), (late,), late=frozenset({"j2"})))
    assert report.valid and report.served == frozenset()


def test_recut_jobs_are_checked_against_their_lo_variant(chain_job: Job) -> None:
    qpus = (make_qpu("a", qubits=8, shot=0.001, setup=0.5), make_qpu("b", qubits=8, shot=0.001))
    problem = Problem(qpus, (chain_job,))
    lo = 100 * 256
    # LO: the three parts run at once on two QPUs, no precedence, 256 x base shots each
    frags = (
        Fragment("chain", 0, "a", lo, 0.0, 0.5 + lo * 0.001),
        Fragment("chain", 1, "b", lo, 0.0, 0.5 + lo * 0.001),
        Fragment("chain", 2, "a", lo, 0.5 + lo * 0.001, 1.0 + 2 * lo * 0.001),
    )
    recut = Schedule(frozenset({"chain"}), frags, recut=frozenset({"chain"}))
    assert check_schedule(problem, recut) == {"chain"}
    _bad(problem, replace(recut, recut=frozenset()), "shots")


def test_a_job_that_may_not_be_split_is_held_to_one_qpu(problem: Problem,
                                                        good: Schedule) -> None:
    whole = replace(problem.jobs[0], splittable=False)
    _bad(Problem(problem.qpus, (whole, problem.jobs[1])), good, "may not be split")


def test_allowed_qpus_restrict_eligibility(problem: Problem, good: Schedule) -> None:
    j1 = problem.jobs[0]
    only_a = replace(j1, subcircuits=(replace(j1.subcircuits[0], qpus=frozenset({"a"})),
                                      j1.subcircuits[1]))
    _bad(Problem(problem.qpus, (only_a, problem.jobs[1])), good, "not eligible")


def test_the_annealer_keeps_an_unsplittable_job_whole_and_honours_allowed_qpus() -> None:
    from qbackbone.core.scheduling import AnnealingParams, Subcircuit, anneal

    qpus = (make_qpu("a"), make_qpu("b"), make_qpu("c"))
    split_needed = Job("s", 0.0, 6.0, (Subcircuit(2, 5, 8, frozenset({"a", "b"})),))
    whole = Job("w", 0.0, 100.0, (Subcircuit(2, 5, 8),), splittable=False)
    plan = anneal(Problem(qpus, (split_needed, whole)), AnnealingParams(work_budget=20_000))
    check_schedule(Problem(qpus, (split_needed, whole)), plan)
    assert {f.qpu for f in plan.fragments_of("s")} == {"a", "b"}  # 8.5 s alone: split
    assert len({f.qpu for f in plan.fragments_of("w")}) == 1


# One notion of time (core/scheduling/timing.py): an absolute 1 ns, far below a shot time.
def _late_clock_problem() -> tuple[Problem, Schedule]:
    """Two jobs at t ~ 1000 s on one QPU (0.5 ms shots, no setup), back to back, the second
    ending exactly at its deadline."""
    qpu = make_qpu("a", shot=0.0005, setup=0.0)
    jobs = (make_job("x", 1000.0, 1001.0, [1000]), make_job("y", 1000.0, 1001.5, [1000]))
    frags = (Fragment("x", 0, "a", 1000, 1000.0, 1000.5),
             Fragment("y", 0, "a", 1000, 1000.5, 1001.0))
    return Problem((qpu,), jobs), Schedule(frozenset({"x", "y"}), frags)


def test_half_a_millisecond_late_or_overlapping_at_t_1000_is_rejected() -> None:
    problem, good = _late_clock_problem()
    assert check_schedule(problem, good) == {"x", "y"}
    tight = Problem(problem.qpus, (problem.jobs[0], replace(problem.jobs[1], deadline=1001.0)))
    assert check_schedule(tight, good) == {"x", "y"}
    late = Problem(problem.qpus, (problem.jobs[0], replace(problem.jobs[1],
                                                          deadline=1001.0 - 0.0005)))
    _bad(late, good, "after its deadline")
    overlap = _swap(good, 1, replace(good.fragments[1], start=1000.5 - 0.0005,
                                     end=1001.0 - 0.0005))
    _bad(problem, overlap, "at once")
    early = Problem(problem.qpus, (replace(problem.jobs[0], arrival=1000.0 + 0.0005),
                                   problem.jobs[1]))
    _bad(early, good, "starts before")


def test_float_noise_is_not_a_violation() -> None:
    problem, good = _late_clock_problem()
    noise = 3e-13  # a few ulps at t = 1000 s
    a, b = good.fragments
    jittered = Schedule(good.admitted, (
        replace(a, start=a.start - noise, end=a.end + noise),
        replace(b, start=b.start - noise, end=b.end + noise)))
    tight = Problem(problem.qpus, (replace(problem.jobs[0], arrival=1000.0 + noise),
                                   replace(problem.jobs[1], deadline=1001.0 - noise)))
    assert check_schedule(tight, jittered) == {"x", "y"}
    # while 2 ns (above the tolerance, still far below a shot) is not noise
    _bad(Problem(problem.qpus, (problem.jobs[0], replace(problem.jobs[1],
                                                        deadline=1001.0 - 2e-9))),
         good, "after its deadline")


def test_the_scheduler_and_the_validator_share_one_deadline_test() -> None:
    from qbackbone.core.scheduling import placement, timing

    assert placement.on_time is timing.on_time
    assert timing.on_time(1001.0 + 0.5 * timing.TIME_EPS, 1001.0)
    assert not timing.on_time(1001.0 + 0.0005, 1001.0)
    assert timing.TIME_EPS <= 1e-9
