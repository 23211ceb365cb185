"""A real Prometheus server as a dev process: scrape the operator, answer PromQL over HTTP.

The binaries come from ``hack/build-prometheus.sh`` (``$QB_PROMETHEUS_BIN_DIR`` or the cache
path for the pinned version). ``start_prometheus`` writes a config that scrapes static
targets (the operator's ``--metrics-port``), starts the server on a free loopback port with
its data directory under a state directory, and waits for ``/-/ready``; the returned
``Prometheus`` runs instant and range queries, lists series, parses PromQL into Prometheus'
own AST, and stops the server. ``backfill`` turns recorded scrapes (hack/render-dashboard.py's
``dashboard-recording.jsonl.gz``) into TSDB blocks with ``promtool tsdb create-blocks-from
openmetrics``, so a server started on that directory answers queries over the recording.

From a shell, against an operator run with ``--metrics-port 8081``::

    export QB_PROMETHEUS_BIN_DIR="$(hack/build-prometheus.sh | tail -n1)"
    .venv/bin/python -m qbackbone.dev.prometheus --target 127.0.0.1:8081
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from qbackbone.dev import procs
from qbackbone.dev.binaries import cache_root
from qbackbone.dev.waiting import wait_for

# Keep in step with the defaults of hack/build-prometheus.sh (the cache key is built the same
# way): Prometheus 3.16.0 is the Go module github.com/prometheus/prometheus v0.316.0.
PROMETHEUS_VERSION = "v0.316.0"
PROMETHEUS_TAGS = "netgo,remove_all_sd"
CACHE_KEY = f"{PROMETHEUS_VERSION}_{PROMETHEUS_TAGS.replace(',', '-')}"
REQUIRED = ("prometheus", "promtool")
# Where backfilled recordings start: a fixed instant, so that queries over a recording are the
# same on every run (recorded times are seconds after the recording started).
BACKFILL_EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z

Labels = dict[str, str]


class PrometheusMissing(RuntimeError):
    """The Prometheus binaries are not built (run ``hack/build-prometheus.sh``)."""


class QueryError(RuntimeError):
    """Prometheus answered with an error (``error_type`` ``bad_data`` for a parse error)."""

    def __init__(self, error_type: str, message: str, expr: str = "") -> None:
        super().__init__(f"{error_type}: {message}" + (f" (in {expr!r})" if expr else ""))
        self.error_type, self.message, self.expr = error_type, message, expr


@dataclass(frozen=True)
class Sample:
    """One element of an instant vector (a scalar result is one with no labels)."""

    labels: Labels
    value: float
    time: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: ``(unix seconds, value)`` points in time order."""

    labels: Labels
    points: list[tuple[float, float]]


# --- binaries --------------------------------------------------------------------------------

def default_bin_dir() -> Path:
    """The bin directory ``hack/build-prometheus.sh`` fills for the pinned version."""
    return cache_root() / "prometheus" / CACHE_KEY / "bin"


def find_prometheus(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding ``prometheus`` and ``promtool``.

    Looks at ``explicit``, then ``$QB_PROMETHEUS_BIN_DIR``, then the default cache path;
    raises ``PrometheusMissing`` naming what is absent.
    """
    chosen = explicit or os.environ.get("QB_PROMETHEUS_BIN_DIR") or default_bin_dir()
    bin_dir = Path(chosen)
    missing = [name for name in REQUIRED if not os.access(bin_dir / name, os.X_OK)]
    if missing:
        raise PrometheusMissing(
            f"Prometheus binaries missing in {bin_dir}: {', '.join(missing)}; build them with "
            "hack/build-prometheus.sh (needs Go) and/or set QB_PROMETHEUS_BIN_DIR")
    return bin_dir


# --- configuration ---------------------------------------------------------------------------

def _duration(seconds: float) -> str:
    """Prometheus' duration syntax, in milliseconds (``1500ms``)."""
    millis = round(seconds * 1000)
    if millis <= 0:
        raise ValueError(f"a duration must be positive, got {seconds!r}")
    return f"{millis}ms"


def scrape_config(targets: Sequence[str], interval: float, job: str = "qbackbone",
                  metrics_path: str = "/metrics") -> dict[str, Any]:
    """A Prometheus configuration that scrapes ``targets`` (``host:port``) every
    ``interval`` seconds, with a timeout of the interval (at most 10 s); no targets: none."""
    config: dict[str, Any] = {"global": {"scrape_interval": _duration(interval),
                                         "evaluation_interval": _duration(interval)}}
    if targets:
        config["scrape_configs"] = [{
            "job_name": job,
            "scrape_interval": _duration(interval),
            "scrape_timeout": _duration(min(interval, 10.0)),
            "metrics_path": metrics_path,
            "static_configs": [{"targets": list(targets)}]}]
    return config


# --- the server ------------------------------------------------------------------------------

@dataclass
class Prometheus:
    """A running Prometheus server and its HTTP API; ``stop()`` (or ``with``) ends it."""

    url: str
    data_dir: Path
    config_file: Path
    record: procs.ProcessRecord
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    timeout: float = 30.0

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM (Prometheus flushes its head), SIGKILL after 15 s."""
        procs.stop(self.record, self.proc, grace=15.0)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the server's log."""
        return procs.tail(self.record.log, lines)

    # The HTTP API (https://prometheus.io/docs/prometheus/latest/querying/api/).

    def api(self, path: str, params: Mapping[str, str] | Sequence[tuple[str, str]] = (),
            expr: str = "", post: bool = True) -> Any:
        """POST ``params`` (form-encoded; or GET them, for the endpoints that only take GET)
        to ``/api/v1/<path>``; the ``data`` of a success, ``QueryError`` for an error answer
        (a parse error is ``bad_data``)."""
        encoded = urllib.parse.urlencode(params)
        if post:
            request = urllib.request.Request(
                f"{self.url}/api/v1/{path}", data=encoded.encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            request = urllib.request.Request(f"{self.url}/api/v1/{path}?{encoded}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as err:
            try:
                answer = json.loads(err.read())
            except ValueError:
                raise QueryError("http", f"{err.code} {err.reason}", expr) from err
        if answer.get("status") != "success":
            raise QueryError(answer.get("errorType", "unknown"), answer.get("error", ""), expr)
        return answer.get("data")

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """An instant query at ``at`` (unix seconds; default: now)."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self.api("query", params, expr)
        kind, result = data["resultType"], data["result"]
        if kind == "vector":
            return [Sample(dict(r["metric"]), float(r["value"][1]), float(r["value"][0]))
                    for r in result]
        if kind == "scalar":
            return [Sample({}, float(result[1]), float(result[0]))]
        raise QueryError("unexpected", f"result type {kind}", expr)

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """A range query from ``start`` to ``end`` (unix seconds) every ``step`` seconds."""
        data = self.api("query_range", {"query": expr, "start": f"{start:.3f}",
                                        "end": f"{end:.3f}", "step": f"{step:g}"}, expr)
        return [Series(dict(r["metric"]), [(float(t), float(v)) for t, v in r["values"]])
                for r in data["result"]]

    def series(self, *match: str, start: float | None = None,
               end: float | None = None) -> list[Labels]:
        """The label sets of the series matching any selector in ``match``."""
        params = [("match[]", m) for m in match]
        params += [(k, f"{v:.3f}") for k, v in (("start", start), ("end", end)) if v is not None]
        return [dict(s) for s in self.api("series", params)]

    def metric_names(self, *match: str) -> set[str]:
        """Names of the metrics stored (of the series matching ``match``, when given)."""
        params = [("match[]", m) for m in match]
        return set(self.api("label/__name__/values", params, post=False))

    def parse(self, expr: str) -> dict[str, Any]:
        """Prometheus' own parse of ``expr`` (``/api/v1/parse_query``): its syntax tree as JSON
        (nodes with ``type`` ``vectorSelector``, ``matrixSelector``, ``call``, ...)."""
        tree: dict[str, Any] = self.api("parse_query", {"query": expr}, expr)
        return tree

    def scrapes(self, job: str, window: float = 3600.0) -> int:
        """Scrapes of ``job`` stored within the last ``window`` seconds (its ``up`` samples)."""
        found = self.query(f'count_over_time(up{{job="{job}"}}[{_duration(window)}])')
        return int(sum(s.value for s in found))

    def wait_scrapes(self, job: str, count: int, timeout: float = 60.0) -> int:
        """Wait until ``job`` has been scraped ``count`` times; returns the number seen."""
        return wait_for(lambda: (n := self.scrapes(job)) >= count and n, timeout,
                        interval=0.2, what=f"{count} scrapes of {job}")


def start_prometheus(
    state_dir: str | os.PathLike[str],
    targets: Sequence[str] = (),
    interval: float = 2.0,
    bin_dir: str | os.PathLike[str] | None = None,
    job: str = "qbackbone",
    tied: bool = True,
    timeout: float = 60.0,
    extra_args: Sequence[str] = (),
) -> Prometheus:
    """Start Prometheus scraping ``targets`` (``host:port``) every ``interval`` seconds as job
    ``job``, listening on a free 127.0.0.1 port, its config, data (``<state_dir>/data``, which
    may already hold blocks from ``backfill``) and log under ``state_dir``; wait for
    ``/-/ready``. ``tied``: the server gets SIGTERM when this process dies."""
    binary = find_prometheus(bin_dir) / "prometheus"
    state = Path(state_dir)
    data_dir = state / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    config_file = state / "prometheus.yml"
    # JSON is YAML: no YAML library needed for the config.
    config_file.write_text(json.dumps(scrape_config(targets, interval, job), indent=2) + "\n")
    last: Exception | None = None
    for _ in range(3):  # the free port may be taken before Prometheus binds it: try another
        port = procs.free_port()
        argv = [str(binary), f"--config.file={config_file}",
                f"--storage.tsdb.path={data_dir}",
                f"--web.listen-address=127.0.0.1:{port}",
                # Backfilled blocks lie at BACKFILL_EPOCH: keep them whatever the clock says.
                "--storage.tsdb.retention.time=100y",
                # Apply the scrape targets within a scrape interval of the start, not after the
                # default 5 s (a hidden flag of the pinned version).
                f"--scrape.discovery-reload-interval={_duration(min(interval, 5.0))}",
                "--log.level=info", *extra_args]
        proc, record = procs.start("prometheus", argv, state,
                                   die_signal=signal.SIGTERM if tied else None)
        server = Prometheus(f"http://127.0.0.1:{port}", data_dir, config_file, record, proc)

        def ready(server: Prometheus = server, proc: subprocess.Popen[bytes] = proc) -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {proc.returncode}")
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)

        try:
            wait_for(ready, timeout, interval=0.1, what=f"Prometheus ready at {server.url}")
            return server
        except Exception as err:
            server.stop()
            last = err
            if "address already in use" not in server.log_tail():
                break
    raise RuntimeError(f"Prometheus did not start: {last}\n{procs.tail(state / 'prometheus.log')}")


# --- recorded scrapes into TSDB blocks -------------------------------------------------------

Scrape = tuple[float, Iterable[tuple[str, Mapping[str, str], float]]]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def openmetrics(scrapes: Iterable[Scrape], epoch: float = BACKFILL_EPOCH) -> str:
    """Scrapes ``(seconds after the start, [(sample name, labels, value)])`` as the OpenMetrics
    text ``promtool tsdb create-blocks-from openmetrics`` reads: one line per sample with its
    timestamp in seconds (``epoch`` + t, milliseconds kept), in time order, ``# EOF`` at the
    end. No ``# TYPE`` lines (the recording has none): every series is stored as it was
    scraped, counters, buckets and gauges alike."""
    lines: list[str] = []
    for t, samples in scrapes:
        stamp = f"{epoch + t:.3f}"
        for name, labels, value in samples:
            inner = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{name}{{{inner}}} {_number(value)} {stamp}" if inner
                         else f"{name} {_number(value)} {stamp}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def backfill(scrapes: Iterable[Scrape], data_dir: str | os.PathLike[str],
             bin_dir: str | os.PathLike[str] | None = None, epoch: float = BACKFILL_EPOCH,
             labels: Mapping[str, str] | None = None) -> Path:
    """Write ``scrapes`` (see ``openmetrics``) as TSDB blocks into ``data_dir`` with promtool;
    ``labels`` are added to every series (e.g. ``job``). Returns ``data_dir``: start
    Prometheus on it with ``start_prometheus(state_dir)`` where it is ``<state_dir>/data``."""
    promtool = find_prometheus(bin_dir) / "promtool"
    out = Path(data_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".om.txt", dir=out.parent) as text:
        text.write(openmetrics(scrapes, epoch))
        text.flush()
        argv = [str(promtool), "tsdb", "create-blocks-from", "openmetrics", "--quiet"]
        argv += [f"--label={k}={v}" for k, v in sorted((labels or {}).items())]
        done = subprocess.run([*argv, text.name, str(out)], capture_output=True, text=True,
                              check=False)
    if done.returncode != 0:
        raise RuntimeError(f"promtool create-blocks-from openmetrics failed "
                           f"({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return out


# --- Grafana's variables ---------------------------------------------------------------------

def grafana_expr(expr: str, rate_interval: str, range_: str) -> str:
    """A dashboard query as Grafana sends it: ``$__rate_interval`` and ``$__range`` replaced
    by the durations given, any other ``"$var"`` (``"${var}"``) matcher value by ``.*``
    (the "All" value of the dashboard's multi-value variables)."""
    expr = expr.replace("$__rate_interval", rate_interval).replace("$__range", range_)
    return re.sub(r'"\$\{?\w+\}?"', '".*"', expr)


# --- python -m qbackbone.dev.prometheus ------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    """Run Prometheus in the foreground scraping the given targets until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m qbackbone.dev.prometheus",
                                     description=main.__doc__)
    parser.add_argument("--target", action="append", default=[],
                        help="host:port to scrape (the operator's --metrics-port); repeatable")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between scrapes")
    parser.add_argument("--state-dir", type=Path,
                        help="config, data and log (default: a new temporary directory)")
    parser.add_argument("--bin-dir", help="default: $QB_PROMETHEUS_BIN_DIR or the cache")
    args = parser.parse_args(argv)
    state = args.state_dir or Path(tempfile.mkdtemp(prefix="qb-prometheus-"))
    server = start_prometheus(state, args.target, args.interval, args.bin_dir)
    print(f"Prometheus {server.url} (API {server.url}/api/v1/query), state in {state}; "
          "Ctrl-C stops it", file=sys.stderr)
    try:
        while server.proc is not None and server.proc.poll() is None:
            time.sleep(0.5)
        print(f"prometheus exited:\n{server.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
