"""A canonical order of a problem's QPUs and jobs, so that schedulers do not depend on labels.

The heuristics break ties by position (the first QPU that finishes a subcircuit earliest, the
first job among equal deadlines, the order a seeded search enumerates), so listing the same
QPUs and jobs in another order, or under other names, could change their answer. Sorting QPUs
and jobs by a key of their content alone (never their names or positions) before searching
makes every relabelling of a problem the same problem: only items whose content is identical
keep their relative order, and exchanging those is a symmetry of the problem. Names are kept,
so a schedule of the canonical problem is a schedule of the original one as it is.
"""

from __future__ import annotations

from typing import Any

from .model import QPU, Job, Problem


def canonical(problem: Problem) -> Problem:
    """``problem`` with its QPUs, jobs and fixed fragments in a content order (itself when
    it is already in that order). Idempotent."""
    # QPUs first, by their own figures and how jobs use them (without naming the jobs): which
    # subcircuits name it as allowed, and the fixed work on it.
    allowed: dict[str, list[tuple[Any, ...]]] = {q.name: [] for q in problem.qpus}
    for job in problem.jobs:
        for sub in job.subcircuits:
            for name in sub.qpus or ():
                if name in allowed:
                    allowed[name].append((job.arrival, job.deadline, sub.qubits, sub.depth,
                                          sub.shots))
    running: dict[str, list[tuple[float, float, int, int]]] = {q.name: [] for q in problem.qpus}
    for f in problem.fixed:
        if f.qpu in running:
            running[f.qpu].append((f.start, f.end, f.shots, f.subcircuit))

    def qpu_key(q: QPU) -> tuple[Any, ...]:
        return (q.shot_time, q.setup_time, q.available_at, q.qubits, q.max_depth,
                sorted(allowed[q.name]), sorted(running[q.name]))

    qpus = tuple(sorted(problem.qpus, key=qpu_key))
    qpos = {q.name: i for i, q in enumerate(qpus)}
    work: dict[str, list[tuple[int, int, int, float, float]]] = {j.name: [] for j in problem.jobs}
    for f in problem.fixed:
        if f.job in work:
            work[f.job].append((f.subcircuit, qpos.get(f.qpu, -1), f.shots, f.start, f.end))

    def job_key(j: Job) -> tuple[Any, ...]:
        subs = tuple(
            (s.qubits, s.depth, s.shots, s.qpus is not None,
             sorted(qpos.get(n, -1) for n in s.qpus or ()))
            for s in j.subcircuits
        )
        plan = () if j.plan is None else (j.plan.parts, j.plan.wires, j.plan.base_shots)
        return (j.arrival, j.deadline, subs, sorted(j.precedence), j.splittable, j.cut_kind,
                plan, sorted(work[j.name]))

    jobs = tuple(sorted(problem.jobs, key=job_key))
    jpos = {j.name: i for i, j in enumerate(jobs)}
    fixed = tuple(sorted(problem.fixed, key=lambda f: (
        f.start, f.end, qpos.get(f.qpu, -1), jpos.get(f.job, -1), f.subcircuit, f.shots)))
    if qpus == problem.qpus and jobs == problem.jobs and fixed == problem.fixed:
        return problem
    return Problem(qpus, jobs, problem.now, fixed)
