"""What the exact model (:mod:`.exact`) needs to know about fragments that already run.

Shared with :mod:`.exact_step` (model size), so both count the same optional fragments. The
semantics are the heuristics' (:class:`.placement.Compiled`): a job with fixed fragments is
*committed* (always admitted, keeps its cut), and only its remaining shots are planned.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from .model import Job, Problem, flip_cut


class Committed(NamedTuple):
    """A committed job, per subcircuit: shots still to run, first fixed start (``inf``:
    none), last fixed end (``-inf``: none) and the QPUs its fixed fragments ran on."""

    remaining: tuple[int, ...]
    start: tuple[float, ...]
    end: tuple[float, ...]
    on: tuple[frozenset[str], ...]


def committed_work(problem: Problem) -> dict[str, Committed]:
    """Committed jobs by name. Raises ``ValueError`` on a fixed fragment that names an unknown
    job, QPU or subcircuit."""
    jobs = {j.name: j for j in problem.jobs}
    names = {q.name for q in problem.qpus}
    acc: dict[str, tuple[list[int], list[float], list[float], list[set[str]]]] = {}
    for f in problem.fixed:
        job = jobs.get(f.job)
        if job is None or f.qpu not in names or not 0 <= f.subcircuit < len(job.subcircuits):
            raise ValueError(f"fixed fragment {f} names an unknown job, QPU or subcircuit")
        k = len(job.subcircuits)
        rem, st, en, on = acc.setdefault(
            f.job, ([s.shots for s in job.subcircuits], [math.inf] * k, [-math.inf] * k,
                    [set() for _ in range(k)]))
        i = f.subcircuit
        rem[i] -= f.shots
        st[i] = min(st[i], f.start)
        en[i] = max(en[i], f.end)
        on[i].add(f.qpu)
    return {
        name: Committed(tuple(max(0, r) for r in rem), tuple(st), tuple(en),
                        tuple(frozenset(o) for o in on))
        for name, (rem, st, en, on) in acc.items()
    }


def variants(job: Job, recut: bool, committed: Committed | None) -> list[Job]:
    """The cut variants the model offers: both with ``recut`` and cut wires, else the job's
    own; a committed job keeps the cut it runs with."""
    if recut and committed is None and flip_cut(job) != job:
        return [job, flip_cut(job)]
    return [job]


def usable(problem: Problem, job: Job, si: int, committed: Committed | None) -> list[int]:
    """QPU indices where subcircuit ``si`` of ``job`` may get a new fragment: eligible and
    freeing up some time; an unsplittable job stays on the QPU its fixed fragments use."""
    sub = job.subcircuits[si]
    out = [qi for qi, q in enumerate(problem.qpus)
           if q.can_run(sub) and math.isfinite(q.available_at)]
    if committed is not None and committed.on[si] and not job.splittable:
        out = [qi for qi in out if problem.qpus[qi].name in committed.on[si]]
    return out


def optional_fragments(problem: Problem, recut: bool = True) -> int:
    """Optional fragments of the exact model of ``problem``: job x cut variant x subcircuit
    with shots left x usable QPU (the model may leave out some whose QPU frees up too late)."""
    work = committed_work(problem)
    n = 0
    for job in problem.jobs:
        w = work.get(job.name)
        for var in variants(job, recut, w):
            for si, sub in enumerate(var.subcircuits):
                if (sub.shots if w is None else w.remaining[si]) > 0:
                    n += len(usable(problem, var, si, w))
    return n


def merged_spans(
    problem: Problem, down: Callable[[float], int], up: Callable[[float], int]
) -> dict[str, list[tuple[int, int]]]:
    """Per QPU, the fixed fragments' intervals on the grid, rounded outward (start down, end
    up) and merged where they overlap or touch (rounding may make neighbours overlap)."""
    spans: dict[str, list[tuple[int, int]]] = {}
    for f in problem.fixed:
        spans.setdefault(f.qpu, []).append((down(f.start), max(down(f.start), up(f.end))))
    out: dict[str, list[tuple[int, int]]] = {}
    for name, iv in spans.items():
        merged: list[tuple[int, int]] = []
        for a, b in sorted(iv):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        out[name] = merged
    return out


def horizon(
    problem: Problem,
    work: dict[str, Committed],
    setup: list[int],
    rate: list[int],
    up: Callable[[float], int],
) -> int:
    """A time (grid units) by which every committed job can end in some optimal plan: after
    every deadline, release and fixed end, each committed job's remaining subcircuits one
    after another, each whole on its slowest usable QPU (an optimal plan stays optimal when
    its late jobs are moved there)."""
    t0 = max([up(problem.now),
              *(up(q.available_at) for q in problem.qpus if math.isfinite(q.available_at)),
              *(up(j.deadline) for j in problem.jobs),
              *(up(j.arrival) for j in problem.jobs),
              *(up(f.end) for f in problem.fixed)])
    extra = 0
    for job in problem.jobs:
        w = work.get(job.name)
        if w is None:
            continue
        for si, need in enumerate(w.remaining):
            if need:
                extra += max((setup[qi] + rate[qi] * need for qi in usable(problem, job, si, w)),
                             default=0)
    return t0 + extra + 1
