"""One job's run: the status being built, its clock and conditions, and failure handling."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TypeVar

from qbackbone.api.conditions import ConditionType, Phase, Reason, set_condition
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus, Timings
from qbackbone.core.errors import PROCESS_EXITS, JobFailure, allocation_failed, native_panic
from qbackbone.core.pipeline.progress import Progress, SilentProgress

T = TypeVar("T")


class JobRun:
    """State of one run: the status being built and the clock of each phase."""

    def __init__(self, job: QuantumJob, progress: Progress, now: datetime) -> None:
        self.job = job
        self.progress = progress
        self.now = now
        self.status = QuantumJobStatus(observed_generation=job.metadata.generation,
                                       timings=Timings())
        self.started = time.perf_counter()
        # Set once the QIP decided: the energy estimate of what ran (status.result.energyJoules).
        self.energy_of: Callable[[QuantumJobStatus], float | None] | None = None

    def condition(self, type_: ConditionType, ok: bool, reason: Reason, message: str) -> None:
        set_condition(self.status.conditions, type_, ok, reason, message,
                      self.job.metadata.generation, datetime.now(UTC))

    @contextmanager
    def phase(self, timing_field: str) -> Iterator[None]:
        """Time a block; blocks of the same phase add up (a problem job decides twice)."""
        start = time.perf_counter()
        try:
            yield
        finally:
            assert self.status.timings is not None
            before = getattr(self.status.timings, timing_field) or 0.0
            setattr(self.status.timings, timing_field,
                    round(before + time.perf_counter() - start, 4))

    def fail(self, reason: Reason, message: str) -> QuantumJobStatus:
        self.status.phase = Phase.FAILED
        self.condition(ConditionType.SUCCEEDED, False, reason, message)
        self.condition(ConditionType.FAILED, True, reason, message)
        self.progress.step("failed", f"{reason}: {message}")
        return self.finish()

    def finish(self) -> QuantumJobStatus:
        assert self.status.timings is not None
        self.status.timings.total_seconds = round(time.perf_counter() - self.started, 4)
        return self.status


def start_job(job: QuantumJob, progress: Progress | None = None,
              now: datetime | None = None) -> JobRun:
    """A fresh run of the job: an empty status and the clock."""
    return JobRun(job, progress or SilentProgress(), now or datetime.now(UTC))


_MEMORY_ADVICE = ("the job could not allocate the memory it needs; make it smaller, or raise the "
                  "policy's spec.limits.maxMemoryMiB if the machine has the memory")


def guarded(run: JobRun, step: Callable[[], QuantumJobStatus]) -> QuantumJobStatus:
    """Run a step; a JobFailure or any bug ends in a Failed status, never an exception."""
    try:
        return step()
    except JobFailure as failure:
        return run.fail(failure.reason, failure.message)
    except MemoryError:
        return run.fail(Reason.MEMORY_LIMIT_EXCEEDED, _MEMORY_ADVICE)
    except RecursionError:
        return run.fail(Reason.INPUT_TOO_LARGE, "the job's input nests too deeply to process")
    except PROCESS_EXITS:
        raise
    except BaseException as err:  # a bug, or a native panic, fails this job, never the process
        if (panic := native_panic(err)) is not None:
            return run.fail(panic.reason, panic.message)
        return run.fail(Reason.INTERNAL_ERROR,
                        f"unexpected {type(err).__name__}: {err} (please report this)")


def as_job_failure(run: JobRun, reason: Reason, action: Callable[[], T]) -> T:
    """Turn an unexpected exception of a backend or simulator into a JobFailure."""
    try:
        return action()
    except JobFailure:
        raise
    except Exception as err:
        text = f"{type(err).__name__}: {err}"
        if isinstance(err, MemoryError) or allocation_failed(text):
            raise JobFailure(Reason.MEMORY_LIMIT_EXCEEDED,
                             f"{_MEMORY_ADVICE} ({text[:200]})") from err
        raise JobFailure(reason, text) from err
