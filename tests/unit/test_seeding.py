"""Seeded runs stay reproducible without correlating calls (Aer restarts each call at its seed)."""

from __future__ import annotations

from qiskit import QuantumCircuit

from qbackbone.core.qpus.backends import AerExecutor, derive_seed


def _uniform(n: int = 6) -> QuantumCircuit:
    circuit = QuantumCircuit(n)
    circuit.h(range(n))
    circuit.measure_all()
    return circuit


def test_derived_seeds_are_distinct_and_reproducible() -> None:
    assert derive_seed(None, "a") is None
    assert derive_seed(1, "a") == derive_seed(1, "a")
    assert len({derive_seed(1, label) for label in ("a", "b", "c", ("a", 2))}) == 4


def test_shot_count_groups_draw_independent_samples() -> None:
    executor = AerExecutor()
    first, second = executor.run([_uniform(), _uniform()], [200, 300], seed=5)
    again_first, _ = executor.run([_uniform(), _uniform()], [200, 300], seed=5)
    assert first == again_first  # reproducible
    # Same circuit, different groups: with one shared stream the 200 samples of the first
    # would repeat as the start of the second; with derived seeds they do not.
    assert first != executor.run([_uniform()], 200, seed=derive_seed(5, "other"))[0]
    assert sum(second.values()) == 300


def test_two_qpus_with_one_job_seed_are_not_identical() -> None:
    from qiskit import qasm2

    from qbackbone.api.policy import InvocationPolicy
    from qbackbone.core.pipeline import decide_job, plan_single_qpu, start_job
    from qbackbone.core.qpus.fleet import build_fleet
    from tests.conftest import make_job, make_qpu

    fleet = build_fleet([make_qpu("x", qubits=6), make_qpu("y", qubits=6)])
    body = _uniform().remove_final_measurements(inplace=False)
    split = {"default": InvocationPolicy.model_validate(  # both QPUs get a share
        {"metadata": {"name": "default"}, "spec": {"scheduler": {"shotSplitting": "Always"}}})}
    decided = decide_job(start_job(make_job(qasm2.dumps(body), ["ZZZZZZ"], shots=1000)),
                         fleet, split, seed=11)
    work = plan_single_qpu(decided)
    assert [w.shots for w in work] == [500, 500]
    by_name = {q.name: q for q in fleet}
    runs = [by_name[w.qpu].executor.run(w.circuits, w.shots, derive_seed(11, w.qpu))
            for w in work]
    assert runs[0] != runs[1]


def test_unseeded_runs_are_one_call_with_per_circuit_shots() -> None:
    from qbackbone.core.qpus.backends import run_by_shot_count

    calls: list[list[int]] = []

    def sample(pubs: list, seed: int | None) -> list[dict[str, int]]:
        calls.append([p[2] for p in pubs])
        return [{"0": p[2]} for p in pubs]

    circuits = [_uniform(), _uniform(), _uniform()]
    assert run_by_shot_count(sample, circuits, [5, 7, 5], None) == [{"0": 5}, {"0": 7}, {"0": 5}]
    assert calls == [[5, 7, 5]]
    calls.clear()
    assert run_by_shot_count(sample, circuits, [5, 7, 5], 3) == [{"0": 5}, {"0": 7}, {"0": 5}]
    assert calls == [[5, 5], [7]]
