"""Run one job in a child process with a time budget and a memory limit.

`qbackbone run` must keep every other job's result whatever one job does: a crash in
native code, an abort on a failed allocation, a hang. Each job runs in a forked child
(the parent has built the fleet but run nothing, so no thread pool is forked mid-use); the
child sends its status back as JSON on a pipe. The parent ends a child that passes its
time budget, and reads a child that died without a status as a failed job.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from qbackbone.api.conditions import Phase, Reason, set_condition
from qbackbone.api.quantumjob import QuantumJobStatus
from qbackbone.core.errors import allocation_failed

_STDERR_TAIL = 64 * 1024


@dataclass(frozen=True)
class Budget:
    """What one job may use: wall-clock seconds and memory beyond what the parent holds."""

    seconds: float
    memory_mib: int


def failed_status(reason: Reason, message: str) -> QuantumJobStatus:
    """A Failed status with the Succeeded=False and Failed=True conditions."""
    status = QuantumJobStatus(phase=Phase.FAILED)
    now = datetime.now(UTC)
    for type_, ok in (("Succeeded", False), ("Failed", True)):
        set_condition(status.conditions, type_, ok, reason, message, None, now)
    return status


def _virtual_memory_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _child(work: Callable[[], QuantumJobStatus], budget: Budget, out_fd: int) -> None:
    """Runs in the child: limit memory, do the work, write the status, never return."""
    code = 0
    try:
        limit = _virtual_memory_bytes() + budget.memory_mib * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:  # run under a tighter limit (ulimit -v): keep it
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        try:
            status = work()
        except MemoryError:
            status = failed_status(
                Reason.MEMORY_LIMIT_EXCEEDED,
                f"the job needed more than its {budget.memory_mib} MiB of memory; make it "
                "smaller or raise the policy's spec.limits.maxMemoryMiB")
        payload = json.dumps(status.to_wire(), allow_nan=False).encode()
        with os.fdopen(out_fd, "wb") as out:
            out.write(payload)
    except BaseException:  # the child must never unwind into the parent's code
        traceback.print_exc(file=sys.stderr)
        code = 70
    finally:
        sys.stderr.flush()
        os._exit(code)


@dataclass(frozen=True)
class ForkOutcome:
    """What a forked child left: its payload, the end of its output, how it ended."""

    payload: bytes
    output_tail: bytes
    wait_status: int
    timed_out: bool


def fork_and_collect(child_main: Callable[[int], None], seconds: float,
                     relay: bool = True) -> ForkOutcome:
    """Run ``child_main(out_fd)`` in a forked child and collect what it writes to ``out_fd``.

    The child reads nothing (stdin is /dev/null) and its stdout and stderr go to a pipe, so
    nothing it prints can corrupt the parent's stdout; ``relay`` copies that output to the
    parent's stderr as it comes. A child still running after ``seconds`` is killed.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    result_r, result_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(result_r)
            os.close(out_r)
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(out_w, 1)
            os.dup2(out_w, 2)
            child_main(result_w)
        finally:
            os._exit(70)  # child_main ends the process itself; this is the safety net
    os.close(result_w)
    os.close(out_w)
    payload, tail = bytearray(), bytearray()
    open_fds = {result_r, out_r}
    deadline = time.monotonic() + seconds
    timed_out = False
    while open_fds:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
            break
        ready, _, _ = select.select(list(open_fds), [], [], min(left, 1.0))
        for fd in ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                open_fds.discard(fd)
            elif fd == result_r:
                payload.extend(chunk)
            else:
                if relay:
                    sys.stderr.buffer.write(chunk)
                    sys.stderr.flush()
                tail.extend(chunk)
                del tail[:-_STDERR_TAIL]
    for fd in (result_r, out_r):
        os.close(fd)
    _, wait_status = os.waitpid(pid, 0)
    return ForkOutcome(bytes(payload), bytes(tail), wait_status, timed_out)


def run_isolated(work: Callable[[], QuantumJobStatus], budget: Budget) -> QuantumJobStatus:
    """The status ``work`` returns in a child process, or a Failed status saying why not."""
    outcome = fork_and_collect(lambda out_fd: _child(work, budget, out_fd), budget.seconds)
    if outcome.timed_out:
        return failed_status(
            Reason.TIME_LIMIT_EXCEEDED,
            f"the job ran longer than its {budget.seconds:g} s budget and was stopped; give it "
            "less work or raise the policy's spec.limits.maxRunSeconds")
    status = outcome.wait_status
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and outcome.payload:
        return QuantumJobStatus.model_validate(json.loads(outcome.payload))
    return _died(status, outcome.output_tail, budget)


def _died(wait_status: int, stderr_tail: bytes, budget: Budget) -> QuantumJobStatus:
    if os.WIFSIGNALED(wait_status):
        how = f"was killed by {signal.Signals(os.WTERMSIG(wait_status)).name}"
    else:
        how = f"exited with code {os.WEXITSTATUS(wait_status)}"
    text = stderr_tail.decode(errors="replace")
    if allocation_failed(text):
        return failed_status(
            Reason.MEMORY_LIMIT_EXCEEDED,
            f"the job's process {how} when an allocation failed: it needed more than its "
            f"{budget.memory_mib} MiB of memory; make it smaller or raise the policy's "
            "spec.limits.maxMemoryMiB")
    return failed_status(
        Reason.JOB_PROCESS_CRASHED,
        f"the job's process {how} without a result (its last error output is on stderr); "
        f"native code that cannot allocate within the job's {budget.memory_mib} MiB often "
        "ends this way: make the job smaller or raise spec.limits.maxMemoryMiB; the other "
        "jobs were not affected")
