"""Structured logs: one JSON object per line, with the object a handler works on.

Fields: ``time`` (RFC 3339, UTC, milliseconds), ``level``, ``logger``, ``message``; where
known, ``namespace``, ``kind``, ``name`` and, for QuantumJobs, ``job``; ``exception`` with the
traceback. The object comes from kopf's per-object loggers (``k8s_ref``) or from
``object_context``, which the controllers enter around each handler call, so log lines of the
code they call (the job reconciler, the pipeline) carry it too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

FORMATS = ("text", "json")
_OBJECT: ContextVar[dict[str, str] | None] = ContextVar("qbackbone_log_object", default=None)


@contextmanager
def object_context(kind: str, name: str | None, namespace: str | None) -> Iterator[None]:
    """Log lines inside the block name this object."""
    ref = {"kind": kind}
    if name:
        ref["name"] = name
    if namespace:
        ref["namespace"] = namespace
    token = _OBJECT.set(ref)
    try:
        yield
    finally:
        _OBJECT.reset(token)


def _object(record: logging.LogRecord) -> dict[str, str]:
    ref = getattr(record, "k8s_ref", None)
    if isinstance(ref, dict):
        return {k: str(ref[k]) for k in ("kind", "name", "namespace") if ref.get(k)}
    return dict(_OBJECT.get() or {})


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ref = _object(record)
        entry.update(ref)
        if ref.get("kind") == "QuantumJob" and "name" in ref:
            entry["job"] = ref["name"]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str)


def use_format(fmt: str, logger: logging.Logger | None = None) -> None:
    """Give the handlers of ``logger`` (default: root, as kopf configured it) this format;
    ``text`` keeps theirs."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "text":
        return
    target = logger or logging.getLogger()
    if not target.handlers:
        target.addHandler(logging.StreamHandler())
    for handler in target.handlers:
        handler.setFormatter(JsonFormatter())
