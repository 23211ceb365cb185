"""The exact model with fragments that already run (``Problem.fixed``), as re-planning has them.

Semantics checked against the heuristics' (placement.Compiled) and the validator: fixed
fragments kept as they are, their jobs admitted with the shots left, new fragments after
``now``, a committed job that cannot make its deadline admitted and late (not served).
The optimum on tiny residual problems comes from an exhaustive search written here (the
shared ``bruteforce.py`` knows neither ``now`` nor fixed fragments).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import replace

import pytest

from qbackbone.core.scheduling import (
    QPU,
    AnnealingParams,
    Fragment,
    InstanceParams,
    Job,
    Problem,
    Schedule,
    Subcircuit,
    anneal,
    generate,
    replan,
    solve_exact,
    validate,
)
from qbackbone.core.scheduling.exact_step import EXACT_MAX_FRAGMENTS, exact_size
from qbackbone.core.scheduling.timing import no_overlap, on_time

from .conftest import make_job, make_qpu, tiny_problem

FAST = AnnealingParams(iterations=200, seed=1)


# -- an exhaustive optimum with fixed fragments ---------------------------------------------

Frag = tuple[str, int, int, int]  # job, subcircuit, qpu index, shots


def _splits(shots: int, qpus: list[int]) -> list[list[tuple[int, int]]]:
    out = []
    for k in range(1, len(qpus) + 1):
        for chosen in itertools.combinations(qpus, k):
            for cut in itertools.combinations(range(1, shots), k - 1):
                bounds = (0, *cut, shots)
                out.append([(q, bounds[i + 1] - bounds[i]) for i, q in enumerate(chosen)])
    return out


def fixed_optimum(problem: Problem) -> int:
    """Most jobs served: every job subset admitted on time plus every committed job (on time
    or late), every split of the shots left over usable QPUs (one new fragment per QPU),
    every precedence-feasible order of the new fragments, each started as early as it fits
    (gaps between fixed fragments included): the active schedules, which hold an optimum."""
    jobs = {j.name: j for j in problem.jobs}
    left = {j.name: [s.shots for s in j.subcircuits] for j in problem.jobs}
    fixed_end: dict[tuple[str, int], float] = {}
    busy0: list[list[tuple[float, float]]] = [[] for _ in problem.qpus]
    qidx = {q.name: i for i, q in enumerate(problem.qpus)}
    for f in problem.fixed:
        left[f.job][f.subcircuit] -= f.shots
        key = (f.job, f.subcircuit)
        fixed_end[key] = max(fixed_end.get(key, -math.inf), f.end)
        busy0[qidx[f.qpu]].append((f.start, f.end))
    committed = sorted({f.job for f in problem.fixed})
    optional = [n for n in jobs if n not in committed]

    def options(name: str) -> list[list[list[Frag]]]:
        out = []
        for s, sub in enumerate(jobs[name].subcircuits):
            if left[name][s] > 0:
                usable = [i for i, q in enumerate(problem.qpus)
                          if q.can_run(sub) and math.isfinite(q.available_at)]
                out.append([[(name, s, q, n) for q, n in split]
                            for split in _splits(left[name][s], usable)])
        return out

    def best_order(frags: list[Frag], must: set[str]) -> int:
        """Most committed jobs on time over all orders; -1 if some job in ``must`` is late."""
        best = -1
        todo = {(f[0], f[1]) for f in frags}

        def rec(rest: list[Frag], busy: list[list[tuple[float, float]]],
                end: dict[tuple[str, int], float]) -> None:
            nonlocal best
            if not rest:
                done = sum(
                    all(on_time(max(end.get((c, s), -math.inf),
                                    fixed_end.get((c, s), -math.inf)), jobs[c].deadline)
                        for s in range(len(jobs[c].subcircuits)))
                    for c in committed)
                best = max(best, done)
                return
            for i, (name, s, q, n) in enumerate(rest):
                job = jobs[name]
                preds = [a for a, b in job.precedence if b == s]
                if any((name, a) in todo and any(r[:2] == (name, a) for r in rest)
                       for a in preds):
                    continue
                qpu = problem.qpus[q]
                dur = qpu.setup_time + n * qpu.shot_time
                t = max([job.arrival, problem.now, qpu.available_at,
                         *(max(end.get((name, a), -math.inf),
                               fixed_end.get((name, a), -math.inf)) for a in preds)])
                for a, b in sorted(busy[q]):
                    if no_overlap(t + dur, a):
                        break
                    t = max(t, b)
                if name in must and not on_time(t + dur, job.deadline):
                    continue
                nb = list(busy)
                nb[q] = [*busy[q], (t, t + dur)]
                ne = dict(end)
                ne[(name, s)] = max(end.get((name, s), -math.inf), t + dur)
                rec(rest[:i] + rest[i + 1:], nb, ne)

        rec(frags, busy0, {})
        return best

    best = -1
    for k in range(len(optional), -1, -1):
        if k + len(committed) <= best:
            break
        for subset in itertools.combinations(optional, k):
            opts = [o for name in (*subset, *committed) for o in options(name)]
            for combo in itertools.product(*opts):
                got = best_order([f for part in combo for f in part], set(subset))
                if got >= 0:
                    best = max(best, k + got)
    return best


# -- helpers --------------------------------------------------------------------------------


def check_exact_plan(residual: Problem, sched: Schedule) -> None:
    """Valid, every fixed fragment kept, committed jobs admitted, new work after ``now``,
    nothing new on a QPU that is gone, ``served`` as the validator counts it."""
    report = validate(residual, sched)
    assert report.valid, report.violations
    assert set(residual.fixed) <= set(sched.fragments)
    assert {f.job for f in residual.fixed} <= sched.admitted
    assert sched.late <= {f.job for f in residual.fixed}
    assert len(report.served) == sched.served
    gone = {q.name for q in residual.qpus if not math.isfinite(q.available_at)}
    for f in set(sched.fragments) - set(residual.fixed):
        assert f.start >= residual.now - 1e-9 and f.qpu not in gone


def remaining_subcircuits(problem: Problem) -> int:
    """Subcircuits with shots left to plan."""
    ran: dict[tuple[str, int], int] = {}
    for f in problem.fixed:
        ran[(f.job, f.subcircuit)] = ran.get((f.job, f.subcircuit), 0) + f.shots
    return sum(s.shots > ran.get((j.name, i), 0)
               for j in problem.jobs for i, s in enumerate(j.subcircuits))


# -- (a) solve_exact on re-planned problems -------------------------------------------------


def tiny_residuals(seed: int) -> Iterator[tuple[Problem, Schedule]]:
    """Re-planned tiny problems: at a quarter second into each fragment of the first plan,
    the residual as ``replan`` builds it, the same with QPU "b" gone, and the residual with
    every deadline 1.5 s earlier (so committed jobs may have to end late)."""
    problem = tiny_problem(seed)
    first = anneal(problem, FAST)
    for now in sorted({f.start + 0.25 for f in first.fragments}):
        residual, second = replan(problem, first, now, FAST)
        yield residual, second
        yield replan(problem, first, now, FAST, qpus=[problem.qpu("a")])
        tight = tuple(replace(j, deadline=max(j.arrival, j.deadline - 1.5))
                      for j in residual.jobs)
        tighter = replace(residual, jobs=tight)
        yield tighter, anneal(tighter, FAST)


@pytest.mark.parametrize("seed", range(12))
def test_tiny_replans_match_the_exhaustive_optimum(seed: int) -> None:
    checked = 0
    for residual, heuristic in tiny_residuals(seed):
        assert validate(residual, heuristic).valid
        if remaining_subcircuits(residual) > 5:
            continue  # keep the exhaustive search small
        exact = solve_exact(residual, time_limit=10.0, unit=1e-3, workers=1)
        assert exact.status == "OPTIMAL" and exact.schedule is not None
        check_exact_plan(residual, exact.schedule)
        assert exact.served == fixed_optimum(residual), (residual, exact.schedule)
        assert exact.served >= heuristic.served
        checked += 1
    assert checked


def test_generated_replans_are_valid_and_at_least_anneal() -> None:
    solved = 0
    for n_jobs, n_qpus, seed in [(5, 3, 0), (5, 3, 1), (5, 3, 3), (8, 4, 0), (8, 4, 3)]:
        problem = generate(InstanceParams(n_jobs=n_jobs, n_qpus=n_qpus, load=2.0,
                                          deadline_coef=1.0, seed=seed))
        first = anneal(problem, FAST)
        starts = sorted(f.start for f in first.fragments)
        now = starts[len(starts) // 2] + 1e-3
        residual, second = replan(problem, first, now, FAST)
        assert residual.fixed
        exact = solve_exact(residual, time_limit=20.0, hint=second, workers=1,
                            deterministic_limit=0.1)
        assert exact.schedule is not None
        check_exact_plan(residual, exact.schedule)
        assert exact.served >= second.served
        solved += exact.status == "OPTIMAL"
    assert solved >= 4


def test_a_gone_qpu_keeps_its_fixed_fragments_only() -> None:
    problem = generate(InstanceParams(n_jobs=5, n_qpus=3, load=1.5, deadline_coef=1.5, seed=6))
    first = anneal(problem, FAST)
    now = min(f.start for f in first.fragments) + 1e-3
    gone = next(f.qpu for f in first.fragments if f.start < now)
    fleet = [q for q in problem.qpus if q.name != gone]
    residual, second = replan(problem, first, now, FAST, qpus=fleet)
    assert not math.isfinite(residual.qpu(gone).available_at)
    exact = solve_exact(residual, time_limit=10.0, hint=second, workers=1,
                        deterministic_limit=0.1)
    assert exact.schedule is not None
    check_exact_plan(residual, exact.schedule)
    assert exact.served >= second.served


def test_fixed_fragments_round_outward_and_neighbours_merge() -> None:
    """Off the grid (unit 1 ms): two fixed fragments back to back at x.0004 would overlap on
    the grid if each were rounded outward alone; the new fragment goes after them."""
    qpus = (make_qpu("a", shot=1.0, setup=0.0),)
    r = make_job("r", 0.0, 10.0, [1, 1, 1], edges=((0, 1), (1, 2)))
    fixed = (Fragment("r", 0, "a", 1, 0.0004, 1.0004), Fragment("r", 1, "a", 1, 1.0004, 2.0004))
    problem = Problem(qpus, (r,), now=1.5, fixed=fixed)
    exact = solve_exact(problem, time_limit=5.0, unit=1e-3, workers=1)
    assert exact.status == "OPTIMAL" and exact.schedule is not None
    check_exact_plan(problem, exact.schedule)
    new = [f for f in exact.schedule.fragments if f not in fixed]
    assert [(f.subcircuit, f.start) for f in new] == [(2, pytest.approx(2.001))]
    assert exact.served == 1


# -- (b) anneal runs CP-SAT on residual problems ---------------------------------------------


def test_anneal_runs_cpsat_on_small_residual_problems() -> None:
    ran = 0
    for seed in (0, 1, 3):
        problem = generate(InstanceParams(n_jobs=5, n_qpus=3, load=2.0, deadline_coef=1.0,
                                          seed=seed))
        first = anneal(problem, FAST)
        starts = sorted(f.start for f in first.fragments)
        now = starts[len(starts) // 2] + 1e-3
        residual, second = replan(problem, first, now, FAST)
        size = exact_size(residual)
        assert residual.fixed and size is not None
        assert validate(residual, second).valid
        if second.served < len(residual.jobs) and size <= EXACT_MAX_FRAGMENTS:
            assert second.stats["exact"] == 1.0
            assert second.stats["exact_served"] <= second.served
            ran += 1
    assert ran


def test_cpsat_wins_on_a_residual_problem_and_stays_deterministic() -> None:
    """The tiny instance the annealer alone serves 2 of 3 on (test_schedulers), shifted to
    now = 1 with a committed job whose first subcircuit ran before it and whose second is left
    to plan: CP-SAT serves all four."""
    qpus = (QPU("a", 4, 50, 1.0, 1.0), QPU("b", 4, 50, 2.0, 1.0))
    jobs = (
        Job("j0", 3.0, 11.0, (Subcircuit(2, 5, 2), Subcircuit(2, 5, 5)), ((0, 1),)),
        Job("j1", 3.0, 10.0, (Subcircuit(2, 5, 1),)),
        Job("j2", 1.0, 6.0, (Subcircuit(2, 5, 2),)),
        Job("r", -1.0, 30.0, (Subcircuit(2, 5, 1), Subcircuit(2, 5, 1)), ((0, 1),)),
    )
    fixed = (Fragment("r", 0, "a", 1, -1.0, 1.0),)
    problem = Problem(qpus, jobs, now=1.0, fixed=fixed)
    assert exact_size(problem) == 2 * (2 + 1 + 1 + 1)
    assert fixed_optimum(problem) == 4
    runs = [anneal(problem, AnnealingParams(iterations=1000, seed=s)) for s in (0, 0, 1)]
    for qb in runs:
        check_exact_plan(problem, qb)
        assert qb.served == 4 and qb.stats["exact"] == 1.0
    assert runs[0] == runs[1] and runs[0].stats["component"] == runs[1].stats["component"]


# -- (c) a committed job that must be late ---------------------------------------------------


def test_a_committed_job_that_must_be_late_stays_admitted_and_late() -> None:
    qpus = (make_qpu("a", shot=1.0, setup=0.5), make_qpu("b", shot=1.0, setup=0.5))
    late = make_job("late", 0.0, 4.0, [2, 2], edges=((0, 1),))
    done_late = make_job("done", 0.0, 1.0, [1])  # its only fragment already ended late
    other = make_job("other", 3.0, 6.0, [2])
    fixed = (Fragment("late", 0, "a", 2, 0.0, 2.5), Fragment("done", 0, "b", 1, 0.0, 1.5))
    problem = Problem(qpus, (late, done_late, other), now=3.0, fixed=fixed)
    exact = solve_exact(problem, time_limit=5.0, unit=1e-3, workers=1)
    assert exact.status == "OPTIMAL" and exact.schedule is not None
    s = exact.schedule
    check_exact_plan(problem, s)
    assert s.admitted == {"late", "done", "other"}
    assert s.late == {"late", "done"} and s.served == exact.served == 1
    assert sum(f.shots for f in s.fragments_of("late") if f.subcircuit == 1) == 2
    assert fixed_optimum(problem) == 1
    qb = anneal(problem, FAST)  # the heuristics agree on what is admitted, late and served
    check_exact_plan(problem, qb)
    assert (qb.admitted, qb.late, qb.served) == (s.admitted, s.late, s.served)


def test_a_committed_job_on_time_only_if_it_goes_first() -> None:
    """Serving the committed job needs the one QPU right after ``now``; the optional job
    then misses its deadline: the optimum serves one of the two, and CP-SAT keeps the
    committed one admitted either way."""
    qpus = (make_qpu("a", shot=1.0, setup=0.0),)
    c = make_job("c", 0.0, 5.0, [2, 2], edges=((0, 1),))
    o = make_job("o", 2.0, 4.5, [2])
    problem = Problem(qpus, (c, o), now=2.0, fixed=(Fragment("c", 0, "a", 2, 0.0, 2.0),))
    exact = solve_exact(problem, time_limit=5.0, unit=1e-3, workers=1)
    assert exact.schedule is not None and exact.served == 1 == fixed_optimum(problem)
    check_exact_plan(problem, exact.schedule)
    assert "c" in exact.schedule.admitted
    # hinted with "serve o, c late", the proof still ends at one job
    hint = Schedule(frozenset({"c", "o"}), (
        *problem.fixed, Fragment("o", 0, "a", 2, 2.0, 4.0), Fragment("c", 1, "a", 2, 4.0, 6.0)),
        late=frozenset({"c"}))
    assert validate(problem, hint).valid
    again = solve_exact(problem, time_limit=5.0, unit=1e-3, workers=1, hint=hint)
    assert again.status == "OPTIMAL" and again.served == 1 and again.bound == 1.0
    assert again.schedule is not None and "c" in again.schedule.admitted


@pytest.mark.parametrize("seed", range(4))
def test_the_exhaustive_search_here_agrees_with_the_shared_one(seed: int) -> None:
    """Without fixed fragments (now = 0) it is the shared brute force's problem."""
    from .bruteforce import brute_force_optimum

    problem = tiny_problem(seed)
    assert fixed_optimum(problem) == brute_force_optimum(problem)
