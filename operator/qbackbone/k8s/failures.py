"""What a job fails with when deciding or moving it raises: the job, never the operator.

A hostile job can make a parser or compiler raise anything, including ``BaseException``
subclasses that ordinary ``except Exception`` handlers miss (pyo3's ``PanicException`` from
Qiskit's Rust code) and errors of the process itself (``MemoryError``, ``RecursionError``).
Each ends that one job ``Failed`` with a CamelCase reason; only the process being stopped and
errors talking to the API server (retried by kopf) pass through.
"""

from __future__ import annotations

import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from qbackbone.api.conditions import Reason
from qbackbone.core.errors import PROCESS_EXITS, JobFailure, native_panic

EXITS = PROCESS_EXITS  # the process is stopping
TRANSIENT = (ApiException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)
MAX_ERROR_TEXT = 300  # of an unexpected error's text in a message


def failure_of(err: BaseException) -> tuple[Reason, str]:
    """The reason and message a job fails with when ``err`` escaped a step."""
    if isinstance(err, JobFailure):
        return err.reason, err.message
    text = f"{type(err).__name__}: {str(err)[:MAX_ERROR_TEXT]}".rstrip(": ")
    if isinstance(err, MemoryError):
        return Reason.INPUT_TOO_LARGE, ("the job needs more memory than the operator can give "
                                        f"it ({text})")
    if isinstance(err, RecursionError):
        return Reason.INPUT_TOO_LARGE, f"the job's input is nested too deeply to process ({text})"
    if (panic := native_panic(err)) is not None:
        return panic.reason, panic.message
    return Reason.INTERNAL_ERROR, f"unexpected {text} (please report this)"
