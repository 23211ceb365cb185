"""The L3 scheduling problem: QPUs, jobs with cut subcircuits, fragments and schedules.

Time is in seconds (floats). A fragment runs ``shots`` shots of one subcircuit on one QPU and
lasts ``setup_time + shots * shot_time`` on that QPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

CutKind = Literal["locc", "lo"]

#: Sampling overhead (gamma squared) per cut wire: LOCC (gamma 3) and LO (gamma 4).
OVERHEAD_PER_WIRE: dict[str, int] = {"locc": 9, "lo": 16}


@dataclass(frozen=True, slots=True)
class QPU:
    """One quantum processor as the scheduler sees it."""

    name: str
    qubits: int
    max_depth: int
    shot_time: float
    setup_time: float
    available_at: float = 0.0

    def __post_init__(self) -> None:
        if self.qubits <= 0 or self.max_depth <= 0:
            raise ValueError(f"QPU {self.name}: qubits and max_depth must be positive")
        if self.shot_time <= 0 or self.setup_time < 0:
            raise ValueError(f"QPU {self.name}: shot_time must be > 0 and setup_time >= 0")

    def can_run(self, sub: Subcircuit) -> bool:
        """Eligibility: the subcircuit fits in qubits and in feasible depth, and the QPU is
        one of those the subcircuit allows (if it names any)."""
        return (sub.qubits <= self.qubits and sub.depth <= self.max_depth
                and (sub.qpus is None or self.name in sub.qpus))

    def duration(self, shots: int) -> float:
        """Wall time of a fragment of ``shots`` shots on this QPU."""
        return self.setup_time + shots * self.shot_time


@dataclass(frozen=True, slots=True)
class Subcircuit:
    """One subcircuit of a job; ``shots`` already include the sampling overhead.

    ``qpus`` (optional) restricts the QPUs that may run it beyond qubits and depth: in the
    operator, the QPUs the job's policy selects and its circuits were compiled and routed for.
    """

    qubits: int
    depth: int
    shots: int
    qpus: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.qubits <= 0 or self.depth < 0 or self.shots <= 0:
            raise ValueError("subcircuit needs qubits > 0, depth >= 0, shots > 0")


@dataclass(frozen=True, slots=True)
class CutPlan:
    """What a cut plan says about a job, enough to derive its LOCC and LO variants.

    ``parts`` are (qubits, depth) of each subcircuit; ``wires`` are (measuring part, preparing
    part, number of wires cut between them); ``base_shots`` are the shots the uncut circuit
    would need. Each variant runs every part for ``base_shots * overhead ** total_wires``
    shots, overhead 9 (LOCC) or 16 (LO); only LOCC adds the precedence measuring -> preparing.
    """

    parts: tuple[tuple[int, int], ...]
    wires: tuple[tuple[int, int, int], ...]
    base_shots: int

    @property
    def total_wires(self) -> int:
        return sum(n for _, _, n in self.wires)

    def shots(self, kind: CutKind) -> int:
        return self.base_shots * OVERHEAD_PER_WIRE[kind] ** self.total_wires


@dataclass(frozen=True, slots=True)
class Job:
    """A job: arrival, absolute deadline, subcircuits and the precedence DAG between them.

    ``precedence`` holds (before, after) subcircuit indices: every fragment of ``after`` starts
    once every fragment of ``before`` has ended. ``plan`` (optional) is the cut plan the job
    was derived from, used to re-derive it with another cut kind.
    """

    name: str
    arrival: float
    deadline: float
    subcircuits: tuple[Subcircuit, ...]
    precedence: tuple[tuple[int, int], ...] = ()
    plan: CutPlan | None = None
    cut_kind: CutKind = "locc"
    splittable: bool = True  # False: each subcircuit's shots run on one QPU (its policy says)

    def __post_init__(self) -> None:
        if not self.subcircuits:
            raise ValueError(f"job {self.name}: no subcircuits")
        if self.deadline < self.arrival:
            raise ValueError(f"job {self.name}: deadline before arrival")
        n = len(self.subcircuits)
        for a, b in self.precedence:
            if not (0 <= a < n and 0 <= b < n) or a == b:
                raise ValueError(f"job {self.name}: bad precedence edge ({a}, {b})")
        topological_order(n, self.precedence)  # raises on a cycle

    def predecessors(self) -> list[list[int]]:
        """For each subcircuit, the subcircuits that must finish first."""
        preds: list[list[int]] = [[] for _ in self.subcircuits]
        for a, b in self.precedence:
            preds[b].append(a)
        return preds

    def topological_order(self) -> list[int]:
        return topological_order(len(self.subcircuits), self.precedence)


def topological_order(n: int, edges: Iterable[tuple[int, int]]) -> list[int]:
    """Kahn's order of ``range(n)`` (smallest index first among ready nodes)."""
    indeg = [0] * n
    succ: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    ready = sorted(i for i in range(n) if indeg[i] == 0)
    order: list[int] = []
    while ready:
        i = ready.pop(0)
        order.append(i)
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                ready.append(j)
                ready.sort()
    if len(order) != n:
        raise ValueError("precedence graph has a cycle")
    return order


def job_from_cut_plan(
    name: str, arrival: float, deadline: float, plan: CutPlan, kind: CutKind = "locc"
) -> Job:
    """Derive a job from a cut plan: one subcircuit per part, shots with the cut overhead."""
    for a, b, n in plan.wires:
        if not (0 <= a < len(plan.parts) and 0 <= b < len(plan.parts)) or n <= 0:
            raise ValueError(f"cut plan of {name}: bad wire entry ({a}, {b}, {n})")
    shots = plan.shots(kind)
    subs = tuple(Subcircuit(qubits=q, depth=d, shots=shots) for q, d in plan.parts)
    edges: tuple[tuple[int, int], ...] = ()
    if kind == "locc":
        edges = tuple(sorted({(a, b) for a, b, _ in plan.wires}))
    return Job(name, arrival, deadline, subs, edges, plan=plan, cut_kind=kind)


def with_cut_kind(job: Job, kind: CutKind) -> Job:
    """The same job cut with ``kind``; jobs without a cut plan are returned unchanged."""
    if job.plan is None or job.cut_kind == kind:
        return job
    derived = job_from_cut_plan(job.name, job.arrival, job.deadline, job.plan, kind)
    return derived if job.splittable else replace(derived, splittable=False)


def flip_cut(job: Job) -> Job:
    """The job with its other cut kind (LOCC <-> LO); unchanged without cut wires."""
    if job.plan is None or job.plan.total_wires == 0:
        return job
    return with_cut_kind(job, "lo" if job.cut_kind == "locc" else "locc")


@dataclass(frozen=True, slots=True)
class Fragment:
    """Part of one subcircuit's shots on one QPU, with its planned start and end."""

    job: str
    subcircuit: int
    qpu: str
    shots: int
    start: float
    end: float


@dataclass(frozen=True)
class Problem:
    """QPUs, jobs, the current time and fragments already running or done (kept as they are)."""

    qpus: tuple[QPU, ...]
    jobs: tuple[Job, ...]
    now: float = 0.0
    fixed: tuple[Fragment, ...] = ()

    def __post_init__(self) -> None:
        if len({q.name for q in self.qpus}) != len(self.qpus):
            raise ValueError("QPU names must be unique")
        if len({j.name for j in self.jobs}) != len(self.jobs):
            raise ValueError("job names must be unique")

    def qpu(self, name: str) -> QPU:
        for q in self.qpus:
            if q.name == name:
                return q
        raise KeyError(name)

    def job(self, name: str) -> Job:
        for j in self.jobs:
            if j.name == name:
                return j
        raise KeyError(name)

    def recut(self, names: frozenset[str] | set[str]) -> Problem:
        """The problem with the jobs in ``names`` switched to their other cut kind."""
        if not names:
            return self
        jobs = tuple(flip_cut(j) if j.name in names else j for j in self.jobs)
        return Problem(self.qpus, jobs, self.now, self.fixed)

    def with_cut_kind(self, kind: CutKind) -> Problem:
        """Every job re-derived with ``kind`` (the "without LOCC awareness" ablation)."""
        if self.fixed:
            raise ValueError("cannot change the cut kind of jobs that already run")
        return Problem(self.qpus, tuple(with_cut_kind(j, kind) for j in self.jobs), self.now)


@dataclass(frozen=True)
class Schedule:
    """Admitted jobs and their fragments; a dropped job has no fragments.

    ``late`` lists admitted jobs that already run (they cannot be dropped) but can no longer
    meet their deadline; every other admitted job ends by its deadline. ``recut`` lists jobs
    the schedule runs with their other cut kind (see :func:`flip_cut`): a LOCC-aware scheduler
    may run a job with LO cuts when dropping the precedence pays for the extra shots.
    """

    admitted: frozenset[str]
    fragments: tuple[Fragment, ...]
    method: str = ""
    late: frozenset[str] = frozenset()
    recut: frozenset[str] = frozenset()
    stats: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def served(self) -> int:
        """Number of jobs served: admitted and finished by their deadline."""
        return len(self.admitted - self.late)

    def fragments_of(self, job: str) -> list[Fragment]:
        return [f for f in self.fragments if f.job == job]
