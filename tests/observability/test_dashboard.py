"""The Grafana dashboard: valid layout, the data source as a variable, queries that read only
what the operator exports and draw something from a real exposition; the chart ships it.
Also the small PromQL evaluator the checks and hack/render-dashboard.py rely on."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from qbackbone.observability import OperatorMetrics
from qbackbone.observability.promql import (
    Node,
    Recording,
    Selector,
    children,
    metric_names,
    parse,
    substitute,
)
from qbackbone.observability.state import QPULoad, job_key
from tests.chart.helm import CHART, documents, render

DASHBOARD = CHART / "dashboards" / "qbackbone.json"


def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p["targets"]]


def scrape(metrics: OperatorMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(metrics.exposition().decode())
            for s in f.samples}


def instant_selectors(node: Node) -> set[str]:
    """Names read without a range (gauges must be these; counters never)."""
    if isinstance(node, Selector):
        return {node.name}
    return set().union(*(instant_selectors(c) for c in children(node)))


def exported() -> tuple[set[str], set[str]]:
    """(sample names, family names) of a fully populated operator registry."""
    m = OperatorMetrics()
    m.watch({job_key("ns", None): [None]}, {"q": [QPULoad(True, 1, 0.5)]})
    m.job_status_written("u", None, {"phase": "Failed", "conditions": [
        {"type": "Failed", "status": "True", "reason": "InvalidCircuit"}]})
    families = list(text_string_to_metric_families(m.exposition().decode()))
    return {s.name for f in families for s in f.samples}, {f.name for f in families}


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


def test_queries_read_only_exported_metrics_and_cover_them_all() -> None:
    samples, families = exported()
    read: set[str] = set()
    for expr in exprs():
        names = metric_names(parse(substitute(expr, "1m", "1h")))
        assert names, expr
        assert names <= samples, f"{expr} reads {sorted(names - samples)}, not exported"
        read |= names
    for family in families:  # every metric has a panel
        assert any(n == family or n.startswith(f"{family}_") for n in read), family
    for expr in exprs():  # counters and histograms only through rate()/increase()
        for name in instant_selectors(parse(substitute(expr, "1m", "1h"))):
            assert not name.endswith(("_total", "_bucket", "_count", "_sum")), expr


def test_every_query_draws_something_from_a_real_exposition() -> None:
    """Drive the metrics as the operator does (status writes, indexes), scrape every 5 s for
    3 minutes, and evaluate each query at the end: none is empty or all-NaN."""
    m = OperatorMetrics()
    jobs: dict[Any, list[None]] = {}
    m.watch(jobs, {"qpu-a": [QPULoad(True, 2, 0.6)], "qpu-b": [QPULoad(False, 0, 0.0)]})
    rec = Recording()
    for k in range(36):
        t = 5.0 * k
        running: dict[str, Any] = {
            "phase": "Running",
            "decision": {"path": "SingleQPU", "reason": "QuantumSelected"},
            "timings": {"reduceSeconds": 0.01 * (1 + k % 3), "decideSeconds": 0.1}}
        m.job_status_written(f"j{k}", None, running)
        done = {**running, "phase": "Succeeded",
                "timings": {**running["timings"], "totalSeconds": 1.5 + k % 4},
                "conditions": [{"type": "DeadlineMet", "status": "True" if k % 5 else "False",
                                "reason": "FinishedInTime"}]}
        m.job_status_written(f"j{k}", running, done)
        if k % 6 == 0:
            m.job_status_written(f"f{k}", None, {"phase": "Failed", "conditions": [
                {"type": "Failed", "status": "True", "reason": "InvalidCircuit"}]})
            m.reconcile_error("quantumjob", "api")
        m.joint_plan_made(0.002 + 0.01 * (k % 3), 1 + k % 4)
        jobs.clear()
        jobs[job_key("ns", done)] = [None] * (k + 1)
        jobs[job_key("ns", running)] = [None]
        jobs[job_key("ns", {**running, "phase": "Queued"})] = [None] * (k % 3)
        rec.add(t, scrape(m))
    for expr in exprs():
        value = rec.evaluate(substitute(expr, "30s", "3m"), 175.0)
        values = list(value.values()) if isinstance(value, dict) else [value]
        assert values and any(not math.isnan(v) for v in values), expr


def test_promql_subset_matches_hand_computed_values() -> None:
    rec = Recording()
    le = [("0.1", 0.0), ("1.0", 0.0), ("+Inf", 0.0)]
    for t, count, buckets in ((0.0, 0.0, (0, 0, 0)), (10.0, 20.0, (5, 15, 20))):
        scrape_: dict[Any, float] = {
            ("c_total", frozenset({("a", "x")})): count,
            ("c_total", frozenset({("a", "y")})): count / 2,
            ("g", frozenset({("q", "1")})): 3.0}
        for (bound, _), n in zip(le, buckets, strict=True):
            scrape_[("h_bucket", frozenset({("le", bound)}))] = float(n)
        rec.add(t, scrape_)
    assert rec.evaluate("sum(rate(c_total[10s]))", 10.0) == {frozenset(): 3.0}
    assert rec.evaluate('sum by (a) (increase(c_total{a=~"x|z"}[10s]))', 10.0) == \
        {frozenset({("a", "x")}): 20.0}
    assert rec.evaluate("sum(rate(c_total[10s])) * 60", 10.0) == {frozenset(): 180.0}
    ratio = rec.evaluate('sum(rate(c_total{a="y"}[10s])) / sum(rate(c_total[10s]))', 10.0)
    assert ratio == {frozenset(): pytest.approx(1 / 3)}
    # 20 observations: 5 <= 0.1, 10 in (0.1, 1], 5 above 1. The median (rank 10) is in the
    # second bucket, half way: 0.1 + 0.9 * 5/10; p90 (rank 18) is past the last finite bound.
    median = rec.evaluate("histogram_quantile(0.5, sum by (le) (rate(h_bucket[10s])))", 10.0)
    assert median == {frozenset(): pytest.approx(0.55)}
    assert rec.evaluate("histogram_quantile(0.9, sum by (le) (rate(h_bucket[10s])))", 10.0) == \
        {frozenset(): 1.0}
    assert rec.evaluate("max by (q) (g)", 10.0) == {frozenset({("q", "1")}): 3.0}
    assert rec.evaluate("sum by (a) (rate(c_total[10s])) > 1.5", 10.0) == \
        {frozenset({("a", "x")}): 2.0}
    # A window longer than the data: no extrapolation below the counter's zero or past the
    # data by more than half a scrape interval, so increase() is the 20 that happened.
    assert rec.evaluate('sum(increase(c_total{a="x"}[100s]))', 10.0) == {frozenset(): 20.0}
    assert rec.evaluate("g", 1000.0) == {}  # past the lookback: stale
    for bad in ("topk(3, g)", "rate(g)", "g offset 5m", "sum(g) by (q)"):
        with pytest.raises(ValueError):
            parse(bad)


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
