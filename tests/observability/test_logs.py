"""JSON logs: one object per line with time, level, logger, message, and the object worked on;
the /metrics server serves the registry and gives up quietly on a taken port."""

from __future__ import annotations

import io
import json
import logging
import socket
import urllib.request
from collections.abc import Iterator
from datetime import datetime

import kopf
import pytest
from controllers.metrics import error_kind, observed
from prometheus_client.parser import text_string_to_metric_families

from qbackbone.observability import OperatorMetrics, current, object_context, serve, use_format


@pytest.fixture()
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    logger = logging.getLogger("qbackbone.test.logs")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    stream = io.StringIO()
    logger.handlers[:] = [logging.StreamHandler(stream)]
    use_format("json", logger)
    yield logger, stream
    logger.handlers[:] = []


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_the_object(
        captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    logger.info("plain %s", "line")
    with object_context("QuantumJob", "ent", "team-a"):
        logger.warning("multi\nline")
    logger.info("from kopf", extra={"k8s_ref": {"kind": "QPUNode", "name": "qpu-a"}})
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    first, job, qpu, failed = lines(stream)
    assert set(first) == {"time", "level", "logger", "message"}
    assert first["level"] == "info" and first["logger"] == "qbackbone.test.logs"
    assert first["message"] == "plain line"
    assert datetime.fromisoformat(str(first["time"]).replace("Z", "+00:00")).tzinfo is not None
    assert job["job"] == "ent" and job["namespace"] == "team-a" and job["kind"] == "QuantumJob"
    assert job["message"] == "multi\nline" and job["level"] == "warning"
    assert qpu["name"] == "qpu-a" and "job" not in qpu and "namespace" not in qpu
    assert failed["level"] == "error" and "ValueError: boom" in str(failed["exception"])


def test_text_keeps_the_handlers_format_and_unknown_formats_are_refused() -> None:
    logger = logging.getLogger("qbackbone.test.text")
    handler = logging.StreamHandler(io.StringIO())
    formatter = logging.Formatter("%(message)s")
    handler.setFormatter(formatter)
    logger.handlers[:] = [handler]
    use_format("text", logger)
    assert handler.formatter is formatter
    with pytest.raises(ValueError, match="json"):
        use_format("yaml", logger)
    logger.handlers[:] = []


def test_observed_sets_the_log_context_and_counts_errors_but_not_waits(
        captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    labels = {"controller": "quantumjob", "kind": "internal"}
    before = current().registry.get_sample_value("qbackbone_reconcile_errors_total", labels)

    @observed("quantumjob")
    def handler(name: str, namespace: str, fail: Exception | None = None) -> str:
        logger.info("reconciling")
        if fail is not None:
            raise fail
        return "ok"

    assert handler(name="j1", namespace="ns") == "ok"
    assert lines(stream)[0]["job"] == "j1"
    with pytest.raises(kopf.TemporaryError):
        handler(name="j1", namespace="ns", fail=kopf.TemporaryError("wait", delay=1))
    with pytest.raises(RuntimeError):
        handler(name="j1", namespace="ns", fail=RuntimeError("bug"))
    after = current().registry.get_sample_value("qbackbone_reconcile_errors_total", labels)
    assert before is not None and after == before + 1
    assert error_kind(kopf.PermanentError("no")) == "permanent"
    assert error_kind(ConnectionError()) == "api"


def test_metrics_server_serves_the_registry_and_survives_a_taken_port() -> None:
    m = OperatorMetrics()
    m.reconcile_error("qpunode", "api")
    server = serve(m.registry, 0, "127.0.0.1")
    assert server is not None
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.status == 200
            text = response.read().decode()
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(text) for s in f.samples}
        assert samples[("qbackbone_reconcile_errors_total",
                        (("controller", "qpunode"), ("kind", "api")))] == 1
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            assert serve(m.registry, taken.getsockname()[1], "127.0.0.1") is None
    finally:
        server.close()
