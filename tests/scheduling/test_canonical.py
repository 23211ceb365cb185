"""Relabelling a problem (the order and names of its QPUs and jobs) does not change what the
schedulers serve: they search its canonical order (core/scheduling/canonical.py)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from qbackbone.core.scheduling import (
    AnnealingParams,
    InstanceParams,
    Problem,
    Schedule,
    anneal,
    check_schedule,
    edf,
    generate,
    list_scheduling,
    random_schedule,
)
from qbackbone.core.scheduling.canonical import canonical

from .conftest import tiny_problem


def relabel(problem: Problem, seed: int) -> tuple[Problem, dict[str, str], dict[str, str]]:
    """The problem with QPUs and jobs shuffled and renamed; returns it and the new -> old
    names of QPUs and of jobs."""
    rng = random.Random(seed)
    qnew = {q.name: f"qpu{rng.random():.12f}" for q in problem.qpus}
    jnew = {j.name: f"job{rng.random():.12f}" for j in problem.jobs}
    qpus = [replace(q, name=qnew[q.name]) for q in problem.qpus]
    jobs = [
        replace(j, name=jnew[j.name], subcircuits=tuple(
            s if s.qpus is None else replace(s, qpus=frozenset(qnew[n] for n in s.qpus))
            for s in j.subcircuits))
        for j in problem.jobs
    ]
    rng.shuffle(qpus)
    rng.shuffle(jobs)
    fixed = [replace(f, job=jnew[f.job], qpu=qnew[f.qpu]) for f in problem.fixed]
    rng.shuffle(fixed)
    out = Problem(tuple(qpus), tuple(jobs), problem.now, tuple(fixed))
    return out, {v: k for k, v in qnew.items()}, {v: k for k, v in jnew.items()}


def renamed(s: Schedule, qold: dict[str, str], jold: dict[str, str]) -> Schedule:
    frags = tuple(sorted((replace(f, job=jold[f.job], qpu=qold[f.qpu]) for f in s.fragments),
                         key=lambda f: (f.start, f.qpu, f.job, f.subcircuit)))
    return Schedule(frozenset(jold[n] for n in s.admitted), frags,
                    recut=frozenset(jold[n] for n in s.recut))


def _same(a: Schedule, b: Schedule) -> bool:
    def key(s: Schedule) -> tuple[object, ...]:
        return (s.admitted, s.recut, sorted(s.fragments, key=lambda f: (f.start, f.qpu, f.job)))
    return key(a) == key(b)


INSTANCES = [
    InstanceParams(n_jobs=n, n_qpus=q, load=load, deadline_coef=coef, seed=seed)
    for n, q, load, coef, seed in [(5, 3, 2.0, 1.0, 11), (8, 4, 2.0, 0.75, 12),
                                   (12, 4, 3.0, 1.0, 13), (10, 6, 1.5, 0.75, 14)]
]
FAST = AnnealingParams(seed=3, work_budget=60_000)


def test_canonical_order_is_idempotent_and_label_free() -> None:
    problem = generate(INSTANCES[2])
    c = canonical(problem)
    assert canonical(c) is c
    for seed in range(3):
        other, qold, jold = relabel(problem, seed)
        oc = canonical(other)
        assert [qold[q.name] for q in oc.qpus] == [q.name for q in c.qpus] or all(
            # ties only between QPUs with the same figures
            (a.shot_time, a.setup_time, a.qubits) == (b.shot_time, b.setup_time, b.qubits)
            for a, b in zip(oc.qpus, c.qpus, strict=True))
        assert [jold[j.name] for j in oc.jobs] == [j.name for j in c.jobs]


@pytest.mark.parametrize("inst", INSTANCES, ids=lambda p: f"{p.n_jobs}x{p.n_qpus}-s{p.seed}")
def test_relabelling_does_not_change_what_is_served(inst: InstanceParams) -> None:
    problem = generate(inst)
    ref = anneal(problem, FAST)
    check_schedule(problem, ref)
    baselines: list[Callable[[Problem], Schedule]] = [
        edf, lambda p: edf(p, split=False), list_scheduling, lambda p: random_schedule(p, 1)]
    served = [b(problem).served for b in baselines]
    for seed in range(3):
        other, qold, jold = relabel(problem, seed)
        got = anneal(other, FAST)
        check_schedule(other, got)
        assert got.served == ref.served
        assert _same(renamed(got, qold, jold), ref)  # the same plan, names aside
        assert [b(other).served for b in baselines] == served


@pytest.mark.parametrize("seed", range(4))
def test_relabelling_tiny_problems(seed: int) -> None:
    problem = tiny_problem(seed)
    ref = anneal(problem, AnnealingParams(iterations=400, seed=seed))
    for k in range(4):
        other, _, _ = relabel(problem, 100 + k)
        got = anneal(other, AnnealingParams(iterations=400, seed=seed))
        check_schedule(other, got)
        assert got.served == ref.served
