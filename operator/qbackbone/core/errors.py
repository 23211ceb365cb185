"""The one error type the pipeline turns into a terminal condition, and how what escapes
native code (a panic, a failed allocation) is recognised."""

from __future__ import annotations

from qbackbone.api.conditions import Reason


class JobFailure(Exception):
    """A job cannot proceed; ``reason`` is CamelCase, ``message`` tells a person what to do."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


# How native code (Aer's C++, Qiskit's Rust, the allocator) says an allocation failed.
ALLOCATION_FAILED = ("memory allocation of", "bad_alloc", "MemoryError", "Cannot allocate memory",
                     "out of memory", "Insufficient memory")
# The process is stopping: never turned into a job's failure.
PROCESS_EXITS = (KeyboardInterrupt, SystemExit, GeneratorExit)
_MAX_PANIC_TEXT = 300


def allocation_failed(text: str) -> bool:
    """Whether an error text (or a process's last output) reports a failed allocation."""
    return any(marker in text for marker in ALLOCATION_FAILED)


def native_panic(err: BaseException) -> JobFailure | None:
    """The failure for a pyo3 ``PanicException`` (a ``BaseException`` that ``except
    Exception`` misses: Qiskit's Rust code panicked on the input); None for anything else."""
    if type(err).__name__ != "PanicException":
        return None
    text = f"{type(err).__name__}: {str(err)[:_MAX_PANIC_TEXT]}".rstrip(": ")
    return JobFailure(Reason.INVALID_CIRCUIT, f"the circuit made Qiskit's native code panic "
                                              f"({text}); it is malformed or beyond what Qiskit "
                                              "handles")
