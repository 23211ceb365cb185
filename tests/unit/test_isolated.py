"""One job per process: a time-out, a failed allocation or a crash ends that job alone."""

from __future__ import annotations

import os
import time

from qbackbone.api.conditions import Phase, Reason
from qbackbone.api.quantumjob import QuantumJobStatus
from qbackbone.cli.isolated import Budget, run_isolated


def _reason(status: QuantumJobStatus) -> str:
    return next(c.reason for c in status.conditions if c.type == "Failed")


def test_the_status_comes_back_from_the_child() -> None:
    status = run_isolated(lambda: QuantumJobStatus(phase=Phase.SUCCEEDED, observed_generation=7),
                          Budget(seconds=30, memory_mib=512))
    assert status.phase == Phase.SUCCEEDED and status.observed_generation == 7


def test_a_job_past_its_time_budget_is_stopped() -> None:
    def hang() -> QuantumJobStatus:
        while True:
            time.sleep(1)

    start = time.monotonic()
    status = run_isolated(hang, Budget(seconds=0.5, memory_mib=512))
    assert time.monotonic() - start < 5
    assert status.phase == Phase.FAILED and _reason(status) == Reason.TIME_LIMIT_EXCEEDED
    assert "spec.limits.maxRunSeconds" in status.conditions[-1].message


def test_a_job_past_its_memory_limit_fails_alone() -> None:
    def hungry() -> QuantumJobStatus:
        blocks = [bytearray(64 * 1024 * 1024) for _ in range(64)]  # 4 GiB
        return QuantumJobStatus(phase=Phase.SUCCEEDED, observed_generation=len(blocks))

    status = run_isolated(hungry, Budget(seconds=60, memory_mib=256))
    assert _reason(status) == Reason.MEMORY_LIMIT_EXCEEDED
    # The parent is untouched and can allocate as before.
    assert len(bytearray(64 * 1024 * 1024)) == 64 * 1024 * 1024


def test_a_crash_in_native_code_fails_that_job_with_a_reason() -> None:
    def crash() -> QuantumJobStatus:
        os.abort()

    status = run_isolated(crash, Budget(seconds=30, memory_mib=512))
    assert _reason(status) == Reason.JOB_PROCESS_CRASHED
    assert "SIGABRT" in status.conditions[-1].message


def test_an_exception_escaping_the_work_is_a_crash_not_a_lost_run() -> None:
    def broken() -> QuantumJobStatus:
        raise RuntimeError("boom")

    status = run_isolated(broken, Budget(seconds=30, memory_mib=512))
    assert _reason(status) == Reason.JOB_PROCESS_CRASHED


def test_a_native_panic_in_a_pipeline_step_fails_that_job_as_invalid_circuit() -> None:
    """pyo3's PanicException is a BaseException: the shared guard must still catch it."""
    from qbackbone.core.pipeline.jobrun import guarded, start_job
    from tests.conftest import make_job
    from tests.operator.test_hostile_jobs import panic_type

    panic = panic_type()

    def step() -> QuantumJobStatus:
        raise panic("index out of bounds")

    run = start_job(make_job('OPENQASM 2.0; qreg q[1];', ["Z"]))
    status = guarded(run, step)
    assert status.phase == Phase.FAILED and _reason(status) == Reason.INVALID_CIRCUIT
    assert "panic" in status.conditions[-1].message
