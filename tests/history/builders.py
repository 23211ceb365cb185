"""Records for history and learning tests."""

from __future__ import annotations

from qbackbone.core.history.record import FragmentRecord, JobRecord


def fragment(qpu: str = "a", shots: float = 1000.0, setup: float = 1.0, shot: float = 1e-3,
             actual: float | None = 2.0, wait: float = 0.0,
             estimated: float | None = 0.8) -> FragmentRecord:
    return FragmentRecord(qpu=qpu, shots=shots, setup_seconds=setup, shot_seconds=shot,
                          predicted_seconds=setup + shots * shot, actual_seconds=actual,
                          actual_wait_seconds=wait, estimated_success=estimated)


def record(name: str = "j", at: float = 1_000.0, path: str | None = "SingleQPU",
           fragments: list[FragmentRecord] | None = None, implied: float | None = None,
           verified: bool | None = True, deadline_met: bool | None = True,
           problem_class: str = "expectation/q<=4/d<=10", policy: str = "default",
           energy: float | None = 10.0) -> JobRecord:
    return JobRecord(name=name, namespace="ns", finished_at=at, policy=policy,
                     policy_generation=1, problem_class=problem_class, path=path,
                     reason="QuantumSelected", phase="Succeeded",
                     features={"qubits": 4.0}, qpus=["a"],
                     fragments=fragments if fragments is not None else [fragment()],
                     implied_success=implied, verified=verified, deadline_met=deadline_met,
                     total_seconds=2.0, energy_joules=energy)
