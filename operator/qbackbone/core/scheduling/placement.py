"""The placement engine shared by the heuristics: QPU timelines, water-filled shot splits and a
serial decoder that places jobs one after another (gaps may be filled, nothing moves back).

A *choice* for a subcircuit is ``None`` (automatic: all eligible QPUs with shot splitting, the
earliest-finishing QPU without) or a tuple of QPU indices to water-fill over.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from .engine import Busy, native_engine
from .model import Fragment, Problem, Schedule
from .timing import on_time
from .waterfill import waterfill, waterfill_capped

Interval = tuple[float, float]
#: A QPU's busy intervals as (starts, ends), sorted, non-overlapping (so ends are sorted too).
Timeline = tuple[tuple[float, ...], tuple[float, ...]]
Choice = tuple[int, ...] | None
Placed = tuple[int, int, int, float, float]  # subcircuit, qpu index, shots, start, end

_INF = float("inf")

#: A split fragment's shots must take at least this many times its QPU's setup time
#: (otherwise the QPU is left out of the split): splitting pays only for long subcircuits.
MIN_FRAGMENT = 2.0


@dataclass(frozen=True, slots=True)
class JobData:
    """Per-job facts the decoder needs, computed once per problem."""

    index: int
    name: str
    release: float
    deadline: float
    topo: tuple[int, ...]
    preds: tuple[tuple[int, ...], ...]
    eligible: tuple[tuple[int, ...], ...]
    remaining: tuple[int, ...]
    fixed_end: tuple[float, ...]
    committed: bool
    splittable: bool = True

    @property
    def feasible(self) -> bool:
        """Every subcircuit with shots left has at least one eligible QPU."""
        return all(e or r == 0 for e, r in zip(self.eligible, self.remaining, strict=True))


class PyBusy:
    """Every QPU's timeline, for the pure-Python engine. A copy shares the timelines it has
    not changed (they are immutable tuples), so :meth:`same` compares by identity."""

    __slots__ = ("lines",)

    def __init__(self, lines: list[Timeline]) -> None:
        self.lines = lines

    def copy(self) -> PyBusy:
        return PyBusy(list(self.lines))

    def insert(self, q: int, start: float, end: float) -> None:
        self.lines[q] = insert(self.lines[q], start, end)

    def same(self, other: PyBusy) -> bool:
        return self.lines is other.lines or all(
            x is y for x, y in zip(self.lines, other.lines, strict=True))

    def timelines(self) -> list[Timeline]:
        return self.lines


class Compiled:
    """A problem in index form: QPU rates, release times, base timelines, job data, and the
    engine that places jobs (:mod:`.engine`: the compiled one when it is built, else this
    module's functions, the reference; both give the same plans)."""

    def __init__(self, problem: Problem, min_fragment: float = MIN_FRAGMENT,
                 engine: str | None = None) -> None:
        self.problem = problem
        self.min_fragment = min_fragment
        self.qpus = problem.qpus
        qindex = {q.name: i for i, q in enumerate(problem.qpus)}
        self.rate = [q.shot_time for q in problem.qpus]
        self.setup = [q.setup_time for q in problem.qpus]
        self.release = [max(problem.now, q.available_at) for q in problem.qpus]
        base: list[list[Interval]] = [[] for _ in problem.qpus]
        for f in problem.fixed:
            base[qindex[f.qpu]].append((f.start, f.end))
        self.base: list[Timeline] = []
        for iv in base:
            iv.sort()
            self.base.append((tuple(a for a, _ in iv), tuple(b for _, b in iv)))
        fixed_by_job: dict[str, list[Fragment]] = {}
        for f in problem.fixed:
            fixed_by_job.setdefault(f.job, []).append(f)
        # eligibility depends only on a subcircuit's shape: computed once per shape
        shapes: dict[tuple[int, int, frozenset[str] | None], tuple[int, ...]] = {}
        self.jobs: list[JobData] = []
        for ji, job in enumerate(problem.jobs):
            fixed = fixed_by_job.get(job.name, [])
            remaining = [s.shots for s in job.subcircuits]
            fixed_end = [-_INF] * len(job.subcircuits)
            for f in fixed:
                remaining[f.subcircuit] -= f.shots
                fixed_end[f.subcircuit] = max(fixed_end[f.subcircuit], f.end)
            eligible = []
            for sub in job.subcircuits:
                shape = (sub.qubits, sub.depth, sub.qpus)
                if shape not in shapes:
                    shapes[shape] = tuple(qi for qi, q in enumerate(problem.qpus)
                                          if q.can_run(sub))
                eligible.append(shapes[shape])
            self.jobs.append(
                JobData(
                    index=ji,
                    name=job.name,
                    release=max(job.arrival, problem.now),
                    deadline=job.deadline,
                    topo=tuple(job.topological_order()),
                    preds=tuple(tuple(p) for p in job.predecessors()),
                    eligible=tuple(eligible),
                    remaining=tuple(max(0, r) for r in remaining),
                    fixed_end=tuple(fixed_end),
                    committed=bool(fixed),
                    splittable=job.splittable,
                )
            )

        self.native = native_engine(self, engine)

    def fresh(self) -> Busy:
        """Every QPU's timeline before any job is placed."""
        return self.native.fresh() if self.native is not None else PyBusy(list(self.base))

    def place(self, busy: Busy, j: int, choices: Sequence[Choice], split: bool
              ) -> tuple[list[Placed], float]:
        """:func:`place_job` of job ``j`` with this problem's engine (``busy`` modified)."""
        if self.native is not None:
            return self.native.place_job(busy, j, choices, split)
        assert isinstance(busy, PyBusy)
        return place_job(self, busy.lines, self.jobs[j], choices, split)


def earliest_fit(timeline: Timeline, release: float, ready: float, duration: float) -> float:
    """Earliest start >= max(release, ready) where ``duration`` fits between busy intervals."""
    t = release if release > ready else ready
    starts, ends = timeline
    if not ends or ends[-1] <= t:
        return t
    i = bisect_right(ends, t)
    n = len(ends)
    while i < n:
        if starts[i] >= t + duration:
            return t
        if ends[i] > t:
            t = ends[i]
        i += 1
    return t


def insert(timeline: Timeline, start: float, end: float) -> Timeline:
    starts, ends = timeline
    i = bisect_right(starts, start)
    return ((*starts[:i], start, *starts[i:]), (*ends[:i], end, *ends[i:]))


def _place_single(
    c: Compiled, busy: list[Timeline], cands: Sequence[int], ready: float, shots: int
) -> tuple[int, float, float]:
    best = (-1, _INF, _INF)
    for q in cands:
        dur = c.setup[q] + shots * c.rate[q]
        s = earliest_fit(busy[q], c.release[q], ready, dur)
        if s + dur < best[2]:
            best = (q, s, s + dur)
    return best


def gap_end(timeline: Timeline, t: float) -> float:
    """Start of the first busy interval at or after ``t`` (``inf`` if none): with ``t`` free,
    the QPU is idle over ``[t, gap_end)``."""
    starts = timeline[0]
    i = bisect_left(starts, t)
    return starts[i] if i < len(starts) else _INF


def _place_split(
    c: Compiled,
    busy: list[Timeline],
    cands: Sequence[int],
    ready: float,
    shots: int,
    min_fragment: float,
) -> list[tuple[int, int, float, float]]:
    """Split ``shots`` over ``cands`` so that the subcircuit finishes early. Water-filling
    assumes each QPU free from its first idle time; a share that does not fit in that gap is
    either moved to the QPU's next gap where it fits (re-balancing up to three times) or, when
    that finishes later, cut to what the gap holds with the rest spread over the other QPUs
    (an uneven split that leaves the busy interval in place)."""
    starts = [earliest_fit(busy[q], c.release[q], ready, 0.0) for q in cands]
    first = list(starts)
    rates = [c.rate[q] for q in cands]
    mins = [min_fragment * c.setup[q] for q in cands]
    n: list[int] = []
    conflict = False
    moved_out: list[tuple[int, int, float, float]] | None = None
    for _ in range(3):
        avail = [s + c.setup[q] for s, q in zip(starts, cands, strict=True)]
        n = waterfill(shots, avail, rates, mins)
        fits: list[tuple[int, int, float, float]] = []
        moved = False
        for k, q in enumerate(cands):
            if n[k]:
                dur = c.setup[q] + n[k] * rates[k]
                s = earliest_fit(busy[q], c.release[q], ready, dur)
                fits.append((q, n[k], s, s + dur))
                if s > starts[k] + 1e-12:
                    starts[k] = s
                    moved = True
        if not moved:  # each fragment fits where it was assumed to start (or earlier)
            moved_out = fits
            break
        conflict = True
    if moved_out is None:
        moved_out = []
        for k, q in enumerate(cands):
            if n[k]:
                dur = c.setup[q] + n[k] * rates[k]
                s = earliest_fit(busy[q], c.release[q], ready, dur)
                moved_out.append((q, n[k], s, s + dur))
    if not conflict:
        return moved_out
    # the uneven alternative: every QPU keeps its first gap, shares capped to what it holds
    avail = [s + c.setup[q] for s, q in zip(first, cands, strict=True)]
    caps = [
        max(0.0, math.floor((gap_end(busy[q], s) - a) / r)) if gap_end(busy[q], s) < _INF
        else _INF
        for s, a, r, q in zip(first, avail, rates, cands, strict=True)
    ]
    capped = waterfill_capped(shots, avail, rates, mins, caps)
    if capped is None:
        return moved_out
    uneven = [
        (q, capped[k], first[k], first[k] + c.setup[q] + capped[k] * rates[k])
        for k, q in enumerate(cands)
        if capped[k]
    ]
    if max(f[3] for f in uneven) < max(f[3] for f in moved_out) - 1e-12:
        return uneven
    return moved_out


def place_job(
    c: Compiled,
    busy: list[Timeline],
    jd: JobData,
    choices: Sequence[Choice],
    split: bool,
) -> tuple[list[Placed], float]:
    """Place every remaining shot of ``jd`` into ``busy`` (modified); return fragments, finish
    (``inf`` when a subcircuit has no usable QPU; ``busy`` is then partly filled).

    With shot splitting, subcircuits on the automatic choice are split only when needed: the
    job is first placed with each of them whole on its earliest-finishing QPU, and only if that
    misses the deadline are their shots water-filled (splits cost a setup per extra QPU)."""
    if not jd.feasible:
        return [], _INF
    if split and any(ch is None for ch in choices):
        trial = list(busy)
        placed, finish = _place(c, trial, jd, choices, split, auto_split=False)
        if on_time(finish, jd.deadline):
            busy[:] = trial
            return placed, finish
    return _place(c, busy, jd, choices, split, auto_split=True)


def _place(
    c: Compiled,
    busy: list[Timeline],
    jd: JobData,
    choices: Sequence[Choice],
    split: bool,
    auto_split: bool,
) -> tuple[list[Placed], float]:
    end = list(jd.fixed_end)
    placed: list[Placed] = []
    for s in jd.topo:
        shots = jd.remaining[s]
        if shots == 0:
            continue
        ready = max([jd.release, *(end[p] for p in jd.preds[s])])
        choice = choices[s]
        cands = [q for q in (choice or jd.eligible[s]) if c.release[q] < _INF]
        if not cands:
            return [], _INF
        if split and jd.splittable and len(cands) > 1 and (choice is not None or auto_split):
            # an explicit QPU set is used as given; the automatic one skips short fragments
            min_fragment = c.min_fragment if choice is None else 0.0
            for q, n, st, en in _place_split(c, busy, cands, ready, shots, min_fragment):
                busy[q] = insert(busy[q], st, en)
                placed.append((s, q, n, st, en))
                end[s] = max(end[s], en)
        else:
            q, st, en = _place_single(c, busy, cands, ready, shots)
            busy[q] = insert(busy[q], st, en)
            placed.append((s, q, shots, st, en))
            end[s] = max(end[s], en)
    return placed, max(end, default=-_INF)


def decode(
    c: Compiled,
    order: Sequence[int],
    choices: Sequence[Sequence[Choice]] | None = None,
    split: bool = True,
) -> tuple[dict[int, list[Placed]], set[int]]:
    """Serial decoder: jobs in ``order``; a job that would miss its deadline is dropped (its
    tentative fragments removed) unless it already runs. Returns placements and late jobs."""
    busy = c.fresh()
    placed: dict[int, list[Placed]] = {}
    late: set[int] = set()
    for j in order:
        jd = c.jobs[j]
        trial = busy.copy()
        ch = choices[j] if choices is not None else [None] * len(jd.topo)
        frags, finish = c.place(trial, j, ch, split)
        if on_time(finish, jd.deadline) or (jd.committed and finish < _INF):
            busy = trial
            placed[j] = frags
            if not on_time(finish, jd.deadline):
                late.add(j)
    return placed, late


def to_schedule(
    c: Compiled,
    placed: dict[int, list[Placed]],
    late: set[int],
    method: str,
    recut: frozenset[str] = frozenset(),
) -> Schedule:
    """Turn decoder output (plus the problem's fixed fragments) into a :class:`Schedule`."""
    frags = list(c.problem.fixed)
    for j, items in placed.items():
        name = c.jobs[j].name
        for s, q, n, st, en in items:
            frags.append(Fragment(name, s, c.qpus[q].name, n, st, en))
    admitted = {c.jobs[j].name for j in placed} | {f.job for f in c.problem.fixed}
    frags.sort(key=lambda f: (f.start, f.qpu))
    return Schedule(
        admitted=frozenset(admitted),
        fragments=tuple(frags),
        method=method,
        late=frozenset(c.jobs[j].name for j in late),
        recut=recut & admitted,
    )
