"""The instance classes of the scheduler's quality benchmark (core/scheduling/instance_classes.py)
and the generator options behind them: valid, deterministic problems on the exact model's grid;
each option changes what it claims and nothing else; the QB scheduler plans them validly."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from qbackbone.core.scheduling import (
    AnnealingParams,
    InstanceParams,
    Problem,
    anneal,
    check_schedule,
    generate,
)
from qbackbone.core.scheduling.generator import reference_time
from qbackbone.core.scheduling.instance_classes import (
    INSTANCE_CLASSES,
    MILQ_FIRST_SETUP,
    MilqParams,
    milq_like,
    milq_partition,
    on_grid,
)

CLASSES = sorted(INSTANCE_CLASSES)


def _fingerprint(problem: Problem) -> str:
    return hashlib.sha256(repr(problem).encode()).hexdigest()[:16]


def test_defaults_generate_what_they_did_before_the_options() -> None:
    # fingerprints taken with the generator before the options existed
    for params, fp in [
        (InstanceParams(n_jobs=5, n_qpus=3, seed=0), "d128b23a6bc8362d"),
        (InstanceParams(n_jobs=8, n_qpus=4, load=2.0, deadline_coef=0.75, seed=7),
         "62ae9dff465dac7e"),
        (InstanceParams(seed=3), "b422dd1e26726c72"),
    ]:
        assert _fingerprint(generate(params)) == fp


@pytest.mark.parametrize("name", CLASSES)
def test_class_problems_are_valid_and_deterministic(name: str) -> None:
    make = INSTANCE_CLASSES[name]
    for seed in range(3):
        p = make(seed)
        assert p == make(seed)  # same seed, same problem
        assert on_grid(p)
        assert p.jobs and p.qpus and not p.fixed
        for job in p.jobs:
            assert job.arrival <= job.deadline
            for sub in job.subcircuits:  # every subcircuit has a QPU that can run it
                assert any(q.can_run(sub) for q in p.qpus), (name, seed, job.name)
    assert len({_fingerprint(make(s)) for s in range(3)}) == 3  # seeds differ


BASE = InstanceParams(n_jobs=8, n_qpus=4, load=2.0, deadline_coef=1.5, seed=5)
DAG = replace(BASE, dag_density=0.6, parts_weights=(0.0, 0.3, 0.4, 0.3), base_shots=(10, 20))


def test_availability_spread_delays_qpus_and_keeps_the_jobs() -> None:
    base, spread = generate(BASE), generate(replace(BASE, availability_spread=1.0))
    assert all(q.available_at == 0.0 for q in base.qpus)
    assert len({q.available_at for q in spread.qpus}) == len(spread.qpus)
    assert all(q.available_at > 0 for q in spread.qpus)
    assert spread.jobs == base.jobs
    assert [replace(q, available_at=0.0) for q in spread.qpus] == list(base.qpus)
    wider = generate(replace(BASE, availability_spread=3.0))
    assert max(q.available_at for q in wider.qpus) > max(q.available_at for q in spread.qpus)


def test_setup_range_gives_each_qpu_its_own_setup() -> None:
    base, het = generate(BASE), generate(replace(BASE, setup_range=(0.2, 3.0)))
    assert {q.setup_time for q in base.qpus} == {1.0}
    setups = [q.setup_time for q in het.qpus]
    assert len(set(setups)) == len(setups) and all(0.2 <= s <= 3.0 for s in setups)
    assert [replace(q, setup_time=1.0) for q in het.qpus] == list(base.qpus)
    assert [j.subcircuits for j in het.jobs] == [j.subcircuits for j in base.jobs]


def test_dag_density_makes_dags_with_branches() -> None:
    chains = generate(BASE)
    for job in chains.jobs:  # today: chains
        assert sorted(job.precedence) == [(i, i + 1) for i in range(len(job.subcircuits) - 1)]
    dags = generate(replace(DAG, n_jobs=30))
    branching = 0
    for job in dags.jobs:
        assert job.plan is not None and job.plan.total_wires <= 3
        outs = [a for a, _ in job.precedence]
        ins = [b for _, b in job.precedence]
        if any(outs.count(a) > 1 for a in outs) or any(ins.count(b) > 1 for b in ins):
            branching += 1
    assert branching >= 5
    # parts with no precedence at all in a job with several parts
    assert any(len(j.subcircuits) > 2 and len({x for e in j.precedence for x in e})
               < len(j.subcircuits) for j in dags.jobs)


def test_no_precedence_share_lo_cuts_jobs() -> None:
    base = generate(DAG)
    lo = generate(replace(DAG, no_precedence_share=0.5))
    kinds = [j.cut_kind for j in lo.jobs]
    assert "lo" in kinds and "locc" in kinds
    for a, b in zip(base.jobs, lo.jobs, strict=True):
        assert a.plan == b.plan
        if b.cut_kind == "lo":
            assert b.precedence == ()
        else:
            assert b == a


def test_deadline_basis_total_vs_critical_path() -> None:
    crit = generate(DAG)
    total = generate(replace(DAG, deadline_basis="total"))
    assert [j.arrival for j in crit.jobs] == [j.arrival for j in total.jobs]
    looser = 0
    for a, b in zip(crit.jobs, total.jobs, strict=True):
        assert b.deadline >= a.deadline
        if reference_time(a, crit.qpus, "total") > reference_time(a, crit.qpus) + 1e-9:
            assert b.deadline > a.deadline
            looser += 1
    assert looser >= 2
    # chains: the two bases agree
    chain = generate(BASE)
    assert chain == generate(replace(BASE, deadline_basis="total"))


def test_option_validation() -> None:
    for bad in [{"availability_spread": -1.0}, {"setup_range": (2.0, 1.0)},
                {"deadline_basis": "sum"}, {"dag_density": 1.5}, {"max_wires": -1}]:
        with pytest.raises(ValueError):
            InstanceParams(**bad)  # type: ignore[arg-type]


def test_milq_like_shape() -> None:
    assert milq_partition(4, (5, 6, 20)) == [4]
    assert milq_partition(27, (5, 6, 20)) == [20, 5, 2]  # never a 1-qubit part
    assert milq_partition(9, (5, 5)) == [5, 4]
    assert milq_partition(6, (5, 5)) == [4, 2]
    with pytest.raises(ValueError):
        milq_partition(11, (5, 5))
    p = milq_like(MilqParams(n_jobs=8, capacities=(5, 6, 20), seed=1))
    assert [q.qubits for q in p.qpus] == [5, 6, 20]
    for q in p.qpus:
        assert q.available_at + q.setup_time == pytest.approx(MILQ_FIRST_SETUP)
    assert {j.arrival for j in p.jobs} == {0.0}
    assert len({j.deadline for j in p.jobs}) == 1
    assert all(not j.splittable and len(j.subcircuits) == 1 for j in p.jobs)  # no cuts
    cut = milq_like(MilqParams(n_jobs=10, capacities=(5, 5), max_qubits=10, seed=2))
    multi = [j for j in cut.jobs if len(j.subcircuits) > 1]
    assert multi and all(j.precedence == ((0, 1),) for j in multi)
    assert all(j.subcircuits[0].shots == 9 * j.plan.base_shots for j in multi if j.plan)
    looser = milq_like(MilqParams(n_jobs=8, horizon_coef=2.0, seed=1))
    assert looser.jobs[0].deadline == pytest.approx(2 * p.jobs[0].deadline, abs=1e-6)


@pytest.mark.parametrize("name", CLASSES)
def test_anneal_plans_every_class_validly(name: str) -> None:
    for seed in range(2):
        problem = INSTANCE_CLASSES[name](seed)
        schedule = anneal(problem, AnnealingParams(seed=seed, work_budget=60_000))
        assert check_schedule(problem, schedule) == schedule.admitted - schedule.late


def test_critical_path_class_is_the_dense_class_with_tighter_deadlines() -> None:
    for tag in ("5x3", "8x4"):
        for seed in range(3):
            dense = INSTANCE_CLASSES[f"{tag}-dense-locc"](seed)
            crit = INSTANCE_CLASSES[f"{tag}-critical-path"](seed)
            assert dense.qpus == crit.qpus
            pairs = list(zip(dense.jobs, crit.jobs, strict=True))
            assert all(replace(b, deadline=a.deadline) == a for a, b in pairs)
            assert all(b.deadline <= a.deadline for a, b in pairs)
            assert any(b.deadline < a.deadline for a, b in pairs)
