"""The operator's queue of decided quantum jobs waiting for QPU time, planned together.

Every waiting job is planned jointly (``core.scheduling.admission``) around the work already
admitted: the fragments without a result, projected onto their QPUs (running ones where they
run, the others in their planned order as soon as their QPU and their LOCC predecessors
allow) and fixed in the plan, so a waiting job may use a gap they leave. QPU time counts the
shots a QPU runs: a mitigated Estimator share runs its plan's shot multiplier per requested
shot (``Need.multiplier``). A job whose policy says ``shotSplitting: Always`` keeps the split
by speed its decision made (one scheduled part per QPU), as ``qbackbone run`` splits it;
``Never`` keeps each subcircuit on one QPU; ``WhenDeadlineNeeds`` lets the plan split when
the deadline needs it. The plan is
made again when a job arrives, when the Ready QPUs change, and at least every
``replan_seconds`` while jobs wait (admitted work ends, time passes); admitting jobs the plan
starts does not invalidate it. A job is admitted with the plan's shot split once the plan
starts it within ``lookahead`` seconds. In memory only: after a restart the waiting jobs
(decision record, no admission record) join again on their next reconcile.

One plan serves jobs of many policies, so its scheduler settings (``scheduler.algorithm``,
the annealing fields, ``timeBudgetSeconds``, ``workBudget``, ``seed``) are those of one
policy, the operator's scheduler policy (``k8s.scheduler_policy``), handed over with
``use_scheduler`` whenever it changes; ``shotSplitting`` stays each job's own
(``Waiting.splittable``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from qbackbone.api.policy import SchedulerOptions
from qbackbone.core import scheduling as sched
from qbackbone.core.pipeline import DecidedJob
from qbackbone.core.pipeline.joint import annealing_params
from qbackbone.core.qpus.descriptor import QPUDescriptor
from qbackbone.core.scheduling.admission import (
    Admit,
    Wait,
    admission,
    plan_waiting,
    waiting_jobs,
)
from qbackbone.k8s.fragments import FragmentSource, Need, apportion

FORGET_SECONDS = 10.0  # a waiting job not asked about for this long was deleted
HANDOVER_SECONDS = 60.0  # an admitted job the caller never reports as committed is dropped


@dataclass
class Waiting:
    """A decided job waiting for admission."""

    uid: str
    needs: list[Need]
    qpus: dict[str, QPUDescriptor]  # the decision's descriptors of the QPUs it may use
    deadline_at: float | None  # Unix seconds; None: no deadline
    splittable: bool = True  # the policy's scheduler.shotSplitting is not Never
    seen: float = 0.0  # monotonic: when a reconcile last asked about it

    @classmethod
    def of(cls, uid: str, source: FragmentSource, decided: DecidedJob,
           deadline_at: float | None) -> Waiting:
        """A decided job as its policy has it planned: its needs (mitigation shots, the
        split ``shotSplitting: Always`` fixes), the decision's QPUs, and whether the plan may
        split its shots when its deadline needs it (``shotSplitting`` not Never)."""
        return cls(uid, source.needs(), {q.name: q.descriptor for q in decided.fleet},
                   deadline_at, decided.reduced.policy.spec.scheduler.shot_splitting)


@dataclass(frozen=True)
class Committed:
    """An admitted fragment without a result, as the operator last saw it."""

    job: str  # the job's uid
    key: str  # unique within the job
    qpu: str
    shots: int
    started: float | None  # Unix seconds since it runs; None: not started
    order: float  # Unix seconds the admitting plan started it: QPUs take waiting work so
    after: tuple[str, ...] = ()  # keys (same job) of fragments that must end first (LOCC)


@dataclass(frozen=True)
class Placement:
    """The queue's answer for one job: admit (with shares) or wait, and the plan behind it."""

    decision: Admit | Wait
    jobs: int  # waiting jobs in the plan
    method: str
    unavailable: bool = False  # none of its QPUs is Ready
    planned_at: float = 0.0  # Unix seconds the plan was made (the decision's times count from)


@dataclass
class _Plan:
    made: float  # Unix seconds
    key: tuple[frozenset[str], frozenset[str]]  # the waiting jobs and Ready QPUs it covers
    problem: sched.Problem
    schedule: sched.Schedule


@dataclass
class FleetQueue:
    """Waiting jobs, the last joint plan, and admission from it (thread-safe)."""

    lookahead: float = 2.0  # qbackbone operator --admission-lookahead
    replan_seconds: float = 1.0
    seed: int = 0  # qbackbone operator --seed: the plan's seed when the scheduler's is unset
    scheduler: SchedulerOptions = field(default_factory=SchedulerOptions)
    clock: Callable[[], float] = time.time
    on_plan: Callable[[float, int], None] | None = None  # (seconds, jobs) after each plan
    _waiting: dict[str, Waiting] = field(default_factory=dict, init=False)
    # Admitted here, not yet in the caller's committed work (its pods are being created by
    # another thread): (when, its fragments as planned), so the next plan still counts them.
    _handover: dict[str, tuple[float, list[Committed]]] = field(default_factory=dict,
                                                                 init=False)
    _plan: _Plan | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, job: Waiting) -> None:
        """A job starts waiting (``place`` adds it too); the next plan includes it."""
        with self._lock:
            job.seen = self.clock()
            self._waiting[job.uid] = job

    def use_scheduler(self, options: SchedulerOptions) -> bool:
        """Plan with ``options`` from now on (the scheduler policy was seen). True when the
        plan's settings changed: the next ``place`` then makes a new plan."""
        with self._lock:
            before = (self.scheduler.algorithm, plan_params(self.scheduler, self.seed))
            self.scheduler = options
            if (options.algorithm, plan_params(options, self.seed)) == before:
                return False
            self._plan = None
            return True

    def remove(self, uid: str) -> None:
        """The job finished, failed or was deleted: it neither waits nor holds QPU time."""
        with self._lock:
            self._waiting.pop(uid, None)
            self._handover.pop(uid, None)

    def place(self, job: Waiting, ready: frozenset[str],
              committed: Callable[[], Sequence[Committed]]) -> Placement:
        """Admit or keep waiting ``job`` (added if new), from the current joint plan.

        ``ready``: QPUs that may take new work; ``committed``: the admitted fragments without
        a result (asked for only when a plan is made). An admitted job leaves the queue.
        """
        with self._lock:
            now = self.clock()
            job.seen = now
            self._waiting.setdefault(job.uid, job).seen = job.seen
            self._forget_stale(job.seen)
            if not plannable(job, ready):
                return Placement(Wait(None, None), len(self._waiting), "", unavailable=True)
            key = (frozenset(self._waiting), ready)
            plan = self._plan
            if (plan is None or now - plan.made >= self.replan_seconds
                    or not key[0] <= plan.key[0] or plan.key[1] != ready):
                plan = self._plan = self._make_plan(now, key, committed)
            age = max(0.0, now - plan.made)
            decision = admission(plan.problem, plan.schedule, job.uid, self.lookahead + age)
            if isinstance(decision, Admit):
                decision = in_need_terms(self._waiting[job.uid], ready, decision)
                del self._waiting[job.uid]
                self._handover[job.uid] = (now, planned_work(job, decision, plan.made))
            return Placement(decision, len(waiting_jobs(plan.problem)), plan.schedule.method,
                             planned_at=plan.made)

    def _forget_stale(self, now: float) -> None:
        for uid in [u for u, w in self._waiting.items() if now - w.seen > FORGET_SECONDS]:
            del self._waiting[uid]

    def _make_plan(self, now: float, key: tuple[frozenset[str], frozenset[str]],
                   committed: Callable[[], Sequence[Committed]]) -> _Plan:
        start = time.perf_counter()
        work = list(committed())
        reported = {c.job for c in work}
        for uid in [u for u, (at, _) in self._handover.items()
                    if u in reported or now - at > HANDOVER_SECONDS]:
            del self._handover[uid]
        work += [c for _, planned in self._handover.values() for c in planned]
        problem = joint_problem(list(self._waiting.values()), key[1], work, now)
        previous = self._plan.schedule if self._plan is not None else None
        schedule = plan_waiting(problem, self.scheduler.algorithm,
                                plan_params(self.scheduler, self.seed), previous)
        if self.on_plan is not None:
            self.on_plan(time.perf_counter() - start, len(waiting_jobs(problem)))
        return _Plan(now, key, problem, schedule)


def plan_params(options: SchedulerOptions, seed: int) -> sched.AnnealingParams:
    """The joint plan's scheduler params: the policy's (``annealing_params``; its seed, else
    ``seed``), with shot splitting on, since each job's own policy says whether its shots may
    be split (``Job.splittable``). Budgets unset: ``plan_waiting``'s online budget."""
    params = annealing_params(options)
    return replace(params, seed=seed if options.seed is None else options.seed,
                   shot_splitting=True)


@dataclass(frozen=True)
class Part:
    """One subcircuit of a waiting job in the scheduler's model: a need whole, or one QPU's
    share of a need whose split the policy fixes."""

    need: int  # index in the job's needs
    shots: int  # as requested (before mitigation)
    qpus: tuple[str, ...]  # Ready QPUs that may run it

    def qpu_shots(self, job: Waiting) -> int:
        """Its shots in QPU time: at the largest mitigation multiplier of its QPUs (one model
        for all of them, so a plan over QPUs of different mitigation overestimates the
        others: conservative)."""
        need = job.needs[self.need]
        return max((need.qpu_shots(q, self.shots) for q in self.qpus), default=self.shots)


def scheduled_parts(job: Waiting, ready: frozenset[str]) -> list[Part]:
    """The job's subcircuits in the scheduler's model, in order: a need whose split the
    policy fixes (``shotSplitting: Always``) one part per QPU of that split while every one
    of them is Ready (else the plan splits it over its Ready QPUs), any other need one part
    over its Ready QPUs."""
    parts = []
    for i, need in enumerate(job.needs):
        if need.fixed and all(q in ready for q, _ in need.fixed):
            parts += [Part(i, n, (q,)) for q, n in need.fixed if n > 0]
        else:
            parts.append(Part(i, need.shots, tuple(q for q in need.qpus if q in ready)))
    return parts


def in_need_terms(job: Waiting, ready: frozenset[str], admit: Admit) -> Admit:
    """The plan's admission of ``job`` (shares and starts per scheduled part, in QPU shots)
    as shots requested per need and QPU: each part's shots apportioned over its QPUs by the
    plan's split."""
    parts = scheduled_parts(job, ready)
    shares: dict[int, dict[str, int]] = {}
    starts: dict[int, dict[str, float]] = {}
    for k, planned in sorted(admit.shares.items()):
        part = parts[k]
        names = sorted(planned)
        per_qpu = shares.setdefault(part.need, {})
        at = starts.setdefault(part.need, {})
        for q, n in zip(names, apportion(part.shots, [planned[q] for q in names]),
                        strict=True):
            if n <= 0:
                continue
            per_qpu[q] = per_qpu.get(q, 0) + n
            t = admit.starts.get(k, {}).get(q)
            if t is not None:
                at[q] = min(at.get(q, t), t)
    return Admit(shares, admit.start, admit.end, starts)


def joint_problem(waiting: list[Waiting], ready: frozenset[str],
                  committed: Sequence[Committed], now: float) -> sched.Problem:
    """The scheduling problem at ``now`` (time 0): the Ready QPUs with the admitted work on
    them as fixed fragments (each admitted job a committed job of one subcircuit per
    fragment), and every waiting job released now with its deadline (a job without one gets
    a horizon by which all the work fits in sequence, so it is always admitted). A waiting
    job's subcircuits are its ``scheduled_parts``, their shots those their QPUs run
    (mitigation included)."""
    descriptors: dict[str, QPUDescriptor] = {}
    for job in waiting:
        descriptors.update({n: d for n, d in job.qpus.items() if n in ready})
    qpus = {name: sched.QPU(name, d.qubits, 10**9, d.shot_time, d.setup_time)
            for name, d in sorted(descriptors.items())}
    fixed = project(committed, qpus, now)
    setup = max((q.setup_time for q in qpus.values()), default=0.0)
    shot = max((q.shot_time for q in qpus.values()), default=0.0)
    planned = [(job, scheduled_parts(job, ready)) for job in waiting if plannable(job, ready)]
    horizon = 1.0 + max((f.end for f in fixed), default=0.0) + sum(
        setup + part.qpu_shots(job) * shot for job, parts in planned for part in parts)
    jobs = []
    for name in sorted({f.job for f in fixed}):
        mine = [f for f in fixed if f.job == name]
        jobs.append(sched.Job(name, min(0.0, *(f.start for f in mine)), horizon, tuple(
            sched.Subcircuit(1, 0, f.shots, frozenset({f.qpu})) for f in mine)))
    for job, parts in planned:  # a job without a Ready QPU waits outside the plan
        of_need: dict[str, list[int]] = {}
        for k, part in enumerate(parts):
            of_need.setdefault(job.needs[part.need].subcircuit, []).append(k)
        # Eligibility (width, routed depth, policy selection) was settled when the job was
        # decided: the allowed QPU set carries it, so qubits and depth here are nominal.
        subcircuits = tuple(sched.Subcircuit(1, 0, part.qpu_shots(job), frozenset(part.qpus))
                            for part in parts)
        precedence = tuple((b, k) for k, part in enumerate(parts)
                           for before in job.needs[part.need].after
                           for b in of_need.get(before, []))
        deadline = horizon if job.deadline_at is None else max(0.0, job.deadline_at - now)
        jobs.append(sched.Job(job.uid, 0.0, deadline, subcircuits, precedence,
                              splittable=job.splittable))
    return sched.Problem(tuple(qpus.values()), tuple(jobs), fixed=tuple(fixed))


def project(committed: Sequence[Committed], qpus: Mapping[str, sched.QPU],
            now: float) -> list[sched.Fragment]:
    """Where the admitted fragments will run, in plan time (``now`` is 0), as the cluster
    runs them: a running fragment where it runs (one that overran its estimate ends now);
    then, repeatedly, the waiting fragment that can start first (its QPU free, its
    predecessors ended; ties in the admitting plan's order) starts then. Fragments on QPUs
    outside ``qpus`` are left out (no new work goes there). One committed job per admitted
    job, named ``committed:<uid>``, one subcircuit per fragment, in the returned order."""
    free = dict.fromkeys(qpus, float("-inf"))
    ends: dict[tuple[str, str], float] = {}
    placed: list[tuple[Committed, float, float]] = []
    for c in sorted((c for c in committed if c.started is not None and c.qpu in qpus),
                    key=lambda c: (c.started or 0.0, c.job, c.key)):
        duration = qpus[c.qpu].duration(c.shots)
        start = max((c.started or now) - now, free[c.qpu])
        end = max(start + duration, 0.0)  # one that overran its estimate ends now
        placed.append((c, end - duration, end))
        free[c.qpu] = ends[(c.job, c.key)] = end
    free = {q: max(0.0, t) for q, t in free.items()}
    pending = sorted((c for c in committed if c.started is None and c.qpu in qpus),
                     key=lambda c: (c.order, c.job, c.key))
    keys = {(c.job, c.key) for c in pending}

    def ready_at(c: Committed) -> float:
        if any((c.job, k) in keys for k in c.after):
            return float("inf")  # a predecessor is not placed yet
        return max([free[c.qpu], *(ends.get((c.job, k), 0.0) for k in c.after)])

    while pending:
        c = min(pending, key=lambda c: (ready_at(c), c.order, c.job, c.key))
        start = ready_at(c)
        if start == float("inf"):  # a cycle cannot happen; keep going in order anyway
            start = free[c.qpu]
        end = start + qpus[c.qpu].duration(c.shots)
        placed.append((c, start, end))
        free[c.qpu] = ends[(c.job, c.key)] = end
        pending.remove(c)
        keys.discard((c.job, c.key))
    fragments: list[sched.Fragment] = []
    index: dict[str, int] = {}
    for c, start, end in sorted(placed, key=lambda p: (p[0].job, p[0].key)):
        name = f"committed:{c.job}"
        index[name] = index.get(name, -1) + 1
        fragments.append(sched.Fragment(name, index[name], c.qpu, c.shots, start, end))
    return fragments


def planned_work(job: Waiting, admit: Admit, made: float) -> list[Committed]:
    """An admitted job's fragments as the plan placed them (not started, in planned order;
    shots in QPU time, mitigation included); ``admit`` in need terms (``in_need_terms``)."""
    keys = {i: [f"{need.subcircuit}/{q}" for q in admit.shares.get(i, {})]
            for i, need in enumerate(job.needs)}
    index = {need.subcircuit: i for i, need in enumerate(job.needs)}
    return [Committed(job.uid, f"{need.subcircuit}/{q}", q, need.qpu_shots(q, shots), None,
                      made + admit.starts.get(i, {}).get(q, 0.0),
                      tuple(k for before in need.after for k in keys[index[before]]))
            for i, need in enumerate(job.needs)
            for q, shots in admit.shares.get(i, {}).items() if shots > 0]


def plannable(job: Waiting, ready: frozenset[str]) -> bool:
    """Whether every subcircuit of the job has a Ready QPU."""
    return all(any(q in ready for q in need.qpus) for need in job.needs)
