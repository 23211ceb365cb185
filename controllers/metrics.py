"""Feeding the operator's metrics and logs: indexes of QuantumJobs and QPUNodes behind the
gauges, and ``observed``, the wrapper of every reconcile handler (log context, error counter)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import kopf
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from qbackbone.k8s import GROUP, JOBS, QPUNODES, VERSION
from qbackbone.k8s.failures import EXITS
from qbackbone.observability import current, object_context
from qbackbone.observability.state import JobKey, QPULoad, job_key, qpu_load

H = TypeVar("H", bound=Callable[..., Any])
KINDS = {"quantumjob": "QuantumJob", "qpunode": "QPUNode", "invocationpolicy": "InvocationPolicy"}


def error_kind(err: BaseException) -> str | None:
    """The ``kind`` label of a handler error; None for a deliberate wait (TemporaryError)."""
    if isinstance(err, kopf.PermanentError):
        return "permanent"
    if isinstance(err, kopf.TemporaryError):
        return None
    if isinstance(err, ApiException | urllib3.exceptions.HTTPError | ConnectionError):
        return "api"
    return "internal"


class HandlerCrash(Exception):
    """A handler raised a ``BaseException`` that is not the process stopping: handed to kopf
    as an ordinary error (logged, retried), which a ``BaseException`` would escape."""

    def __init__(self, err: BaseException) -> None:
        super().__init__(f"{type(err).__name__}: {err}")


def observed(controller: str) -> Callable[[H], H]:
    """Run a (sync) kopf handler with its object in the log context; count what it raises
    (a ``BaseException`` other than the process stopping becomes a ``HandlerCrash``)."""
    kind = KINDS[controller]

    def wrap(handler: H) -> H:
        @functools.wraps(handler)
        def run(*args: Any, **kwargs: Any) -> Any:
            with object_context(kind, kwargs.get("name"), kwargs.get("namespace")):
                try:
                    return handler(*args, **kwargs)
                except Exception as err:
                    label = error_kind(err)
                    if label is not None:
                        current().reconcile_error(controller, label)
                    raise
                except BaseException as err:  # e.g. pyo3's PanicException
                    if isinstance(err, EXITS):
                        raise
                    current().reconcile_error(controller, "internal")
                    raise HandlerCrash(err) from err
        return run  # type: ignore[return-value]
    return wrap


@kopf.index(GROUP, VERSION, JOBS)
def job_states(body: kopf.Body, namespace: str | None, **_: Any) -> dict[JobKey, None]:
    """Every QuantumJob by (namespace, phase, path): the ``qbackbone_jobs`` gauge."""
    try:
        return {job_key(namespace, body.get("status")): None}
    except Exception:  # a malformed status must not stop the index
        return {}


@kopf.index(GROUP, VERSION, QPUNODES)
def qpu_loads(body: kopf.Body, name: str, **_: Any) -> dict[str, QPULoad]:
    """Every QPUNode's Ready, queue depth and utilisation: the QPU gauges (idle ones at 0)."""
    try:
        return {name: qpu_load(body.get("status"))}
    except Exception:
        return {}


@kopf.on.startup()
def attach_indexes(**kwargs: Any) -> None:
    """Point the gauges at the indexes (kopf keeps them current, deletions included; startup
    handlers get them by name, empty until the first listing)."""
    current().watch(kwargs["job_states"], kwargs["qpu_loads"])
