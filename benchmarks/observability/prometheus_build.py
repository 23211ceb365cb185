"""Prometheus for the dashboard (hack/build-prometheus.sh, qbackbone.dev.prometheus), in figures.

    .venv/bin/python benchmarks/observability/prometheus_build.py                  # ~5 s
    .venv/bin/python benchmarks/observability/prometheus_build.py --from-scratch   # + ~6 min

Build: the cold build is the first ``build`` run recorded in ``timings.jsonl`` of the script's
cache (per component: module download, ``prometheus``, ``promtool``; with the Go caches shared
with hack/build-k8s.sh, which already held the packages both use at the same versions); the
warm figure is this run of the script (only checks). ``--from-scratch`` also builds once with
an empty cache directory (``QB_CACHE_DIR`` in a temporary directory: every module downloaded
from the proxy, every package compiled) and records that run; without it the figure of the
last such run in the results file is kept. Sizes: the cached, stripped binaries. Use: the
dashboard recording (docs/img/dashboard-recording.jsonl.gz) backfilled into TSDB blocks with
promtool, Prometheus started on them (seconds to ``/-/ready``), and every dashboard query
answered as hack/render-dashboard.py asks it (range queries every 2 s over the run).

Writes ``benchmarks/results/prometheus-build.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from qbackbone.dev.prometheus import (
    BACKFILL_EPOCH,
    CACHE_KEY,
    PROMETHEUS_TAGS,
    PROMETHEUS_VERSION,
    REQUIRED,
    backfill,
    grafana_expr,
    start_prometheus,
)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "build-prometheus.sh"
RECORDING = REPO / "docs" / "img" / "dashboard-recording.jsonl.gz"
DASHBOARD = REPO / "charts" / "qbackbone" / "dashboards" / "qbackbone.json"
RESULT = REPO / "benchmarks" / "results" / "prometheus-build.json"


def run_script(env: dict[str, str] | None = None) -> tuple[Path, float]:
    """Run hack/build-prometheus.sh; (its bin directory, seconds it took)."""
    t0 = time.monotonic()
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True, check=False, env=env)
    seconds = time.monotonic() - t0
    if done.returncode != 0:
        sys.exit(f"{SCRIPT} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return Path(done.stdout.strip().splitlines()[-1]), seconds


def runs(bin_dir: Path) -> list[dict[str, Any]]:
    timings = bin_dir.parent / "timings.jsonl"
    return [json.loads(line) for line in timings.read_text().splitlines() if line.strip()]


def from_scratch() -> dict[str, Any]:
    """A build with an empty cache directory (modules and Go build cache included)."""
    scratch = Path(tempfile.mkdtemp(prefix="qb-prometheus-scratch-"))
    try:
        bin_dir, seconds = run_script({**os.environ, "QB_CACHE_DIR": str(scratch)})
        (run,) = [r for r in runs(bin_dir) if r["kind"] == "build"]
        return {"seconds": round(seconds, 1), "components_seconds": run["components"],
                "when": run["when"],
                "note": "empty QB_CACHE_DIR: every module downloaded from the proxy, every "
                        "package compiled, on a machine busy with other work"}
    finally:
        # The module cache is written read-only by Go; make it removable first.
        subprocess.run(["chmod", "-R", "u+w", str(scratch)], check=False)
        shutil.rmtree(scratch, ignore_errors=True)


def use(bin_dir: Path) -> dict[str, Any]:
    """Backfill the dashboard recording, start Prometheus on it, answer every query."""
    with gzip.open(RECORDING, "rt") as source:
        scrapes = [(e["t"], e["samples"]) for e in map(json.loads, source)]
    panels = json.loads(DASHBOARD.read_text())["panels"]
    end = scrapes[-1][0]
    with tempfile.TemporaryDirectory(prefix="qb-prometheus-bench-") as tmp:
        t0 = time.monotonic()
        backfill(scrapes, Path(tmp) / "data", bin_dir)
        t1 = time.monotonic()
        with start_prometheus(tmp, bin_dir=bin_dir) as prometheus:
            t2 = time.monotonic()
            queries = 0
            for panel in panels:
                for target in panel["targets"]:
                    expr = grafana_expr(target["expr"], "20s", f"{math.ceil(end)}s")
                    prometheus.query_range(expr, BACKFILL_EPOCH, BACKFILL_EPOCH + end, 2.0)
                    queries += 1
            t3 = time.monotonic()
    return {"recording_scrapes": len(scrapes),
            "recording_samples": sum(len(s) for _, s in scrapes),
            "backfill_seconds": round(t1 - t0, 3),
            "start_to_ready_seconds": round(t2 - t1, 3),
            "range_queries": queries,
            "range_queries_seconds": round(t3 - t2, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--from-scratch", action="store_true",
                        help="also build once with an empty cache (several minutes)")
    args = parser.parse_args()
    bin_dir, warm = run_script()
    recorded = runs(bin_dir)
    builds = [r for r in recorded if r["kind"] == "build"]
    cold = builds[0] if builds else None
    previous = json.loads(RESULT.read_text()) if RESULT.exists() else {}
    scratch = from_scratch() if args.from_scratch else \
        previous.get("build", {}).get("from_scratch")
    result = {
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "python": platform.python_version()},
        "prometheus": {"module_version": PROMETHEUS_VERSION, "tags": PROMETHEUS_TAGS,
                       "cache_key": CACHE_KEY,
                       "version": subprocess.run([str(bin_dir / "prometheus"), "--version"],
                                                 capture_output=True, text=True, check=True)
                       .stdout.splitlines()[0]},
        "build": {
            "cold_seconds": cold["seconds"] if cold else None,
            "cold_components_seconds": cold["components"] if cold else None,
            "cold_when": cold["when"] if cold else None,
            "cold_note": "first recorded build of this cache key, with the Go module and build "
                         "caches hack/build-k8s.sh had filled (shared packages not recompiled)",
            "warm_seconds": round(warm, 2),
            "from_scratch": scratch,
        },
        "binary_bytes": {name: (bin_dir / name).stat().st_size for name in REQUIRED},
        "use": use(bin_dir),
    }
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    build = result["build"]
    print(f"build: cold {build['cold_seconds']} s {build['cold_components_seconds']}, "
          f"warm {build['warm_seconds']} s"
          + (f", from scratch {scratch['seconds']} s" if scratch else ""))
    print("binaries: " + ", ".join(f"{k} {v / 2**20:.1f} MiB"
                                   for k, v in result["binary_bytes"].items()))
    print(f"use: {result['use']}")
    print(f"wrote {RESULT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
