"""The Grafana dashboard: valid layout, the data source as a variable; every query evaluated by
a real Prometheus (hack/build-prometheus.sh) that scrapes an operator registry served over
HTTP: it parses, reads only metrics the operator exports, and returns data; the recording
hack/render-dashboard.py draws from, backfilled into Prometheus, gives back what was
recorded; the chart ships the dashboard.

Without the Prometheus binaries the Prometheus tests are skipped with the reason, unless
``QB_REQUIRE_CLUSTER=1`` (CI), which makes that a failure."""

from __future__ import annotations

import gzip
import json
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from qbackbone.dev.prometheus import (
    BACKFILL_EPOCH,
    Prometheus,
    PrometheusMissing,
    QueryError,
    backfill,
    find_prometheus,
    grafana_expr,
    start_prometheus,
)
from qbackbone.observability import OperatorMetrics, serve
from qbackbone.observability.state import JobKey, QPULoad, job_key
from tests.chart.helm import CHART, REPO, documents, render

DASHBOARD = CHART / "dashboards" / "qbackbone.json"
RECORDING = REPO / "docs" / "img" / "dashboard-recording.jsonl.gz"
JOB = "qbackbone-test"
SCRAPE_SECONDS = 0.5
# Grafana's $__rate_interval is at least 4 scrape intervals; 10 here, so that every window
# holds several scrapes of a counter that moved.
RATE_INTERVAL, RANGE = "5s", "1m"


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


def exported() -> tuple[set[str], set[str]]:
    """(sample names, family names) of a fully populated operator registry."""
    m = OperatorMetrics()
    m.watch({job_key("ns", None): [None]}, {"q": [QPULoad(True, 1, 0.5)]})
    m.job_status_written("u", None, {"phase": "Failed", "conditions": [
        {"type": "Failed", "status": "True", "reason": "InvalidCircuit"}]})
    families = list(text_string_to_metric_families(m.exposition().decode()))
    return {s.name for f in families for s in f.samples}, {f.name for f in families}


def selectors(tree: Any) -> tuple[set[str], set[str]]:
    """(names read without a range, names read over a range) in Prometheus' syntax tree."""
    instant: set[str] = set()
    ranged: set[str] = set()
    if isinstance(tree, dict):
        if tree.get("type") == "vectorSelector":
            instant.add(tree["name"])
        elif tree.get("type") == "matrixSelector":
            ranged.add(tree["name"])
        else:
            for child in tree.values():
                i, r = selectors(child)
                instant |= i
                ranged |= r
    elif isinstance(tree, list):
        for child in tree:
            i, r = selectors(child)
            instant |= i
            ranged |= r
    return instant, ranged


def has_data(values: list[float]) -> bool:
    return any(not math.isnan(v) for v in values)


def test_layout_datasource_variable_and_ids() -> None:
    d = dashboard()
    assert d["uid"] == "qbackbone-operator" and d["title"]
    variables = {v["name"]: v for v in d["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for p in d["panels"]:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert all(t["datasource"] == p["datasource"] for t in p["targets"]), p["title"]
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        mine = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & mine, f"{p['title']} overlaps another panel"
        cells |= mine
        assert p["description"], p["title"]


# --- a real Prometheus -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def prometheus_bin() -> Path:
    """The Prometheus binaries, or a skip (a failure under ``QB_REQUIRE_CLUSTER=1``)."""
    try:
        return find_prometheus()
    except PrometheusMissing as exc:
        if os.environ.get("QB_REQUIRE_CLUSTER") == "1":
            pytest.fail(f"QB_REQUIRE_CLUSTER=1 but {exc}", pytrace=False)
        pytest.skip(str(exc))


def drive(m: OperatorMetrics, jobs: dict[JobKey, list[None]], stop: threading.Event) -> None:
    """What the operator does, every 0.1 s until ``stop``: jobs decided and succeeding (every
    fifth missing its deadline; each with its energy), a failure and a reconcile error every
    sixth step, joint plans, and the jobs index moving."""
    k = 0
    while not stop.is_set():
        running: dict[str, Any] = {
            "phase": "Running",
            "decision": {"path": "SingleQPU", "reason": "QuantumSelected"},
            "timings": {"reduceSeconds": 0.01 * (1 + k % 3), "decideSeconds": 0.1}}
        m.job_status_written(f"j{k}", None, running)
        done = {**running, "phase": "Succeeded",
                "timings": {**running["timings"], "totalSeconds": 1.5 + k % 4},
                "result": {"path": "SingleQPU", "energyJoules": 40.0 + 25.0 * (k % 3)},
                "conditions": [{"type": "DeadlineMet", "status": "True" if k % 5 else "False",
                                "reason": "FinishedInTime"}]}
        m.job_status_written(f"j{k}", running, done)
        if k % 6 == 0:
            m.job_status_written(f"f{k}", None, {"phase": "Failed", "conditions": [
                {"type": "Failed", "status": "True", "reason": "InvalidCircuit"}]})
            m.reconcile_error("quantumjob", "api")
        m.joint_plan_made(0.002 + 0.01 * (k % 3), 1 + k % 4)
        jobs[job_key("ns", done)] = [None] * (k + 1)
        jobs[job_key("ns", running)] = [None]
        jobs[job_key("ns", {**running, "phase": "Queued"})] = [None] * (1 + k % 3)
        k += 1
        stop.wait(0.1)


@dataclass
class Live:
    prometheus: Prometheus
    metrics: OperatorMetrics


@pytest.fixture(scope="module")
def live(prometheus_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """An operator registry served over HTTP and driven as the operator drives it, scraped by
    Prometheus every 0.5 s; yields once Prometheus holds 12 scrapes. Driving goes on until
    the module's tests are done, so every rate() window sees counters move."""
    m = OperatorMetrics()
    jobs: dict[JobKey, list[None]] = {}
    m.watch(jobs, {"qpu-a": [QPULoad(True, 2, 0.6)], "qpu-b": [QPULoad(False, 0, 0.0)]})
    server = serve(m.registry, 0, "127.0.0.1")
    assert server is not None
    stop = threading.Event()
    driver = threading.Thread(target=drive, args=(m, jobs, stop), daemon=True)
    driver.start()
    prometheus = None
    try:
        prometheus = start_prometheus(tmp_path_factory.mktemp("prometheus"),
                                      [f"127.0.0.1:{server.port}"], SCRAPE_SECONDS,
                                      bin_dir=prometheus_bin, job=JOB)
        prometheus.wait_scrapes(JOB, 12, timeout=60)
        yield Live(prometheus, m)
    finally:
        stop.set()
        driver.join(5)
        if prometheus is not None:
            prometheus.stop()
        server.close()


def test_prometheus_scrapes_the_operator_registry(live: Live) -> None:
    p = live.prometheus
    (up,) = p.query(f'up{{job="{JOB}"}}')
    assert up.value == 1.0
    ready = {s.labels["qpu"]: s.value for s in p.query("qbackbone_qpu_ready")}
    assert ready == {"qpu-a": 1.0, "qpu-b": 0.0}
    (depth,) = p.query('qbackbone_qpu_queue_depth{qpu="qpu-a"}')
    assert depth.value == 2.0 and depth.labels["job"] == JOB
    with pytest.raises(QueryError) as err:  # a query that does not parse is an error answer
        p.query("sum(rate(qbackbone_job_failures_total[5m])")
    assert err.value.error_type == "bad_data" and "parse error" in err.value.message


def test_queries_parse_read_only_exported_metrics_and_cover_them_all(live: Live) -> None:
    """Prometheus' own parse of each query (``/api/v1/parse_query``): every metric it reads
    is one Prometheus scraped from the operator; counters and histograms only over a range
    (through rate()/increase()); every metric the operator exports has a panel."""
    p = live.prometheus
    scraped = p.metric_names(f'{{job="{JOB}"}}')
    samples, families = exported()
    read: set[str] = set()
    for expr in exprs():
        instant, ranged = selectors(p.parse(grafana_expr(expr, RATE_INTERVAL, RANGE)))
        names = instant | ranged
        assert names, expr
        assert names <= scraped & samples, f"{expr} reads {sorted(names - scraped)}, not scraped"
        for name in instant:
            assert not name.endswith(("_total", "_bucket", "_count", "_sum")), expr
        read |= names
    for family in families:  # every metric has a panel
        assert any(n == family or n.startswith(f"{family}_") for n in read), family


def test_every_query_returns_data_from_the_scraped_operator(live: Live) -> None:
    """Each query as Grafana sends it: an instant query now (stat panels) and a range query
    over the scrapes so far (time series) answer with at least one number."""
    p = live.prometheus
    (now,) = p.query("time()")
    for panel in dashboard()["panels"]:
        for target in panel["targets"]:
            expr = grafana_expr(target["expr"], RATE_INTERVAL, RANGE)
            assert has_data([s.value for s in p.query(expr, now.time)]), expr
            if panel["type"] == "timeseries":
                series = p.query_range(expr, now.time - 6, now.time, SCRAPE_SECONDS)
                assert has_data([v for s in series for _, v in s.points]), expr


def test_the_recording_backfilled_into_prometheus_gives_back_what_was_recorded(
        prometheus_bin: Path, tmp_path: Path) -> None:
    """hack/render-dashboard.py's path: the recorded scrapes as TSDB blocks (promtool), then
    Prometheus over them: one stored sample per scrape, counters' increases over the whole
    run equal to their last recorded values (they start at 0), every query answering, with
    data unless it filters for non-zero rates (the run had no reconcile errors)."""
    with gzip.open(RECORDING, "rt") as recording:
        scrapes = [json.loads(line) for line in recording]
    backfill(((s["t"], s["samples"]) for s in scrapes), tmp_path / "data", prometheus_bin)
    end = BACKFILL_EPOCH + scrapes[-1]["t"]
    span = f"{math.ceil(scrapes[-1]['t']) + 1}s"
    last = scrapes[-1]["samples"]
    with start_prometheus(tmp_path, bin_dir=prometheus_bin) as p:
        (count,) = p.query(f'count_over_time(qbackbone_qpu_ready{{qpu="qpu-fra"}}[{span}])', end)
        assert count.value == len(scrapes)
        for name in ("qbackbone_job_failures_total", "qbackbone_job_duration_seconds_count"):
            (total,) = p.query(f"sum(increase({name}[{span}]))", end)
            assert total.value == pytest.approx(sum(v for n, _, v in last if n == name)), name
        for expr in exprs():
            series = p.query_range(grafana_expr(expr, "20s", span), BACKFILL_EPOCH, end, 2)
            if not expr.endswith("> 0"):
                assert has_data([v for s in series for _, v in s.points]), expr


def test_the_chart_ships_the_dashboard_for_the_grafana_sidecar(k8s_bin_dir: Path) -> None:
    names = {d["kind"] for d in documents(render(k8s_bin_dir))}
    assert "ConfigMap" in names
    assert not [d for d in documents(render(k8s_bin_dir))
                if d["metadata"]["name"].endswith("-dashboard")]
    docs = documents(render(k8s_bin_dir, "--set", "grafana.dashboard.enabled=true",
                            "--set", "grafana.dashboard.annotations.grafana_folder=Quantum"))
    (cm,) = [d for d in docs if d["metadata"]["name"] == "qbackbone-dashboard"]
    assert cm["kind"] == "ConfigMap"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Quantum"}
    assert json.loads(cm["data"]["qbackbone.json"]) == dashboard()
    # The operator serves /metrics on the port the Service targets.
    docs = documents(render(k8s_bin_dir, "--set", "metrics.enabled=true"))
    (deploy,) = [d for d in docs if d["kind"] == "Deployment"
                 and d["metadata"]["name"] == "qbackbone-operator"]
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert "--metrics-port=8081" in container["args"] and ports["metrics"] == 8081
    assert "--log-format=json" in container["args"]
    assert ports["http"] != ports["metrics"]
    (svc,) = [d for d in docs if d["kind"] == "Service"]
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"
    assert yaml.safe_dump(svc)
