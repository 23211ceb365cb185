"""Operator metrics (Prometheus) and structured logs; never imported by the domain core.

``metrics``: the registry, counters counted where the operator causes an event, gauges read
from views of the objects it sees; ``server``: ``/metrics`` over HTTP; ``logs``: JSON lines.
"""

from qbackbone.observability.logs import JsonFormatter, object_context, use_format
from qbackbone.observability.metrics import (
    OperatorMetrics,
    current,
    job_status_written,
)
from qbackbone.observability.server import MetricsServer, serve

__all__ = [
    "JsonFormatter",
    "MetricsServer",
    "OperatorMetrics",
    "current",
    "job_status_written",
    "object_context",
    "serve",
    "use_format",
]
