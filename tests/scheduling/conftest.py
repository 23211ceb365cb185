"""Builders for small scheduling problems."""

from __future__ import annotations

import random

import pytest

from qbackbone.core.scheduling import QPU, CutPlan, Job, Problem, Subcircuit, job_from_cut_plan


def make_qpu(name: str, qubits: int = 10, depth: int = 50, shot: float = 1.0,
             setup: float = 0.5, available_at: float = 0.0) -> QPU:
    return QPU(name, qubits, depth, shot, setup, available_at)


def make_job(name: str, arrival: float, deadline: float, shots: list[int],
             qubits: list[int] | None = None, edges: tuple[tuple[int, int], ...] = ()) -> Job:
    qubits = qubits or [2] * len(shots)
    subs = tuple(Subcircuit(q, 5, s) for q, s in zip(qubits, shots, strict=True))
    return Job(name, arrival, deadline, subs, edges)


def tiny_problem(seed: int) -> Problem:
    """3 jobs, 2 QPUs, shots <= 2: small enough to enumerate every schedule."""
    rng = random.Random(seed)
    qpus = (make_qpu("a", qubits=4, shot=1.0, setup=0.5),
            make_qpu("b", qubits=2, shot=1.5, setup=0.5))
    jobs = []
    for i in range(3):
        k = rng.choice([1, 2])
        arrival = float(rng.randint(0, 3))
        shots = [rng.randint(1, 2) for _ in range(k)]
        qubits = [rng.choice([2, 2, 3]) for _ in range(k)]
        edges = ((0, 1),) if k == 2 and rng.random() < 0.7 else ()
        deadline = arrival + rng.choice([2.0, 3.0, 4.0, 5.0])
        jobs.append(make_job(f"t{i}", arrival, deadline, shots, qubits, edges))
    return Problem(qpus, tuple(jobs))


@pytest.fixture
def chain_plan() -> CutPlan:
    return CutPlan(parts=((4, 20), (5, 30), (3, 10)), wires=((0, 1, 1), (1, 2, 1)), base_shots=100)


@pytest.fixture
def chain_job(chain_plan: CutPlan) -> Job:
    return job_from_cut_plan("chain", 0.0, 100.0, chain_plan)
