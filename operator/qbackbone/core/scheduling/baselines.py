"""Deadline-aware baselines: greedy EDF with shot splitting, list scheduling, random.

All three place jobs one at a time with the shared decoder and reject a job whose fragments
would end after its deadline, so none of them ever returns a late job. They schedule the
problem in its canonical order (:func:`.canonical.canonical`), so listing QPUs and jobs in
another order or under other names does not change what they serve.
"""

from __future__ import annotations

import random

from .canonical import canonical
from .model import Problem, Schedule
from .placement import Choice, Compiled, decode, to_schedule


def _committed_first(c: Compiled, order: list[int]) -> list[int]:
    return sorted(order, key=lambda j: not c.jobs[j].committed)


def edf(problem: Problem, split: bool = True, compiled: Compiled | None = None) -> Schedule:
    """Greedy earliest-deadline-first; each subcircuit's shots water-filled over every eligible
    QPU (``split``) or put whole on the QPU that finishes it first."""
    c = compiled or Compiled(canonical(problem))
    order = sorted(range(len(c.jobs)), key=lambda j: (c.jobs[j].deadline, c.jobs[j].release, j))
    placed, late = decode(c, _committed_first(c, order), split=split)
    return to_schedule(c, placed, late, "edf" if split else "edf-nosplit")


def list_scheduling(problem: Problem, compiled: Compiled | None = None) -> Schedule:
    """List scheduling as a quantum cloud queue does it: jobs in arrival order, subcircuits in
    precedence order, each on the eligible QPU where it finishes first (earliest finish time,
    gaps allowed); a job that would miss its deadline is rejected at admission."""
    c = compiled or Compiled(canonical(problem))
    order = sorted(range(len(c.jobs)), key=lambda j: (c.jobs[j].release, j))
    placed, late = decode(c, _committed_first(c, order), split=False)
    return to_schedule(c, placed, late, "list")


def random_schedule(problem: Problem, seed: int = 0, compiled: Compiled | None = None) -> Schedule:
    """Random job order and, per subcircuit, a random non-empty set of eligible QPUs over
    which its shots are split; late jobs are rejected."""
    c = compiled or Compiled(canonical(problem))
    rng = random.Random(seed)
    order = list(range(len(c.jobs)))
    rng.shuffle(order)
    choices: list[list[Choice]] = []
    for jd in c.jobs:
        row: list[Choice] = []
        for elig in jd.eligible:
            if not elig:
                row.append(None)
                continue
            k = rng.randint(1, len(elig))
            row.append(tuple(sorted(rng.sample(elig, k))))
        choices.append(row)
    placed, late = decode(c, _committed_first(c, order), choices, split=True)
    return to_schedule(c, placed, late, "random")
