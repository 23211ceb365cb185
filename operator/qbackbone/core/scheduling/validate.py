"""An independent check of a schedule against every constraint of the problem.

Deliberately written without the schedulers' placement code: it recomputes everything from the
fragments (eligibility, durations, exclusivity, precedence, shot totals, deadlines). Times are
compared with the schedulers' own predicates (:mod:`.timing`: one absolute tolerance of 1 ns),
so the validator and the schedulers agree on what is feasible.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from typing import NamedTuple

from .model import Fragment, Problem, Schedule
from .timing import no_overlap, not_before, on_time, same_time


class ScheduleError(ValueError):
    """A schedule breaks a constraint of its problem."""


class ValidationReport(NamedTuple):
    valid: bool
    violations: list[str]
    served: frozenset[str]


def validate(problem: Problem, schedule: Schedule) -> ValidationReport:
    """Check ``schedule`` against ``problem``; ``served`` is the set of on-time admitted jobs."""
    bad: list[str] = []
    for name in schedule.recut:
        job = next((j for j in problem.jobs if j.name == name), None)
        if job is None or job.plan is None or job.plan.total_wires == 0:
            bad.append(f"job {name} is re-cut but has no cut wires")
        if any(f.job == name for f in problem.fixed):
            bad.append(f"job {name} already runs and cannot be re-cut")
    problem = problem.recut(schedule.recut)  # check re-cut jobs against their other variant
    jobs = {j.name: j for j in problem.jobs}
    qpus = {q.name: q for q in problem.qpus}
    for name in schedule.admitted:
        if name not in jobs:
            bad.append(f"admitted job {name} is not in the problem")

    fixed = set(problem.fixed)
    present = set(schedule.fragments)
    for f in problem.fixed:
        if f not in present:
            bad.append(f"fixed fragment {f} was moved or removed")
        if f.job not in schedule.admitted:
            bad.append(f"job {f.job} has running fragments but is not admitted")

    by_job: dict[str, list[Fragment]] = defaultdict(list)
    by_qpu: dict[str, list[Fragment]] = defaultdict(list)
    for f in schedule.fragments:
        job = jobs.get(f.job)
        qpu = qpus.get(f.qpu)
        if job is None or qpu is None:
            bad.append(f"fragment {f} names an unknown job or QPU")
            continue
        by_job[f.job].append(f)
        by_qpu[f.qpu].append(f)
        if f.job not in schedule.admitted:
            bad.append(f"fragment of dropped job {f.job}")
        if not 0 <= f.subcircuit < len(job.subcircuits):
            bad.append(f"fragment {f} names subcircuit {f.subcircuit} of {len(job.subcircuits)}")
            continue
        sub = job.subcircuits[f.subcircuit]
        if f.shots <= 0:
            bad.append(f"fragment {f} has no shots")
        if sub.qubits > qpu.qubits or sub.depth > qpu.max_depth or (
                sub.qpus is not None and qpu.name not in sub.qpus):
            bad.append(
                f"{f.job}[{f.subcircuit}] ({sub.qubits} q, depth {sub.depth}) is not eligible "
                f"on {qpu.name} ({qpu.qubits} q, max depth {qpu.max_depth})"
            )
        expected_end = f.start + qpu.setup_time + f.shots * qpu.shot_time
        if not same_time(f.end, expected_end):
            bad.append(f"fragment {f}: end should be {expected_end:.6f}")
        if f in fixed:
            continue
        earliest = max(problem.now, qpu.available_at, job.arrival)
        if not not_before(f.start, earliest):
            bad.append(f"fragment {f} starts before {earliest:.6f} (now/QPU busy/arrival)")

    for name, frags in by_qpu.items():
        frags.sort(key=lambda fr: (fr.start, fr.end))
        for a, b in itertools.pairwise(frags):
            if not no_overlap(a.end, b.start):
                bad.append(f"QPU {name} runs two fragments at once: {a} and {b}")

    served: set[str] = set()
    running = {f.job for f in problem.fixed}
    for name in schedule.admitted:
        job = jobs.get(name)
        if job is None:
            continue
        frags = by_job.get(name, [])
        shots = [0] * len(job.subcircuits)
        starts = [float("inf")] * len(job.subcircuits)
        ends = [float("-inf")] * len(job.subcircuits)
        for f in frags:
            if 0 <= f.subcircuit < len(job.subcircuits):
                shots[f.subcircuit] += f.shots
                starts[f.subcircuit] = min(starts[f.subcircuit], f.start)
                ends[f.subcircuit] = max(ends[f.subcircuit], f.end)
        for i, sub in enumerate(job.subcircuits):
            if shots[i] != sub.shots:
                bad.append(f"{name}[{i}] gets {shots[i]} shots, needs {sub.shots}")
            on = {f.qpu for f in frags if f.subcircuit == i}
            if not job.splittable and len(on) > 1:
                bad.append(f"{name}[{i}] is split over {sorted(on)}; the job may not be split")
        for before, after in job.precedence:
            if not no_overlap(ends[before], starts[after]):
                bad.append(f"{name}: subcircuit {after} starts before {before} has finished")
        finish = max((f.end for f in frags), default=float("inf"))
        if on_time(finish, job.deadline):
            served.add(name)
        elif name not in running:  # a job that already runs may end late; it is not served
            bad.append(f"{name} ends at {finish:.6f}, after its deadline {job.deadline:.6f}")
    return ValidationReport(not bad, bad, frozenset(served))


def check_schedule(problem: Problem, schedule: Schedule) -> frozenset[str]:
    """Raise :class:`ScheduleError` listing every violation; return the served jobs."""
    report = validate(problem, schedule)
    if not report.valid:
        shown = "; ".join(report.violations[:10])
        more = len(report.violations) - 10
        raise ScheduleError(shown + (f"; and {more} more" if more > 0 else ""))
    return report.served
