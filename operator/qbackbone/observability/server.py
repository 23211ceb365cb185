"""The ``/metrics`` HTTP endpoint: prometheus_client's WSGI server on a daemon thread."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

log = logging.getLogger(__name__)


@dataclass
class MetricsServer:
    """A running endpoint; ``close()`` stops it."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        """The bound port (useful when asked for port 0)."""
        return int(self.server.server_address[1])

    def close(self) -> None:
        """Stop serving and release the port."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve(registry: CollectorRegistry, port: int, host: str = "0.0.0.0") -> MetricsServer | None:
    """Serve the registry at ``http://<host>:<port>/metrics``; None (logged) if it cannot bind:
    the operator keeps running without metrics rather than not at all."""
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as err:
        log.error("metrics: cannot serve on %s:%d (%s); running without /metrics", host, port,
                  err)
        return None
    running = MetricsServer(server, thread)
    log.info("metrics: serving http://%s:%d/metrics", host, running.port)
    return running
