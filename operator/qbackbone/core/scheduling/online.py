"""Online re-planning: when a job arrives or a QPU changes, plan again around what runs.

Fragments that have started by ``now`` stay exactly where they are (same QPU, shots, times);
their jobs stay admitted. Everything else (fragments not yet started, new jobs) is planned
again by the QB scheduler, with the remaining shots of partly-run subcircuits, warm-started
from the previous plan (one more start: its order and QPU choices), so a re-plan serves at
least what following the previous plan still can, unless its budget runs out first.
"""

from __future__ import annotations

from collections.abc import Sequence

from .annealing import AnnealingParams, anneal
from .model import QPU, Job, Problem, Schedule, flip_cut


def replan(
    problem: Problem,
    previous: Schedule,
    now: float,
    params: AnnealingParams | None = None,
    new_jobs: Sequence[Job] = (),
    qpus: Sequence[QPU] | None = None,
) -> tuple[Problem, Schedule]:
    """Re-plan at ``now`` with ``new_jobs`` added and (optionally) an updated QPU list.

    Returns the problem that was solved (its ``fixed`` fragments are the ones that had
    started; jobs the previous schedule re-cut appear with that cut) and the new schedule.
    A QPU that disappears from ``qpus`` keeps its running fragments (they finish where they
    are) but gets nothing new. Jobs whose deadline has passed and that have not started are
    left out.
    """
    fleet = tuple(qpus) if qpus is not None else problem.qpus
    names = {q.name for q in fleet}
    fixed = tuple(f for f in previous.fragments if f.start < now)
    # A QPU that went away but still runs a fragment stays in the model, closed for new work.
    gone = {f.qpu for f in fixed} - names
    keep = tuple(
        QPU(q.name, q.qubits, q.max_depth, q.shot_time, q.setup_time, float("inf"))
        for q in problem.qpus
        if q.name in gone
    )
    running = {f.job for f in fixed}
    jobs = tuple(
        flip_cut(j) if j.name in previous.recut else j  # jobs keep the cut they were given
        for j in (*problem.jobs, *new_jobs)
        if j.name in running or j.deadline > now
    )
    residual = Problem(fleet + keep, jobs, now=now, fixed=fixed)
    return residual, anneal(residual, params, warm=previous)
