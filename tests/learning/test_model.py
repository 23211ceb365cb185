"""Learning from records: minimum samples, clamps, forgetting, problem classes."""

from __future__ import annotations

import pytest

from qbackbone.api.policy import LearningOptions
from qbackbone.core.history.record import JobRecord
from qbackbone.core.learning.model import learn
from tests.history.builders import fragment, record

OPTIONS = LearningOptions.model_validate({"enabled": True, "minSamples": 3,
                                         "maxCorrection": 4.0, "halfLife": "1h"})


def slow(at: float, shots: float, factor: float = 2.0,
         implied: float | None = None) -> JobRecord:
    nominal = 1.0 + shots * 1e-3
    return record(f"j{at}", at=at, implied=implied,
                  fragments=[fragment("a", shots=shots, actual=factor * nominal,
                                      estimated=0.8)])


def test_nothing_is_learned_below_min_samples() -> None:
    model = learn([slow(1.0, 1000), slow(2.0, 2000)], OPTIONS, now=10.0)
    assert model.qpus["a"].shot_time is None and model.adjustments() == {}


def test_a_slower_noisier_qpu_is_learned_with_its_sample_count() -> None:
    records = [slow(float(i), 500.0 * (i + 1), implied=0.8 ** 3) for i in range(6)]
    learned = learn(records, OPTIONS, now=10.0).qpus["a"]
    assert learned.shot_time is not None and learned.setup_time is not None
    assert learned.shot_time.value == pytest.approx(2.0) and learned.shot_time.samples == 6
    assert learned.setup_time.value == pytest.approx(2.0)
    assert learned.success is not None and learned.success.value == pytest.approx(3.0)


def test_corrections_are_clamped_and_say_so() -> None:
    records = [slow(float(i), 1000.0, factor=50.0, implied=0.8 ** 9) for i in range(4)]
    learned = learn(records, OPTIONS, now=10.0).qpus["a"]
    assert learned.shot_time is not None and learned.shot_time.value == 4.0
    assert learned.shot_time.clamped and learned.shot_time.raw == pytest.approx(50.0)
    assert learned.success is not None and learned.success.value == 4.0


def test_recent_jobs_outweigh_old_ones() -> None:
    old = [slow(float(i), 1000.0 * (i + 1), factor=1.0) for i in range(3)]
    new = [slow(36_000.0 + i, 1000.0 * (i + 1), factor=3.0) for i in range(4)]
    learned = learn(old + new, OPTIONS, now=36_010.0).qpus["a"]
    assert learned.shot_time is not None and learned.shot_time.value == pytest.approx(3.0, rel=1e-2)
    assert learned.shot_time.samples == 7  # all counted, the old ones at 2^-10 weight


def test_evidence_that_is_not_renewed_fades_back_to_nominal() -> None:
    records = [slow(float(i), 1000.0 + 100 * i) for i in range(4)]
    assert learn(records, OPTIONS, now=10.0).qpus["a"].shot_time is not None
    assert learn(records, OPTIONS, now=3_600.0).qpus["a"].shot_time is None  # 4 x 0.5 < 2.85


def test_the_window_keeps_only_the_newest_jobs() -> None:
    options = OPTIONS.model_copy(update={"window": 3, "min_samples": 2})
    old = [slow(float(i), 1000.0 + i, factor=1.0) for i in range(5)]
    new = [slow(100.0 + i, 1000.0 + i, factor=2.0) for i in range(3)]
    learned = learn(old + new, options, now=110.0).qpus["a"]
    assert learned.shot_time is not None and learned.shot_time.samples == 3
    assert learned.shot_time.value == pytest.approx(2.0)


def test_quantum_pays_compares_the_paths_of_a_problem_class() -> None:
    quantum = [record(f"q{i}", at=float(i), verified=i % 3 == 0) for i in range(6)]
    classical = [record(f"c{i}", at=float(i), path="Classical", fragments=[])
                 for i in range(3)]
    outcomes = learn(quantum + classical, OPTIONS, now=10.0).classes["expectation/q<=4/d<=10"]
    assert outcomes.quantum_jobs == 6 and outcomes.classical_jobs == 3
    assert outcomes.pays(OPTIONS) is False and outcomes.classical_rate == 1.0
    assert "quantum 0.3" in outcomes.describe()
    few = learn(quantum + classical[:2], OPTIONS, now=10.0).classes["expectation/q<=4/d<=10"]
    assert few.pays(OPTIONS) is None
