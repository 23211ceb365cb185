"""The cut planner weighs fidelity against sampling overhead (issue 15): candidates rank by
gamma^2 / F^2, F the estimated fidelity of each subcircuit on the most faithful QPU that may
run it; ideal simulators run a subcircuit only as the policy's idealSimulators allows."""

from __future__ import annotations

import pytest

from qbackbone.core.cutting import AerRunner, QPUCapacity, execute_plan, plan_cuts
from qbackbone.core.cutting.capacity import allowed_qpus
from tests.pipeline.test_distributed import chain_circuit

from .circuits import assert_close, exact

# Median errors of fake_nairobi (1q, 2q, readout): estimated fidelity ~0.75 for 7 qubits.
NAIROBI = QPUCapacity("nairobi", 7, 40, ideal=False, one_qubit_error=4e-4,
                      two_qubit_error=7.8e-3, readout_error=2.2e-2)
IDEAL_6, IDEAL_5 = QPUCapacity("ideal-6", 6, None), QPUCapacity("ideal-5", 5, None)
OBS = ["Z" * 10, "IIIIZZIIII"]


TEN = chain_circuit(10, seed=3)


def test_noise_makes_the_ideal_six_plus_five_beat_seven_on_a_noisy_qpu() -> None:
    plan = plan_cuts(TEN, OBS, [NAIROBI, IDEAL_6, IDEAL_5], ["gate", "loccWire"], 1000, 8, 500,
                     seed=1, simulators="Allowed")
    assert max(s.qubits for s in plan.subcircuits) <= 6
    chosen = next(c for c in plan.candidates if c.verdict == "chosen")
    assert chosen.estimated_fidelity == 1.0  # every subcircuit on an ideal QPU
    noisy = [c for c in plan.candidates if c.width == 7]
    assert noisy and all(c.estimated_fidelity < 1 and c.overhead <= plan.overhead
                         for c in noisy)  # as cheap, but less faithful
    assert all("once noise is counted" in c.verdict for c in noisy)
    assert any("estimated fidelity" in line for line in plan.explanation)
    result = execute_plan(plan, AerRunner(seed=3), seed=3)
    assert_close(result.values, result.std_errors, exact(TEN, OBS), max_se=0.2)


def test_fidelity_is_weighed_against_overhead_not_absolute() -> None:
    # Tiny ideal QPUs would need three cuts (overhead 729); one cut on a fairly good noisy
    # QPU costs 9 / F^2, far less: the noisy placement wins.
    tiny = [QPUCapacity(f"ideal-3{c}", 3, None) for c in "ab"]
    good = QPUCapacity("good", 7, None, ideal=False, two_qubit_error=2e-3, readout_error=1e-2)
    plan = plan_cuts(TEN, OBS, [good, *tiny], ["loccWire"], 1000, 8, 500, seed=1,
                     simulators="Allowed")
    assert plan.overhead == 9 and any(s.qubits > 3 for s in plan.subcircuits)


@pytest.mark.parametrize(("rule", "expected"), [
    ("Fallback", {"nairobi"}), ("Forbidden", {"nairobi"}),
    ("Allowed", {"nairobi", "ideal-6", "ideal-5"})])
def test_simulators_join_a_subcircuit_only_as_the_policy_allows(rule: str,
                                                                  expected: set[str]) -> None:
    plan = plan_cuts(TEN, OBS, [NAIROBI, IDEAL_6, IDEAL_5], ["gate", "loccWire"], 1000, 8, 500,
                     seed=1, simulators=rule)  # type: ignore[arg-type]
    used = {q for s in plan.subcircuits for q in s.eligible_qpus}
    assert used == expected or (rule == "Allowed" and used <= expected)


def test_fallback_uses_a_simulator_for_what_no_noisy_qpu_fits() -> None:
    wide_sim = QPUCapacity("sim-20", 20, None)
    assert [q.name for q in allowed_qpus([NAIROBI, wide_sim], 12, 5, "Fallback")] == ["sim-20"]
    assert [q.name for q in allowed_qpus([NAIROBI, wide_sim], 5, 5, "Fallback")] == ["nairobi"]
    assert allowed_qpus([NAIROBI, wide_sim], 12, 5, "Forbidden") == []
    assert NAIROBI.fidelity(7, 20, 10) < IDEAL_6.fidelity(7, 20, 10) == 1.0
