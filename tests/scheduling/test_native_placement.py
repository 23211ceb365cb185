"""The compiled placement engine (qbackbone.core.scheduling._placement) against the pure-Python
reference: the same fragments, bit for bit, on random timelines, random QPU choices and whole
scheduler runs.

CI sets QB_REQUIRE_NATIVE=1, so a build that silently fell back to Python fails here instead of
skipping; elsewhere the comparisons skip when the engine was not built (no cargo)."""

from __future__ import annotations

import os
import random
from dataclasses import replace

import pytest

from qbackbone.core.scheduling import (
    AnnealingParams,
    InstanceParams,
    Problem,
    anneal,
    edf,
    generate,
    random_schedule,
    replan,
)
from qbackbone.core.scheduling.engine import chosen_engine, native_available
from qbackbone.core.scheduling.placement import Compiled, PyBusy
from qbackbone.core.scheduling.waterfill import waterfill

pytestmark = pytest.mark.skipif(
    not native_available() and os.environ.get("QB_REQUIRE_NATIVE") != "1",
    reason="the compiled engine is not built (no cargo at install time)")


def test_native_engine_is_built_when_required() -> None:
    assert native_available(), "the compiled engine missing: the install did not build it"
    assert chosen_engine() == "native"
    assert chosen_engine("python") == "python"
    with pytest.raises(ValueError, match="scheduler engine"):
        chosen_engine("fortran")


def _pair(problem: Problem) -> tuple[Compiled, Compiled]:
    return Compiled(problem, engine="python"), Compiled(problem, engine="native")


def _busy_with_random_work(py: Compiled, nat: Compiled, rng: random.Random
                           ) -> tuple[PyBusy, object]:
    """The same random busy intervals in both engines' timelines."""
    a, b = py.fresh(), nat.fresh()
    assert isinstance(a, PyBusy)
    for q in range(len(py.qpus)):
        t = rng.uniform(0, 5)
        for _ in range(rng.randint(0, 6)):
            start = t + rng.uniform(0, 3)
            end = start + rng.uniform(0.1, 4)
            a.insert(q, start, end)
            b.insert(q, start, end)
            t = end
    return a, b


@pytest.mark.parametrize("seed", range(6))
def test_place_job_matches_reference_on_random_states(seed: int) -> None:
    rng = random.Random(seed)
    problem = generate(InstanceParams(n_jobs=12, n_qpus=5, load=1.5, deadline_coef=1.0,
                                      seed=seed))
    py, nat = _pair(problem)
    for trial in range(40):
        a, b = _busy_with_random_work(py, nat, rng)
        j = rng.randrange(len(py.jobs))
        jd = py.jobs[j]
        choices = []
        for elig in jd.eligible:
            u = rng.random()
            if u < 0.4 or not elig:
                choices.append(None)
            elif u < 0.5:
                choices.append(())
            else:
                choices.append(tuple(sorted(rng.sample(elig, rng.randint(1, len(elig))))))
        split = rng.random() < 0.7
        got_py = py.place(a, j, choices, split)
        got_nat = nat.place(b, j, choices, split)
        assert got_nat == got_py, (trial, choices, split)
        assert [tuple(map(tuple, t)) for t in b.timelines()] == a.timelines()


@pytest.mark.parametrize("seed", range(4))
def test_waterfill_matches_reference(seed: int) -> None:
    from qbackbone.core.scheduling import _placement

    rng = random.Random(seed)
    for _ in range(300):
        k = rng.randint(1, 8)
        avail = [round(rng.uniform(0, 10), rng.choice((0, 3, 7))) for _ in range(k)]
        rate = [rng.choice((0.5, 1.0, 1.5, 1e-4, 3.3e-4)) for _ in range(k)]
        mins = [rng.choice((0.0, 1.0, 2.0)) for _ in range(k)]
        shots = rng.randint(1, 50_000)
        assert _placement.waterfill(shots, avail, rate, mins) == waterfill(shots, avail, rate,
                                                                            mins)


CASES = [InstanceParams(n_jobs=n, n_qpus=q, load=load, deadline_coef=coef, seed=seed)
         for n, q, load, coef, seed in [(10, 4, 1.0, 1.5, 0), (25, 6, 1.5, 1.0, 1),
                                        (40, 8, 1.0, 0.75, 2), (60, 12, 2.0, 1.5, 3)]]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.n_jobs}x{c.n_qpus}")
def test_scheduler_runs_identical_with_either_engine(case: InstanceParams,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole runs (the annealer with its portfolio, baselines, online re-planning) give the
    same schedules with the compiled engine as with the reference."""
    problem = generate(case)
    params = AnnealingParams(work_budget=60_000, seed=case.seed)
    out = {}
    for engine in ("python", "native"):
        monkeypatch.setenv("QB_SCHEDULER_ENGINE", engine)
        sched = anneal(problem, params)
        later = max(j.arrival for j in problem.jobs) / 2
        _, replanned = replan(problem, sched, later, params)
        out[engine] = (sched.fragments, sched.admitted, sched.recut,
                       edf(problem).fragments, random_schedule(problem, 3).fragments,
                       replanned.fragments)
    assert out["native"] == out["python"]


def test_native_engine_refuses_malformed_calls() -> None:
    problem = generate(InstanceParams(n_jobs=3, n_qpus=2, seed=0))
    nat = Compiled(problem, engine="native")
    busy = nat.fresh()
    with pytest.raises(ValueError):
        nat.native.place_job(busy, 99, [None], True)
    with pytest.raises(ValueError):
        nat.native.place_job(busy, 0, [(99,)] * len(nat.jobs[0].topo), True)
    with pytest.raises(ValueError):
        busy.insert(99, 0.0, 1.0)
    assert replace(problem) == problem  # nothing above changed the problem


def test_a_lean_run_within_a_small_budget_makes_no_move() -> None:
    """1,000 jobs on 100 QPUs with the operator's online cap (150,000 units): the run is lean,
    its two decodes already spend more than the budget, so it stops at its start (EDF) and
    the work spent stays within the cap plus those decodes (no move of ~0.1 M units more)."""
    from qbackbone.core.scheduling.placement import Compiled as _Compiled
    from qbackbone.core.scheduling.search_state import decode_work

    problem = generate(InstanceParams(n_jobs=1000, n_qpus=100, load=1.0, deadline_coef=1.5,
                                      seed=0))
    plan = anneal(problem, AnnealingParams(work_budget=150_000))
    assert plan.stats["lean"] == 1.0 and plan.stats["iterations"] == 0
    assert plan.served >= edf(problem).served
    assert 2 * decode_work(_Compiled(problem, engine="python")) > 150_000
