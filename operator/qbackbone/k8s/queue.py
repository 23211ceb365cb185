"""The operator's queue of decided quantum jobs waiting for QPU time, planned together.

Every waiting job is planned jointly (``core.scheduling.admission``) around the work already
admitted: each QPU is free from when its admitted fragments are expected to end. The plan is
made again when a job arrives, when the Ready QPUs change, and at least every
``replan_seconds`` while jobs wait (admitted work ends, time passes); admitting jobs the plan
starts does not invalidate it. A job is admitted with the plan's shot split once the plan
starts it within ``lookahead`` seconds. In memory only: after a restart the waiting jobs
(decision record, no admission record) join again on their next reconcile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from qbackbone.core import scheduling as sched
from qbackbone.core.qpus.descriptor import QPUDescriptor
from qbackbone.core.scheduling.admission import Admit, Wait, admissions, plan_waiting
from qbackbone.k8s.fragments import Need

FORGET_SECONDS = 10.0  # a waiting job not asked about for this long was deleted


@dataclass
class Waiting:
    """A decided job waiting for admission."""

    uid: str
    needs: list[Need]
    qpus: dict[str, QPUDescriptor]  # the decision's descriptors of the QPUs it may use
    deadline_at: float | None  # Unix seconds; None: no deadline
    splittable: bool = True  # the policy's scheduler.shotSplitting
    seen: float = 0.0  # monotonic: when a reconcile last asked about it


@dataclass(frozen=True)
class Placement:
    """The queue's answer for one job: admit (with shares) or wait, and the plan behind it."""

    decision: Admit | Wait
    jobs: int  # waiting jobs in the plan
    method: str
    unavailable: bool = False  # none of its QPUs is Ready


@dataclass
class _Plan:
    made: float  # Unix seconds
    key: tuple[frozenset[str], frozenset[str]]  # the waiting jobs and Ready QPUs it covers
    problem: sched.Problem
    schedule: sched.Schedule
    seconds: float


@dataclass
class FleetQueue:
    """Waiting jobs, the last joint plan, and admission from it (thread-safe)."""

    lookahead: float = 2.0  # qbackbone operator --admission-lookahead
    replan_seconds: float = 1.0
    seed: int = 0
    clock: Callable[[], float] = time.time
    on_plan: Callable[[float, int], None] | None = None  # (seconds, jobs) after each plan
    _waiting: dict[str, Waiting] = field(default_factory=dict, init=False)
    _plan: _Plan | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, job: Waiting) -> None:
        """A job starts waiting (``place`` adds it too); the next plan includes it."""
        with self._lock:
            job.seen = time.monotonic()
            self._waiting[job.uid] = job

    def remove(self, uid: str) -> None:
        """The job was admitted, failed or deleted: it no longer waits."""
        with self._lock:
            self._waiting.pop(uid, None)

    def place(self, job: Waiting, ready: frozenset[str],
              backlog: Mapping[str, float]) -> Placement:
        """Admit or keep waiting ``job`` (added if new), from the current joint plan.

        ``ready``: QPUs that may take new work; ``backlog``: seconds of admitted work left
        per QPU. An admitted job leaves the queue.
        """
        with self._lock:
            now = self.clock()
            job.seen = time.monotonic()
            self._waiting.setdefault(job.uid, job).seen = job.seen
            self._forget_stale(job.seen)
            if not plannable(job, ready):
                return Placement(Wait(None, None), len(self._waiting), "", unavailable=True)
            key = (frozenset(self._waiting), ready)
            plan = self._plan
            if (plan is None or now - plan.made > self.replan_seconds
                    or not key[0] <= plan.key[0] or plan.key[1] != ready):
                plan = self._plan = self._make_plan(now, key, backlog)
            age = max(0.0, now - plan.made)
            decision = admissions(plan.problem, plan.schedule, self.lookahead + age).get(
                job.uid, Wait(None, None))
            if isinstance(decision, Admit):
                del self._waiting[job.uid]
            return Placement(decision, len(plan.problem.jobs), plan.schedule.method)

    def _forget_stale(self, now: float) -> None:
        for uid in [u for u, w in self._waiting.items() if now - w.seen > FORGET_SECONDS]:
            del self._waiting[uid]

    def _make_plan(self, now: float, key: tuple[frozenset[str], frozenset[str]],
                   backlog: Mapping[str, float]) -> _Plan:
        start = time.perf_counter()
        problem = joint_problem(list(self._waiting.values()), key[1], backlog, now)
        schedule = plan_waiting(problem, self.seed)
        seconds = time.perf_counter() - start
        if self.on_plan is not None:
            self.on_plan(seconds, len(problem.jobs))
        return _Plan(now, key, problem, schedule, seconds)


def joint_problem(waiting: list[Waiting], ready: frozenset[str],
                  backlog: Mapping[str, float], now: float) -> sched.Problem:
    """The scheduling problem at ``now`` (time 0): the Ready QPUs free once their backlog is
    done, and every waiting job released now with its deadline (jobs without one get a
    horizon by which all the work fits in sequence, so they are always admitted)."""
    descriptors: dict[str, QPUDescriptor] = {}
    for job in waiting:
        descriptors.update({n: d for n, d in job.qpus.items() if n in ready})
    qpus = tuple(sched.QPU(name, d.qubits, 10**9, d.shot_time, d.setup_time,
                           max(0.0, backlog.get(name, 0.0)))
                 for name, d in sorted(descriptors.items()))
    slowest = max(((q.setup_time, q.shot_time) for q in qpus), default=(0.0, 0.0))
    horizon = 1.0 + max((q.available_at for q in qpus), default=0.0) + sum(
        slowest[0] + need.shots * slowest[1] for job in waiting for need in job.needs)
    jobs = []
    for job in waiting:
        if not plannable(job, ready):
            continue  # it waits outside the plan
        index = {need.subcircuit: i for i, need in enumerate(job.needs)}
        # Eligibility (width, routed depth, policy selection) was settled when the job was
        # decided: the allowed QPU set carries it, so qubits and depth here are nominal.
        subcircuits = tuple(sched.Subcircuit(1, 0, need.shots,
                                             frozenset(q for q in need.qpus if q in ready))
                            for need in job.needs)
        precedence = tuple((index[before], index[need.subcircuit])
                           for need in job.needs for before in need.after)
        deadline = horizon if job.deadline_at is None else max(0.0, job.deadline_at - now)
        jobs.append(sched.Job(job.uid, 0.0, deadline, subcircuits, precedence,
                              splittable=job.splittable))
    return sched.Problem(qpus, tuple(jobs))


def plannable(job: Waiting, ready: frozenset[str]) -> bool:
    """Whether every subcircuit of the job has a Ready QPU."""
    return all(any(q in ready for q in need.qpus) for need in job.needs)
