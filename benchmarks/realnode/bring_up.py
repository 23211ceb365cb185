"""Bring-up of a real node (kubelet, containerd, runc, CNI) on this machine, in figures.

    .venv/bin/python benchmarks/realnode/bring_up.py            # about 30 s, needs root

Build: the cold build is the first ``build`` run recorded in ``timings.jsonl`` of
``hack/build-node.sh``'s cache (per component; on top of an already built control plane, so
the kubelet reuses its compiled packages), the warm figure is this run of the script (only
checks). Sizes: the cached binaries and the pause image archive. Bring-up: a fresh control
plane (its own, tied to this process), then ``start_real_node``: containerd ready (seconds
after the supervisor starts it, the pause image imported), Node Ready (seconds after the
kubelet started, polled every 50 ms) and the whole call. Pods: ``--pods`` pods, one after
another, each a static ``true`` in an image assembled here (no registry); seconds from the
create call to ``Succeeded`` seen by polling every 20 ms; the median is reported. Stop: the
supervisor's orderly clean-up (kubelet, CRI sandboxes, containerd, mounts, cgroups, Node).

Writes ``benchmarks/results/realnode-bring-up.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubernetes import client, config

from qbackbone.dev import LocalCluster, find_bin_dir
from qbackbone.dev.images import write_oci_archive
from qbackbone.dev.realnode import (
    REQUIRED,
    pause_archive,
    real_node_unavailable,
    start_real_node,
)

REPO = Path(__file__).resolve().parents[2]
RESULT = REPO / "benchmarks" / "results" / "realnode-bring-up.json"
IMAGE = "localhost/qbackbone/true:1"


def build_figures() -> tuple[Path, dict[str, Any]]:
    """Run hack/build-node.sh (warm: checks only) and read the recorded cold build."""
    t0 = time.monotonic()
    done = subprocess.run([str(REPO / "hack" / "build-node.sh")], capture_output=True,
                          text=True, check=True)
    warm = time.monotonic() - t0
    bin_dir = Path(done.stdout.strip().splitlines()[-1])
    runs = [json.loads(line) for line in
            (bin_dir.parent / "timings.jsonl").read_text().splitlines() if line.strip()]
    builds = [r for r in runs if r["kind"] == "build"]
    cold = builds[0] if builds else None
    return bin_dir, {
        "cold_seconds": cold["seconds"] if cold else None,
        "cold_components_seconds": cold["components"] if cold else None,
        "cold_when": cold["when"] if cold else None,
        "cold_note": "first recorded build of this cache key; the control plane (and its Go "
                     "build cache) was already built; includes apt-get installs",
        "warm_seconds": round(warm, 2),
    }


def sizes(bin_dir: Path) -> dict[str, int]:
    found = {name: (bin_dir / name).stat().st_size for name in REQUIRED}
    found["pause.oci.tar"] = pause_archive(bin_dir).stat().st_size
    return found


def true_image(work: Path) -> Path:
    """A one-file image: a static program that exits 0."""
    (work / "true.c").write_text("int main(void) { return 0; }\n")
    subprocess.run(["gcc", "-Os", "-static", "-o", str(work / "true"), str(work / "true.c")],
                   check=True)
    archive = work / "true.oci.tar"
    write_oci_archive(archive, IMAGE, {"true": work / "true"}, entrypoint=["/true"])
    return archive


def pod(name: str, node: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            restart_policy="Never", node_selector={"kubernetes.io/hostname": node},
            automount_service_account_token=False,
            containers=[client.V1Container(name="main", image=IMAGE,
                                           image_pull_policy="Never")]))


def run_pods(core: client.CoreV1Api, node: str, count: int) -> list[float]:
    seconds = []
    for i in range(count):
        name = f"bench-{i}"
        t0 = time.monotonic()
        core.create_namespaced_pod("default", pod(name, node))
        while True:
            phase = core.read_namespaced_pod(name, "default").status.phase
            if phase in ("Succeeded", "Failed"):
                break
            if time.monotonic() - t0 > 120:
                raise TimeoutError(f"pod {name} still {phase} after 120 s")
            time.sleep(0.02)
        if phase != "Succeeded":
            raise RuntimeError(f"pod {name} {phase}")
        seconds.append(round(time.monotonic() - t0, 3))
        print(f"  pod {name}: {seconds[-1]:.2f} s", file=sys.stderr)
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    reason = real_node_unavailable()
    if reason:
        print(f"error: no real node on this host: {reason}", file=sys.stderr)
        return 1
    bin_dir, build = build_figures()
    result: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release(),
                    "python": platform.python_version()},
        "build": build, "binary_bytes": sizes(bin_dir),
    }
    with tempfile.TemporaryDirectory(prefix="qb-realnode-bench-") as tmp:
        work = Path(tmp)
        state = work / "cluster"
        pki = state / "pki"
        cluster = LocalCluster(state, find_bin_dir(), tied=True, apiserver_args=[
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            f"--kubelet-client-certificate={pki / 'admin.crt'}",
            f"--kubelet-client-key={pki / 'admin.key'}"])
        info = cluster.start()
        try:
            t0 = time.monotonic()
            node = start_real_node(info, name="bench-node", tied=True)
            start_seconds = time.monotonic() - t0
            status = json.loads(node.layout.status.read_text())
            node.import_image(true_image(work))
            api = config.new_client_from_config(config_file=info.kubeconfig)
            try:
                pods = run_pods(client.CoreV1Api(api), node.name, args.pods)
            finally:
                api.close()
            t0 = time.monotonic()
            node.stop()
            stop_seconds = time.monotonic() - t0
        finally:
            cluster.stop()
        shutil.rmtree(work / "cluster", ignore_errors=True)
    result["node"] = {
        "containerd_ready_seconds": status["containerd_ready"],
        "ready_seconds_after_kubelet_start": node.ready_seconds,
        "start_real_node_seconds": round(start_seconds, 2),
        "stop_seconds": round(stop_seconds, 2),
    }
    result["pods"] = {"count": len(pods), "create_to_succeeded_seconds": pods,
                      "median_seconds": round(statistics.median(pods), 3)}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    mib = {k: round(v / 2**20, 1) for k, v in result["binary_bytes"].items()}
    print(f"build: cold {build['cold_seconds']} s {build['cold_components_seconds']}, "
          f"warm {build['warm_seconds']} s")
    print(f"sizes (MiB): {mib}")
    print(f"containerd ready {status['containerd_ready']} s; Node Ready "
          f"{node.ready_seconds} s after kubelet start; start_real_node "
          f"{start_seconds:.2f} s; stop {stop_seconds:.2f} s")
    print(f"pod create -> Succeeded: median {result['pods']['median_seconds']} s of {pods}")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
