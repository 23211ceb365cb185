"""The energy of what ran: fragments under their QPUs' power models, or CPU time."""

from __future__ import annotations

import pytest

from qbackbone.api.quantumjob import Plan, PlannedFragment, QuantumJobStatus, Result, Timings
from qbackbone.core.energy.model import TECHNOLOGY_DEFAULTS
from qbackbone.core.pipeline.energy import result_joules

POWER = {"sc": TECHNOLOGY_DEFAULTS["superconducting"], "sim": TECHNOLOGY_DEFAULTS["simulator"]}


def fragment(qpu: str, shots: int, end: float) -> PlannedFragment:
    return PlannedFragment(name=f"main-{qpu}", subcircuit="main", qpu=qpu, backend=qpu,
                           shots=shots, planned_start_seconds=0.0, planned_end_seconds=end)


def test_quantum_result_sums_its_fragments() -> None:
    status = QuantumJobStatus(result=Result(path="SingleQPU"),
                              plan=Plan(fragments=[fragment("sc", 100, 2.0),
                                                   fragment("sim", 50, 0.5)]))
    joules = result_joules(status, POWER, bases=2)
    assert joules == pytest.approx(28_000.0 * 2.0 + 200 * 1e-3 + 10.0 * 0.5)


def test_classical_result_is_cpu_time_times_power_and_unknown_qpus_give_none() -> None:
    status = QuantumJobStatus(result=Result(path="Classical"),
                              timings=Timings(execute_seconds=3.0))
    assert result_joules(status, POWER) == 30.0
    unknown = QuantumJobStatus(result=Result(path="SingleQPU"),
                               plan=Plan(fragments=[fragment("gone", 10, 1.0)]))
    assert result_joules(unknown, POWER) is None
    assert result_joules(QuantumJobStatus(), POWER) is None
