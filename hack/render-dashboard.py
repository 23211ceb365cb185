#!/usr/bin/env python
"""Draw the Grafana dashboard (charts/qbackbone/dashboards/qbackbone.json) from a real run.

    .venv/bin/python hack/render-dashboard.py            # record (~7 min), then render
    .venv/bin/python hack/render-dashboard.py --render-only

``record``: a local control plane (``qbackbone.dev``, binaries from ``$QB_K8S_BIN_DIR`` or
hack/build-k8s.sh), a node agent with three QPUs on two hosts, ``crds/``, three QPUNodes (two
ideal aer simulators, one fake_nairobi with its noise; each modelled at 2 s per fragment, about
a fragment pod's real cost, so bursts wait in the joint plan's queue) and ``qbackbone operator
--metrics-port``; then 42 jobs in two namespaces over about 3 minutes: one every 8 s (one in
seven on the classical path; a 2-minute deadline), two bursts of 8 with 12 s or 25 s
deadlines (the QPUs queue up and some deadlines are missed), an unparsable circuit and a
missing policy. ``/metrics``
is scraped every 2 s into docs/img/dashboard-recording.jsonl.gz. Everything is torn down.

``render``: the recording backfilled into TSDB blocks (``promtool tsdb create-blocks-from
openmetrics``), a real Prometheus started on them (``qbackbone.dev.prometheus``; binaries from
``$QB_PROMETHEUS_BIN_DIR`` or hack/build-prometheus.sh), every panel's PromQL evaluated by it
(range queries every 2 s over the run for time series, an instant query at the end for stats),
laid out by the panels' gridPos, written to docs/img/dashboard.png.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DASHBOARD = ROOT / "charts" / "qbackbone" / "dashboards" / "qbackbone.json"
RECORDING = ROOT / "docs" / "img" / "dashboard-recording.jsonl.gz"
PNG = ROOT / "docs" / "img" / "dashboard.png"
G, V = "qbackbone.io", "v1alpha1"
HOSTS = ("pop-lon:qpu-lon-1,qpu-lon-2", "dc-fra:qpu-fra")
# setupTime 2 s: about what a fragment pod takes here, so the joint plan queues the bursts.
QPUNODES = {"qpu-lon-1": {"backend": {"provider": "aer", "name": "aer_simulator"}, "qubits": 8,
                          "site": "pop-london", "setupTime": "2s"},
            "qpu-lon-2": {"backend": {"provider": "aer", "name": "aer_simulator"}, "qubits": 8,
                          "site": "pop-london", "setupTime": "2s"},
            "qpu-fra": {"backend": {"provider": "fake", "name": "fake_nairobi"},
                        "site": "dc-frankfurt", "setupTime": "2s"}}
NAMESPACES = ("team-te", "team-slicing")
SCRAPE_SECONDS = 2.0


# --- recording -------------------------------------------------------------------------------

def circuit(rng: random.Random, n: int) -> str:
    lines = ["OPENQASM 2.0;", 'include "qelib1.inc";', f"qreg q[{n}];"]
    for layer in range(2):
        lines += [f"ry({rng.uniform(0.1, 3.0):.3f}) q[{i}];" for i in range(n)]
        lines += [f"cx q[{i}], q[{i + 1}];" for i in range(layer % 2, n - 1, 2)]
    return "\n".join(lines) + "\n"


def job(name: str, rng: random.Random, **spec: Any) -> dict[str, Any]:
    n = rng.randint(3, 5)
    observables = ["Z" * n, "I" + "X" * (n - 1)]
    body: dict[str, Any] = {"circuit": {"qasm": circuit(rng, n), "observables": observables},
                            "shots": rng.choice([1000, 2000, 4000])}
    body.update(spec)
    return {"apiVersion": f"{G}/{V}", "kind": "QuantumJob", "metadata": {"name": name},
            "spec": body}


def workload(rng: random.Random) -> list[tuple[float, str, dict[str, Any]]]:
    """(seconds after start, namespace, job): trickle, two deadline bursts, bad jobs."""
    plan: list[tuple[float, str, dict[str, Any]]] = []
    for k in range(24):  # steady: a job every 8 s
        ns = NAMESPACES[k % 2]
        mode = "Classical" if k % 7 == 3 else "Auto"
        plan.append((8.0 * k, ns, job(f"steady-{k}", rng, execution={"mode": mode},
                                      deadline="2m")))
    for burst, at in (("a", 40.0), ("b", 120.0)):
        for k in range(8):
            plan.append((at + 0.5 * k, NAMESPACES[0],
                         job(f"burst-{burst}-{k}", rng, deadline=rng.choice(["12s", "25s"]))))
    bad = job("bad-circuit", rng)
    bad["spec"]["circuit"]["qasm"] = "OPENQASM 2.0; this is not a circuit"
    plan.append((70.0, NAMESPACES[1], bad))
    plan.append((160.0, NAMESPACES[1], job("no-policy", rng, policyRef={"name": "absent"})))
    return sorted(plan, key=lambda p: p[0])


def ready(custom: Any, name: str) -> bool:
    status = custom.get_cluster_custom_object(G, V, "qpunodes", name).get("status") or {}
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in status.get("conditions") or [])


def parse_scrape(text: str) -> list[tuple[str, dict[str, str], float]]:
    from prometheus_client.parser import text_string_to_metric_families
    return [(s.name, dict(s.labels), float(s.value))
            for f in text_string_to_metric_families(text) for s in f.samples]


def record(out: Path, seconds_after: float) -> None:
    from kubernetes import client, config

    from qbackbone.dev import LocalCluster
    from qbackbone.dev.agentproc import start_node_agent
    from qbackbone.dev.crds import install_crds
    from qbackbone.dev.procs import free_port
    from qbackbone.dev.procs import stop as stop_process
    from qbackbone.dev.waiting import wait_for

    state = Path(tempfile.mkdtemp(prefix="qb-dashboard-"))
    ok = False
    cluster = LocalCluster(state / "cluster", tied=True)
    agent = operator = None
    metrics_port, health_port = free_port(), free_port()
    try:
        info = cluster.start()
        api = config.new_client_from_config(config_file=info.kubeconfig)
        install_crds(info, api, ROOT / "crds")
        agent = start_node_agent(info, list(HOSTS), tied=True,
                                 pod_env=[f"KUBECONFIG={info.kubeconfig}"])
        qbackbone = str(Path(sys.executable).parent / "qbackbone")
        log = (state / "operator.log").open("wb")
        operator = subprocess.Popen(
            [qbackbone, "operator", f"--kubeconfig={info.kubeconfig}",
             f"--liveness=http://127.0.0.1:{health_port}/healthz",
             f"--metrics-port={metrics_port}", "--log-format=json",
             f"--worker-command={qbackbone}", "--seed=11"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{metrics_port}/metrics"

        def up() -> bool:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)

        wait_for(up, 60, interval=0.5, what="operator /metrics")
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        for ns in NAMESPACES:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
            wait_for(partial(core.read_namespaced_service_account, "default", ns), 30,
                     what=f"default ServiceAccount in {ns}")
        for name, spec in QPUNODES.items():
            custom.create_cluster_custom_object(G, V, "qpunodes", {
                "apiVersion": f"{G}/{V}", "kind": "QPUNode", "metadata": {"name": name},
                "spec": spec})
        for name in QPUNODES:
            wait_for(partial(ready, custom, name), 60, what=f"QPUNode {name} Ready")

        start = time.monotonic()
        stop = threading.Event()
        with gzip.open(out, "wt") as sink:
            def scrape_loop() -> None:
                while not stop.is_set():
                    t = time.monotonic() - start
                    try:
                        with urllib.request.urlopen(url, timeout=5) as response:
                            samples = parse_scrape(response.read().decode())
                        sink.write(json.dumps({"t": round(t, 3), "samples": samples}) + "\n")
                    except OSError as err:
                        print(f"scrape failed at {t:.0f}s: {err}", file=sys.stderr)
                    stop.wait(max(0.0, SCRAPE_SECONDS - (time.monotonic() - start - t)))

            scraper = threading.Thread(target=scrape_loop, daemon=True)
            scraper.start()
            plan = workload(random.Random(7))
            for at, ns, body in plan:
                time.sleep(max(0.0, at - (time.monotonic() - start)))
                custom.create_namespaced_custom_object(G, V, ns, "quantumjobs", body)
            names = {(ns, b["metadata"]["name"]) for _, ns, b in plan}

            def finished() -> bool:
                objects: list[Any] = [
                    custom.get_namespaced_custom_object(G, V, ns, "quantumjobs", n)
                    for ns, n in names]
                phases = [(o.get("status") or {}).get("phase") for o in objects]
                print(f"  {time.monotonic() - start:5.0f}s: "
                      f"{sum(p in ('Succeeded', 'Failed') for p in phases)}/{len(phases)} "
                      "finished", file=sys.stderr)
                return all(p in ("Succeeded", "Failed") for p in phases)

            wait_for(finished, 600, interval=10, what="every job finished")
            time.sleep(seconds_after)
            stop.set()
            scraper.join(10)
        print(f"recorded {time.monotonic() - start:.0f}s into {out}", file=sys.stderr)
        ok = True
    finally:
        if operator is not None and operator.poll() is None:
            operator.send_signal(signal.SIGTERM)
            try:
                operator.wait(20)
            except subprocess.TimeoutExpired:
                operator.kill()
        if agent is not None:
            stop_process(agent[1], agent[0])
        cluster.stop()
        if ok:
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"kept {state} (operator.log, control-plane logs)", file=sys.stderr)


# --- rendering -------------------------------------------------------------------------------

BG, PANEL, TEXT, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
COLOURS = ["#73bf69", "#f2cc0c", "#5794f2", "#ff780a", "#f2495c", "#b877d9", "#8ab8ff",
           "#fade2a", "#37872d", "#c4162a"]


Scrape = tuple[float, list[tuple[str, dict[str, str], float]]]


def load(path: Path) -> list[Scrape]:
    """The recorded scrapes: (seconds after the start, [(sample name, labels, value)])."""
    with gzip.open(path, "rt") as source:
        return [(entry["t"], [(name, labels, value) for name, labels, value in entry["samples"]])
                for entry in map(json.loads, source)]


def legend(fmt: str, labels: dict[str, str]) -> str:
    text = fmt
    for key, value in labels.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def fmt_value(value: float, unit: str | None) -> str:
    if math.isnan(value):
        return "-"
    if unit == "percentunit":
        return f"{100 * value:.0f}%"
    if unit == "s":
        return f"{value:.2f} s"
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.1f}".removesuffix(".0")


def render(recording: Path, png: Path, bin_dir: str | None = None) -> None:
    """Backfill the recording into a TSDB, start Prometheus on it and draw its answers."""
    from qbackbone.dev.prometheus import backfill, start_prometheus

    scrapes = load(recording)
    with tempfile.TemporaryDirectory(prefix="qb-dashboard-tsdb-") as tmp:
        t0 = time.monotonic()
        backfill(scrapes, Path(tmp) / "data", bin_dir)
        with start_prometheus(tmp, bin_dir=bin_dir) as prometheus:
            print(f"{len(scrapes)} scrapes backfilled, Prometheus {prometheus.url} ready in "
                  f"{time.monotonic() - t0:.1f}s", file=sys.stderr)
            draw(prometheus, scrapes[-1][0], png)


def draw(prometheus: Any, end: float, png: Path) -> None:
    """Each panel's queries answered by ``prometheus`` over the backfilled run (0 to ``end``
    seconds after BACKFILL_EPOCH), laid out by the panels' gridPos."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, MultipleLocator, PercentFormatter

    from qbackbone.dev.prometheus import BACKFILL_EPOCH, grafana_expr

    dash = json.loads(DASHBOARD.read_text())
    # Grafana's steps: one per scrape interval; a query's value at each step.
    steps = [SCRAPE_SECONDS * k for k in range(math.floor(end / SCRAPE_SECONDS) + 1)]
    span = f"{math.ceil(end)}s"
    rate_interval = "20s"  # Grafana: max(4 x scrape interval, step); scrapes here every 2 s
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in dash["panels"])
    unit_w, unit_h, title_h = 0.85, 0.42, 0.55
    fig = plt.figure(figsize=(24 * unit_w, rows * unit_h + title_h), facecolor=BG)
    fig.text(0.01, 1 - 0.25 / (rows * unit_h + title_h), f"{dash['title']}  ·  a "
             f"{end / 60:.1f}-minute run: {len(NAMESPACES)} namespaces, 3 QPUs, bursts with "
             "tight deadlines (hack/render-dashboard.py)", color=TEXT, fontsize=15,
             va="center", weight="bold")
    height = rows * unit_h + title_h
    for panel in dash["panels"]:
        g = panel["gridPos"]
        pad = 0.12
        left = (g["x"] * unit_w + pad) / (24 * unit_w)
        width = (g["w"] * unit_w - 2 * pad) / (24 * unit_w)
        bottom = 1 - (title_h + (g["y"] + g["h"]) * unit_h - pad) / height
        h = (g["h"] * unit_h - 2 * pad - 0.3) / height
        unit = panel["fieldConfig"]["defaults"].get("unit")
        box = fig.add_axes((left, bottom, width, h + 0.3 / height), facecolor=PANEL)
        box.set_xticks([])
        box.set_yticks([])
        for side in box.spines.values():
            side.set_color(GRID)
        box.text(0.015, 0.97, panel["title"], transform=box.transAxes, color=TEXT,
                 fontsize=11, va="top", weight="bold")
        if panel["type"] == "stat":
            target = panel["targets"][0]
            answer = prometheus.query(grafana_expr(target["expr"], rate_interval, span),
                                      BACKFILL_EPOCH + end)
            number = sum(s.value for s in answer) if answer else math.nan
            box.text(0.5, 0.42, fmt_value(number, unit), transform=box.transAxes,
                     color=COLOURS[0], fontsize=30, ha="center", va="center", weight="bold")
            continue
        lines = []
        for target in panel["targets"]:
            answer = prometheus.query_range(grafana_expr(target["expr"], rate_interval, span),
                                            BACKFILL_EPOCH, BACKFILL_EPOCH + steps[-1],
                                            SCRAPE_SECONDS)
            for series in sorted(answer, key=lambda s: sorted(s.labels.items())):
                # A step without a value is a gap in the line, as Grafana draws it.
                at = {round(t - BACKFILL_EPOCH, 3): v for t, v in series.points}
                values = [at.get(round(t, 3), math.nan) for t in steps]
                if not all(math.isnan(v) for v in values):
                    lines.append((legend(target.get("legendFormat") or "", series.labels),
                                  values))
        longest = max((len(label) for label, _ in lines), default=1)
        ncol = max(1, min(len(lines), int(g["w"] * 8.5) // (longest + 6)))
        legend_rows = math.ceil(len(lines) / ncol) if lines else 0
        lift = 0.13 + 0.07 * legend_rows
        ax = fig.add_axes((left + 0.045 * width, bottom + lift * h, width * 0.93,
                           h * (0.88 - lift)), facecolor=PANEL)
        for colour, (label, values) in enumerate(lines):
            ax.plot([t / 60 for t in steps], values, lw=1.8,
                    color=COLOURS[colour % len(COLOURS)], label=label)
        colour = len(lines)
        ax.tick_params(colors=TEXT, labelsize=8)
        ax.grid(color=GRID, lw=0.6)
        for side in ax.spines.values():
            side.set_visible(False)
        ax.set_xlim(0, end / 60)
        ax.xaxis.set_major_locator(MultipleLocator(1.0))  # a tick a minute
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f} min"))
        if unit == "percentunit":
            ax.set_ylim(-0.02, 1.02)
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        elif unit == "s":
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} s"))
        else:
            ax.set_ylim(bottom=0)
        if colour:
            ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.1), ncol=ncol,
                      frameon=False, fontsize=8, labelcolor=TEXT, handlelength=1.2,
                      columnspacing=1.0)
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, color=TEXT, ha="center")
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=80, facecolor=BG)
    print(f"wrote {png}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--render-only", action="store_true",
                        help=f"draw from the existing {RECORDING.relative_to(ROOT)}")
    parser.add_argument("--recording", type=Path, default=RECORDING)
    parser.add_argument("--output", type=Path, default=PNG)
    parser.add_argument("--prometheus-bin-dir",
                        help="prometheus and promtool (default: $QB_PROMETHEUS_BIN_DIR or "
                             "the cache of hack/build-prometheus.sh)")
    parser.add_argument("--tail", type=float, default=30.0,
                        help="seconds recorded after the last job finished (default 30)")
    args = parser.parse_args()
    if not args.render_only:
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        record(args.recording, args.tail)
    render(args.recording, args.output, args.prometheus_bin_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
