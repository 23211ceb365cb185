"""Feeding the operator's metrics and logs: watch events into the views behind the gauges,
and ``observed``, the wrapper of every reconcile handler (log context, error counter)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import kopf
import urllib3.exceptions
from kubernetes.client.exceptions import ApiException

from qbackbone.k8s import GROUP, JOBS, QPUNODES, VERSION
from qbackbone.observability import current, object_context

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


def observed(controller: str) -> Callable[[H], H]:
    """Run a (sync) kopf handler with its object in the log context; count what it raises."""
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
        return run  # type: ignore[return-value]
    return wrap


@kopf.on.event(GROUP, VERSION, JOBS)
def job_seen(event: kopf.RawEvent, **_: Any) -> None:
    """Every QuantumJob as the watch reports it: the ``qbackbone_jobs`` gauge."""
    current().job_event(event.get("type"), event["object"])


@kopf.on.event(GROUP, VERSION, QPUNODES)
def qpunode_seen(event: kopf.RawEvent, **_: Any) -> None:
    """Every QPUNode: the QPU gauges list it (idle QPUs at 0) and say whether it is Ready."""
    current().qpunode_event(event.get("type"), event["object"])
