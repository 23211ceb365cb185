"""The operator's queue: waiting jobs planned together around admitted work (no cluster).

Real decided jobs (reduce, QIP, cut) and their fragment sources; the clock is injected so
that "time passes" without sleeping.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

import qbackbone.k8s.queue as queue_module
from qbackbone.api.policy import SchedulerOptions
from qbackbone.core import scheduling as sched
from qbackbone.core.pipeline import DecidedJob, decide_job, start_job
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.core.scheduling.admission import Admit, Wait, plan_waiting
from qbackbone.k8s.fragments import SINGLE, CutSource, cut_plan
from qbackbone.k8s.queue import Committed, FleetQueue, Placement, Waiting, project
from qbackbone.k8s.single import SingleSource
from tests.conftest import make_job, make_qpu
from tests.pipeline.test_joint import ghz

# Slow enough that QPU time matters: 1 s per fragment, 1 ms per shot.
FLEET = build_fleet([make_qpu("qpu-a", qubits=8, shotTime="1ms", setupTime="1s"),
                     make_qpu("qpu-b", qubits=8, shotTime="1ms", setupTime="1s")])
ONE_QPU = build_fleet([make_qpu("qpu-a", qubits=8, shotTime="1ms", setupTime="1s")])


def decided(name: str, fleet: list, shots: int = 1000, **spec: object) -> DecidedJob:
    job = make_job(ghz(4), ["ZZZZ"], name=name, shots=shots, **spec)
    result = decide_job(start_job(job), fleet, {}, seed=3)
    assert result.qip.path == "SingleQPU", result.qip.message
    return result


def waiting(name: str, source: SingleSource | CutSource, deadline_at: float | None = None
            ) -> Waiting:
    return Waiting(name, source.needs(),
                   {q.name: q.descriptor for q in source.decided.fleet}, deadline_at)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def place(queue: FleetQueue, job: Waiting, backlog: Mapping[str, float],
          ready: frozenset[str] = frozenset({"qpu-a", "qpu-b"})) -> Placement:
    """``backlog``: seconds each QPU stays busy with admitted work."""
    now = queue.clock()
    return queue.place(job, ready, lambda: [busy(q, s, now) for q, s in backlog.items()])


def busy(qpu: str, seconds: float, now: float) -> Committed:
    """An admitted fragment that keeps ``qpu`` (1 s setup, 1 ms per shot) busy ``seconds``
    more: running since now with the shots to fill them, or (under 1 s) a 1-shot fragment
    that started a little while ago."""
    if seconds >= 1.001:
        return Committed(f"busy-{qpu}", "f", qpu, round((seconds - 1.0) * 1000), now, now)
    return Committed(f"busy-{qpu}", "f", qpu, 1, now - (1.001 - seconds), now)


def test_a_job_is_split_over_qpus_when_its_deadline_needs_it() -> None:
    clock = Clock()
    source = SingleSource(decided("lone", FLEET, shots=4000))
    queue = FleetQueue(lookahead=2.0, clock=clock)
    alone = place(queue, waiting("lone", source), {})  # no deadline: one QPU, one setup
    assert isinstance(alone.decision, Admit) and len(alone.decision.shares[0]) == 1
    # One QPU needs 5 s (1 s setup, 4000 shots at 1 ms); both need 3 s: a 4 s deadline splits.
    queue = FleetQueue(lookahead=2.0, clock=clock)  # the first job is not admitted here
    placement = place(queue, waiting("tight", source, deadline_at=clock.now + 4.0), {})
    assert isinstance(placement.decision, Admit)
    assert placement.decision.start == 0.0 and placement.decision.end <= 4.0
    split = placement.decision.shares[0]
    assert set(split) == {"qpu-a", "qpu-b"}
    assert sum(split.values()) == source.needs()[0].shots
    source.assign({SINGLE: split})
    assert sum(source.shares.values()) == 4000  # shots per basis, exact after rounding
    assert {slot.key for slot in source.slots} == {"qpu-a", "qpu-b"}
    assert len(queue) == 0  # admitted jobs leave the queue


def test_a_late_job_with_a_tight_deadline_overtakes_an_earlier_one() -> None:
    """FIFO would start ``early`` first and make ``urgent`` miss its deadline."""
    clock = Clock()
    plans: list[int] = []
    queue = FleetQueue(lookahead=2.0, clock=clock, on_plan=lambda _s, n: plans.append(n))
    early = waiting("early", SingleSource(decided("early", ONE_QPU, shots=2000)))
    urgent = waiting("urgent", SingleSource(decided("urgent", ONE_QPU, shots=2000)),
                     deadline_at=clock.now + 10.0)
    ready = frozenset({"qpu-a"})
    backlog = [busy("qpu-a", 5.0, clock.now)]  # busy with admitted work for 5 s
    first = queue.place(early, ready, lambda: backlog)
    assert isinstance(first.decision, Wait) and first.decision.start == 5.0
    second = queue.place(urgent, ready, lambda: backlog)  # arrives: the plan is made again
    assert plans == [1, 2]
    assert isinstance(second.decision, Wait)
    # 2000 shots take 3 s: urgent must run 5-8 s (deadline 10 s), early after it.
    assert second.decision.start == 5.0
    assert queue.place(early, ready, lambda: backlog).decision.start == 8.0
    clock.now += 4.0  # the admitted work is almost done
    backlog = [busy("qpu-a", 1.0, clock.now)]
    admitted = queue.place(urgent, ready, lambda: backlog)
    assert isinstance(admitted.decision, Admit), admitted
    assert admitted.decision.shares == {0: {"qpu-a": 2000}}
    urgent_too = [busy("qpu-a", 4.0, clock.now)]  # urgent's 3 s are admitted now
    still = queue.place(early, ready, lambda: urgent_too)
    assert isinstance(still.decision, Wait) and still.decision.start is not None
    assert still.decision.start >= 4.0 - 1e-9


def test_a_job_that_cannot_meet_its_deadline_waits_without_a_start() -> None:
    clock = Clock()
    queue = FleetQueue(clock=clock)
    late = waiting("late", SingleSource(decided("late", FLEET)), deadline_at=clock.now + 10.0)
    placement = place(queue, late, {"qpu-a": 100.0, "qpu-b": 100.0})
    assert placement.decision == Wait(None, None)
    assert not placement.unavailable


def test_a_job_whose_qpus_are_not_ready_is_outside_the_plan() -> None:
    queue = FleetQueue(clock=Clock())
    job = waiting("parked", SingleSource(decided("parked", FLEET)))
    placement = place(queue, job, {}, ready=frozenset({"qpu-z"}))
    assert placement.unavailable and placement.decision == Wait(None, None)


def test_two_jobs_arriving_together_share_the_qpus_without_splitting_each() -> None:
    """The joint plan gives each job a QPU of its own where a per-job split would put both
    jobs on both QPUs (two setups each)."""
    queue = FleetQueue(lookahead=2.0, clock=Clock())
    jobs = [waiting(n, SingleSource(decided(n, FLEET, shots=1000))) for n in ("j1", "j2")]
    for job in jobs:
        queue.add(job)  # both arrived before the first plan
    placements = [place(queue, job, {}) for job in jobs]
    assert all(isinstance(p.decision, Admit) for p in placements)
    used = [set(p.decision.shares[0]) for p in placements if isinstance(p.decision, Admit)]
    assert used[0] != used[1] and all(len(u) == 1 for u in used)


def test_a_cut_job_is_planned_with_its_locc_precedence_and_gets_the_planned_slots() -> None:
    fleet = build_fleet([make_qpu("qpu-a", qubits=6), make_qpu("qpu-b", qubits=6)])
    job = make_job(ghz(10), ["Z" + "I" * 8 + "Z"], name="cut", shots=500,
                   execution={"mode": "Distributed"})
    decided_job = decide_job(start_job(job), fleet, {}, seed=3)
    assert decided_job.qip.path == "Distributed", decided_job.qip.message
    plan, _ = cut_plan(decided_job, None)
    assert plan is not None
    source = CutSource(decided_job, plan, "stamp")
    needs = source.needs()
    assert any(need.after for need in needs)  # the preparation waits for the measurement
    queue = FleetQueue(clock=Clock())
    placement = place(queue, Waiting("cut", needs, {q.name: q.descriptor for q in fleet}, None),
                      {})
    assert isinstance(placement.decision, Admit)
    shares = {needs[i].subcircuit: split for i, split in placement.decision.shares.items()}
    source.assign(shares)
    for need in needs:
        slots = [s for s in source.slots if s.subcircuit == need.subcircuit]
        assert {s.qpu for s in slots} == set(shares[need.subcircuit])
        assert sum(source.slot_shots(s) for s in slots) == need.shots
        assert all(s.gated == bool(need.after) for s in slots)


def test_a_job_whose_policy_forbids_splitting_stays_on_one_qpu() -> None:
    clock = Clock()
    source = SingleSource(decided("whole", FLEET, shots=4000))
    queue = FleetQueue(clock=clock)
    tight = Waiting("whole-tight", source.needs(), {q.name: q.descriptor for q in FLEET},
                    clock.now + 4.0, splittable=False)
    assert place(queue, tight, {}).decision == Wait(None, None)  # 5 s on one QPU > 4 s
    roomy = Waiting("whole-roomy", source.needs(), {q.name: q.descriptor for q in FLEET},
                    clock.now + 6.0, splittable=False)
    placement = place(queue, roomy, {"qpu-a": 0.5})
    assert isinstance(placement.decision, Admit)
    assert placement.decision.shares == {0: {"qpu-b": 4000}}  # the free one, whole


def test_admitted_work_is_projected_as_the_cluster_runs_it() -> None:
    """A running fragment where it runs (an overrun one ends now); a waiting LOCC
    preparation after its measurement, leaving a gap on its QPU; another waiting fragment
    in that gap, since a QPU takes whatever can start (ungated pods are bound first)."""
    now = 1000.0
    qpus = {q.name: sched.QPU(q.name, 8, 10**9, q.descriptor.shot_time, q.descriptor.setup_time)
            for q in FLEET}  # 1 s + 1 ms per shot
    committed = [
        Committed("locc", "measure", "qpu-a", 2000, now - 1.0, now - 1.0),  # 3 s, 2 left
        Committed("locc", "prepare", "qpu-b", 1000, None, now + 2.0, ("measure",)),  # 2 s
        Committed("late", "overran", "qpu-b", 1000, now - 5.0, now - 5.0),  # 2 s, 3 s ago
        Committed("other", "next", "qpu-b", 500, None, now + 3.0),  # 1.5 s
    ]
    placed = {(f.job, f.shots): (f.qpu, round(f.start, 3), round(f.end, 3))
              for f in project(committed, qpus, now)}
    assert placed == {
        ("committed:locc", 2000): ("qpu-a", -1.0, 2.0),
        ("committed:late", 1000): ("qpu-b", -2.0, 0.0),  # overran: ends now
        ("committed:other", 500): ("qpu-b", 0.0, 1.5),  # in the gap before the preparation
        ("committed:locc", 1000): ("qpu-b", 2.0, 4.0),  # after its measurement
    }


def test_a_waiting_job_fills_the_gap_an_admitted_locc_job_leaves() -> None:
    clock = Clock()
    gap = [Committed("locc", "measure", "qpu-a", 4000, clock.now, clock.now),  # 5 s on a
           Committed("locc", "prepare", "qpu-b", 1000, None, clock.now + 5.0, ("measure",))]
    queue = FleetQueue(clock=clock)
    small = Waiting("small", SingleSource(decided("small", FLEET, shots=2000)).needs(),
                    {q.name: q.descriptor for q in FLEET}, clock.now + 4.0)
    placement = queue.place(small, frozenset({"qpu-a", "qpu-b"}), lambda: gap)
    assert isinstance(placement.decision, Admit)  # 3 s on qpu-b, before the preparation
    assert placement.decision.shares == {0: {"qpu-b": 2000}}
    big = Waiting("big", SingleSource(decided("big", FLEET, shots=6000)).needs(),
                  {q.name: q.descriptor for q in FLEET}, None)
    later = queue.place(big, frozenset({"qpu-a", "qpu-b"}), lambda: gap)
    assert isinstance(later.decision, Wait) and later.decision.start == 5.0  # no gap fits 7 s


def test_a_job_admitted_moments_ago_still_counts_before_its_pods_exist() -> None:
    """Reconciles run in threads: a job admitted by one may not be in the committed work
    another reports yet. The queue keeps its planned fragments until it is."""
    clock = Clock()
    queue = FleetQueue(clock=clock)
    one_qpu = frozenset({"qpu-a"})
    first = waiting("first", SingleSource(decided("first", ONE_QPU, shots=2000)))
    assert isinstance(queue.place(first, one_qpu, lambda: []).decision, Admit)  # 3 s on qpu-a
    second = waiting("second", SingleSource(decided("second", ONE_QPU, shots=2000)))
    # An arrival: a new plan, first not reported yet.
    placement = queue.place(second, one_qpu, lambda: [])
    assert isinstance(placement.decision, Wait) and placement.decision.start == 3.0
    reported = [Committed("first", "main", "qpu-a", 2000, clock.now, clock.now)]
    clock.now += 1.0  # first runs, reported now: the hand-over ends
    again = queue.place(second, one_qpu, lambda: reported)
    assert again.decision.start == 2.0  # within the lookahead: admitted


def test_a_finished_job_leaves_no_hand_over_behind() -> None:
    """A job admitted and finished between two plans (never reported as committed) holds no
    QPU time in the next plan."""
    queue = FleetQueue(clock=Clock())
    one_qpu = frozenset({"qpu-a"})
    done = waiting("done", SingleSource(decided("done", ONE_QPU, shots=2000)))
    assert isinstance(queue.place(done, one_qpu, lambda: []).decision, Admit)
    queue.remove("done")  # what the reconciler does when it writes a terminal status
    after = waiting("after", SingleSource(decided("after", ONE_QPU, shots=2000)))
    placement = queue.place(after, one_qpu, lambda: [])
    assert isinstance(placement.decision, Admit) and placement.decision.start == 0.0


def test_the_plan_follows_the_scheduler_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The scheduler policy's algorithm, budgets and seed make the plan; a change of them
    makes a new plan at once."""
    calls: list[tuple[str, sched.AnnealingParams]] = []

    def recorded(problem: sched.Problem, algorithm: str, params: sched.AnnealingParams,
                 previous: sched.Schedule | None = None) -> sched.Schedule:
        calls.append((algorithm, params))
        return plan_waiting(problem, algorithm, params, previous)

    monkeypatch.setattr(queue_module, "plan_waiting", recorded)
    plans: list[int] = []
    clock = Clock()
    queue = FleetQueue(clock=clock, seed=11, scheduler=SchedulerOptions(algorithm="greedyEDF"),
                       on_plan=lambda _s, n: plans.append(n))
    jobs = [waiting(n, SingleSource(decided(n, ONE_QPU, shots=1000))) for n in ("j1", "j2")]
    ready = frozenset({"qpu-a"})
    backlog = [busy("qpu-a", 10.0, clock.now)]  # both wait behind admitted work
    for job in jobs:
        queue.add(job)
    first = queue.place(jobs[1], ready, lambda: backlog)
    assert isinstance(first.decision, Wait) and first.jobs == 2
    assert first.method == "edf" and calls[-1][0] == "greedyEDF" and calls[-1][1].seed == 11
    assert queue.place(jobs[0], ready, lambda: backlog).method == "edf" and len(plans) == 1
    assert queue.use_scheduler(SchedulerOptions(seed=5, workBudget=7000))
    second = queue.place(jobs[0], ready, lambda: backlog)
    assert len(plans) == 2 and second.method == "qb"
    algorithm, params = calls[-1]
    assert (algorithm, params.seed, params.work_budget) == ("annealing", 5, 7000)
    assert not queue.use_scheduler(SchedulerOptions(seed=5, workBudget=7000))  # unchanged
    queue.place(jobs[1], ready, lambda: backlog)
    assert len(plans) == 2  # the plan stands
