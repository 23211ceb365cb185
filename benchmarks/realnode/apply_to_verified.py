"""Apply -> verified on the real node beside the stand-in's, and a burst (issue 16), in figures.

    QB_K8S_BIN_DIR=... .venv/bin/python benchmarks/realnode/apply_to_verified.py
                                                      # about 15-25 min on 2 cores, needs root

Real node: a control plane of its own and a real node (kubelet, containerd) as
``tests/operator/test_real_install.py`` installs it: the project's image (``qbackbone dev
image``, cached by content) imported into containerd, then ``helm install qbackbone
charts/qbackbone -n qbackbone-system --create-namespace -f charts/qbackbone/values-dev.yaml
--wait``. Figures: image import seconds, helm install -> operator pod Ready (polled every
0.2 s while helm runs) and helm's own return, then the three QPUNodes Ready and advertised.

Apply -> verified: ``kubectl apply`` of one QuantumJob at a time in ``default``, ``--repeats``
times each of (a) SingleQPU, a 4-qubit circuit with 3 observables on dev-ideal-a, 2000 shots,
and (b) Distributed, an 8-qubit GHZ with 3 observables cut with LOCC wire cuts only (policy
``locc-only``: ``cutting.allowedCutKinds: [loccWire]``) over dev-ideal-a and dev-ideal-b,
2000 shots. Seconds from just before ``kubectl apply`` starts until a poll (every 0.1 s) sees
phase Succeeded with condition Verified True; a job that ends otherwise stops the run. Before
each apply the previous job's pods are awaited (not timed), so a job never waits for a QPU
held by its predecessor. Each sample also keeps the job's ``status.timings`` and its pods'
timestamps (whole seconds): apply -> first pod created, pod created -> container started,
container run, last container finished -> verified seen.

Burst: ``--burst`` SingleQPU jobs in one ``kubectl apply``, in turn on dev-ideal-a,
dev-ideal-b and with no selector (the policy then places them on dev-noisy, mitigated);
seconds until all are finished (Succeeded or Failed, polled every 0.5 s; ``--burst-timeout``,
what finished is reported on a timeout), jobs/min, how many verified, p50/p95 of per-job
apply -> finished.

Stand-in: the same apply -> verified on a control plane of its own with the node agent
(pods as local processes of this venv, each given its service account's token) and the chart
rendered with the same values-dev.yaml and applied, as ``tests/chart/installed.py`` does
(here the agent's node offers the three QPUs of values-dev.yaml so the manifests are the
same).

Refuses to start while a kubelet runs on the machine (one real node per machine). Stops the
node, the agent and both control planes even on errors. Writes
``benchmarks/results/realnode-apply.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import yaml
from kubernetes import client, config

from qbackbone.dev import ClusterInfo, LocalCluster, find_bin_dir
from qbackbone.dev.agentproc import start_node_agent
from qbackbone.dev.procs import free_port, stop
from qbackbone.dev.realnode import (
    QPU_HOST_LABEL,
    RealNode,
    real_node_unavailable,
    start_real_node,
    stop_real_node,
)
from qbackbone.dev.realnode_host import host_ip, running_kubelets

REPO = Path(__file__).resolve().parents[2]
RESULT = REPO / "benchmarks" / "results" / "realnode-apply.json"
CHART = REPO / "charts" / "qbackbone"
VALUES_DEV = CHART / "values-dev.yaml"
RELEASE, NS, JOBS = "qbackbone", "qbackbone-system", "default"
NODE = "qb-bench-node"
G, V = "qbackbone.io", "v1alpha1"
QPUS = ("dev-ideal-a", "dev-ideal-b", "dev-noisy")  # values-dev.yaml's QPUNodes

BELL4 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
h q[0];
cx q[0], q[1];
ry(0.6) q[2];
cx q[2], q[3];
"""
BELL4_OBSERVABLES = ["ZZII", "IIZZ", "XXII"]
GHZ8 = "\n".join(["OPENQASM 2.0;", 'include "qelib1.inc";', "qreg q[8];", "h q[0];",
                  *[f"cx q[{i}], q[{i + 1}];" for i in range(7)]]) + "\n"
GHZ8_OBSERVABLES = ["ZZZZZZZZ", "IIIIIIZZ", "XXXXXXXX"]
LOCC_ONLY = {"apiVersion": f"{G}/{V}", "kind": "InvocationPolicy",
             "metadata": {"name": "locc-only"},
             "spec": {"cutting": {"allowedCutKinds": ["loccWire"]}}}


def single_job(name: str, qpus: list[str] | None = None) -> dict[str, Any]:
    """(a) SingleQPU: 4 qubits, 3 observables, 2000 shots; ``qpus`` None: no selector."""
    execution: dict[str, Any] = {"mode": "SingleQPU"}
    if qpus is not None:
        execution["qpuSelector"] = {"names": qpus}
    return {"apiVersion": f"{G}/{V}", "kind": "QuantumJob", "metadata": {"name": name},
            "spec": {"circuit": {"qasm": BELL4, "observables": BELL4_OBSERVABLES},
                     "shots": 2000, "execution": execution}}


def cut_job(name: str) -> dict[str, Any]:
    """(b) Distributed: 8-qubit GHZ over two 6-qubit QPUs, LOCC wire cuts only."""
    return {"apiVersion": f"{G}/{V}", "kind": "QuantumJob", "metadata": {"name": name},
            "spec": {"circuit": {"qasm": GHZ8, "observables": GHZ8_OBSERVABLES},
                     "shots": 2000, "policyRef": {"name": "locc-only"},
                     "execution": {"mode": "Distributed",
                                   "qpuSelector": {"names": ["dev-ideal-a", "dev-ideal-b"]}}}}


def burst_selector(i: int) -> list[str] | None:
    return [["dev-ideal-a"], ["dev-ideal-b"], None][i % 3]


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def verified(obj: dict[str, Any]) -> bool:
    cond = condition(obj, "Verified")
    return (obj.get("status") or {}).get("phase") == "Succeeded" and cond is not None \
        and cond.get("status") == "True"


def seconds_between(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else round((b - a).total_seconds(), 3)


def summary(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {"n": len(values), "median": round(statistics.median(values), 3),
            "min": round(min(values), 3), "max": round(max(values), 3)}


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return round(ordered[int(rank) - 1], 3)


@dataclass
class Target:
    """A cluster with the chart installed: where jobs are applied and watched."""

    label: str
    info: ClusterInfo
    api: client.ApiClient
    commands: list[str] = field(default_factory=list)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    def kubectl(self, *args: str, stdin: str | None = None, record: str | bool = False,
                timeout: float = 120) -> str:
        """Run kubectl; ``record``: keep the command line (a string: what stdin held)."""
        argv = [str(Path(self.info.bin_dir) / "kubectl"), "--kubeconfig", self.info.kubeconfig,
                *args]
        if record:
            line = shlex.join(["kubectl", *args])
            self.commands.append(f"{line}  # stdin: {record}" if isinstance(record, str)
                                 else line)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              input=stdin, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr}")
        return done.stdout

    def job(self, name: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.custom.get_namespaced_custom_object(
            G, V, JOBS, "quantumjobs", name))

    def pods(self, job: str) -> list[Any]:
        return list(self.core.list_namespaced_pod(
            JOBS, label_selector=f"qbackbone.io/job={job}").items)


def wait_until(check: Callable[[], Any], timeout: float, interval: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not after {timeout:.0f} s")
        time.sleep(interval)


def pods_done(target: Target, job: str, timeout: float = 120) -> list[Any]:
    """The job's pods once none is Pending or Running (a result is written a moment before
    its worker exits)."""
    def done() -> list[Any] | None:
        pods = target.pods(job)
        return pods if all(p.status.phase in ("Succeeded", "Failed") for p in pods) else None

    try:
        found: list[Any] = wait_until(done, timeout, 0.2, f"pods of {job} done")
    except TimeoutError:
        found = target.pods(job)
    return found


def pod_times(pods: list[Any]) -> list[dict[str, Any]]:
    """Timestamps (whole seconds, the API's resolution) of each pod's life."""
    rows = []
    for pod in pods:
        conds = {c.type: c.last_transition_time for c in pod.status.conditions or []}
        started = finished = None
        for status in pod.status.container_statuses or []:
            state = status.state
            if state.terminated is not None:
                started, finished = state.terminated.started_at, state.terminated.finished_at
            elif state.running is not None:
                started = state.running.started_at
        rows.append({"name": pod.metadata.name, "qpu": pod.metadata.labels.get("qbackbone.io/qpu"),
                     "phase": pod.status.phase, "created": pod.metadata.creation_timestamp,
                     "scheduled": conds.get("PodScheduled"), "started": started,
                     "finished": finished})
    return sorted(rows, key=lambda r: (r["created"], r["name"]))


def breakdown(applied_wall: float, done_wall: float, pods: list[Any]) -> dict[str, Any]:
    """Where an apply -> finished went, from pod timestamps (1 s resolution)."""
    rows = pod_times(pods)
    applied = datetime.fromtimestamp(applied_wall).astimezone()
    done = datetime.fromtimestamp(done_wall).astimezone()
    finishes = [r["finished"] for r in rows if r["finished"] is not None]
    return {
        "pods": len(rows),
        "apply_to_first_pod_created": seconds_between(applied, rows[0]["created"])
        if rows else None,
        "pod_created_to_scheduled": [seconds_between(r["created"], r["scheduled"])
                                     for r in rows],
        "pod_created_to_container_started": [seconds_between(r["created"], r["started"])
                                             for r in rows],
        "container_run": [seconds_between(r["started"], r["finished"]) for r in rows],
        "last_container_finished_to_seen_done": seconds_between(max(finishes), done)
        if finishes else None,
        "qpus": [r["qpu"] for r in rows],
    }


def apply_to_verified(target: Target, make: Callable[[str], dict[str, Any]], prefix: str,
                      repeats: int, timeout: float = 600) -> dict[str, Any]:
    """``repeats`` times: kubectl apply of one job, poll every 0.1 s until Succeeded and
    Verified True (anything else raises)."""
    samples: list[dict[str, Any]] = []
    previous: str | None = None
    for i in range(repeats):
        if previous is not None:
            pods_done(target, previous)
        name = f"{prefix}-{i}"
        manifest = yaml.safe_dump(make(name), sort_keys=False)
        wall, t0 = time.time(), time.monotonic()
        target.kubectl("apply", "-n", JOBS, "-f", "-", stdin=manifest,
                       record=f"QuantumJob {prefix}-0..{repeats - 1}, one per apply "
                              f"(jobs.{'single' if prefix == 'single' else 'distributed'})"
                       if i == 0 else False)
        while True:
            found = target.job(name)
            phase = (found.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):
                break
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"{target.label}: job {name} still {phase} after "
                                   f"{timeout:.0f} s")
            time.sleep(0.1)
        seconds = time.monotonic() - t0
        done_wall = time.time()
        if not verified(found):
            status = found.get("status") or {}
            raise RuntimeError(f"{target.label}: job {name} did not verify: phase {phase}, "
                               f"conditions {json.dumps(status.get('conditions'), indent=1)}, "
                               f"verification {json.dumps(status.get('verification'))}")
        status = found["status"]
        sample = {"name": name, "seconds": round(seconds, 3),
                  "timings": status.get("timings"),
                  "path": (status.get("result") or {}).get("path"),
                  "qpus": (status.get("result") or {}).get("qpus"),
                  "cut_kinds": (status.get("plan") or {}).get("cutKinds"),
                  "breakdown": breakdown(wall, done_wall, pods_done(target, name))}
        samples.append(sample)
        print(f"  {target.label} {name}: {seconds:.2f} s ({sample['path']} on "
              f"{sample['qpus']}, {sample['breakdown']['pods']} pods)", file=sys.stderr)
        previous = name
    return {"samples": samples, **summary([s["seconds"] for s in samples])}


def burst(target: Target, count: int, timeout: float) -> dict[str, Any]:
    """``count`` SingleQPU jobs in one kubectl apply; until all are finished or ``timeout``."""
    names = [f"burst-{i:02d}" for i in range(count)]
    manifest = yaml.safe_dump_all([single_job(n, burst_selector(i))
                                   for i, n in enumerate(names)], sort_keys=False)
    cpu0 = cpu_times()
    wall, t0 = time.time(), time.monotonic()
    target.kubectl("apply", "-n", JOBS, "-f", "-", stdin=manifest,
                   record=f"{count} QuantumJobs burst-00..{count - 1:02d} (jobs.single, "
                          "selectors in turn jobs.burst_selectors)")
    applied_seconds = time.monotonic() - t0
    finished: dict[str, float] = {}
    objs: dict[str, dict[str, Any]] = {}
    timed_out = False
    last_report = 0.0
    while len(finished) < count:
        listed = cast(dict[str, Any], target.custom.list_namespaced_custom_object(
            G, V, JOBS, "quantumjobs"))
        now = time.monotonic() - t0
        for obj in listed["items"]:
            name = obj["metadata"]["name"]
            if name not in names:
                continue
            objs[name] = obj
            if name not in finished and (obj.get("status") or {}).get("phase") in (
                    "Succeeded", "Failed"):
                finished[name] = now
        if now - last_report >= 30:
            print(f"  burst: {len(finished)}/{count} finished after {now:.0f} s",
                  file=sys.stderr)
            last_report = now
        if len(finished) == count:
            break
        if now > timeout:
            timed_out = True
            break
        time.sleep(0.5)
    total = time.monotonic() - t0
    cpu1 = cpu_times()
    per_job = sorted(finished.values())
    phases: dict[str, int] = {}
    for name in names:
        phase = (objs.get(name, {}).get("status") or {}).get("phase") or "None"
        phases[phase] = phases.get(phase, 0) + 1
    qpus: dict[str, int] = {}
    by_selector: dict[str, list[float]] = {}
    failed = []
    for i, name in enumerate(names):
        obj = objs.get(name, {})
        result = (obj.get("status") or {}).get("result") or {}
        for q in result.get("qpus") or []:
            qpus[q] = qpus.get(q, 0) + 1
        if name in finished:
            key = ",".join(burst_selector(i) or ["none"])
            by_selector.setdefault(key, []).append(finished[name])
        if (obj.get("status") or {}).get("phase") == "Failed":
            cond = condition(obj, "Failed") or {}
            failed.append({"name": name, "reason": cond.get("reason"),
                           "message": str(cond.get("message"))[:300]})
    not_verified = [{"name": n, "phase": (objs.get(n, {}).get("status") or {}).get("phase"),
                     "verified": condition(objs.get(n, {}), "Verified")}
                    for n in names if n in finished and not verified(objs[n])]
    # Where the time went, from pod timestamps (whole seconds), once the pods are done.
    for name in finished:
        pods_done(target, name, timeout=60)
    pods = [p for p in target.core.list_namespaced_pod(JOBS).items
            if p.metadata and (p.metadata.labels or {}).get("qbackbone.io/job", "") in names]
    rows = pod_times(pods)
    applied = datetime.fromtimestamp(wall).astimezone()
    starts = [v for r in rows if (v := seconds_between(r["created"], r["started"])) is not None]
    runs = [v for r in rows if (v := seconds_between(r["started"], r["finished"])) is not None]
    created = [v for r in rows if (v := seconds_between(applied, r["created"])) is not None]
    scheduled = [v for r in rows if (v := seconds_between(r["created"], r["scheduled"]))
                 is not None]
    sandbox = [v for r in rows if (v := seconds_between(r["scheduled"], r["started"]))
               is not None]
    run_by_qpu: dict[str, list[float]] = {}
    idle_by_qpu: dict[str, float] = {}
    last_finish: dict[str, Any] = {}
    for r in sorted(rows, key=lambda r: (r["started"] is None, r["started"] or 0)):
        v = seconds_between(r["started"], r["finished"])
        if v is not None:
            q = str(r["qpu"])
            run_by_qpu.setdefault(q, []).append(v)
            gap = seconds_between(last_finish.get(q), r["started"])
            idle_by_qpu[q] = idle_by_qpu.get(q, 0.0) + max(0.0, gap or 0.0)
            last_finish[q] = r["finished"]
    timings = [((objs.get(n, {}).get("status") or {}).get("timings") or {}) for n in names]
    return {
        "jobs": count, "apply_seconds": round(applied_seconds, 3),
        "total_seconds": round(total, 3), "timed_out": timed_out,
        "finished": len(finished),
        "verified": sum(1 for n in names if n in finished and verified(objs[n])),
        "jobs_per_min": round(len(finished) / total * 60, 2) if total else None,
        "apply_to_finished_p50": percentile(per_job, 50),
        "apply_to_finished_p95": percentile(per_job, 95),
        "apply_to_finished_max": round(max(per_job), 3) if per_job else None,
        "apply_to_finished_by_selector": {k: summary(v) for k, v in by_selector.items()},
        "phases": phases, "qpus_used": qpus, "failed": failed, "not_verified": not_verified,
        "pods": {"count": len(rows),
                 "apply_to_pod_created": summary(created),
                 "pod_created_to_container_started": summary(starts),
                 "pod_created_to_scheduled": summary(scheduled),
                 "pod_scheduled_to_container_started": summary(sandbox),
                 "container_run": summary(runs),
                 "container_run_by_qpu": {k: summary(v) for k, v in run_by_qpu.items()},
                 "busy_container_seconds_by_qpu": {k: round(sum(v), 1)
                                                   for k, v in run_by_qpu.items()},
                 "idle_seconds_between_pods_by_qpu": {k: round(v, 1)
                                                      for k, v in idle_by_qpu.items()}},
        "cpu_busy_fraction": cpu_busy(cpu0, cpu1),
        "pod_timeline": [{"qpu": r["qpu"], **{k: seconds_between(applied, r[k]) for k in (
            "created", "scheduled", "started", "finished")}} for r in rows],
        "status_timings_median": {
            k: round(statistics.median(vals), 3) for k in (
                "decideSeconds", "executeSeconds", "reconstructSeconds", "verifySeconds",
                "totalSeconds")
            if (vals := [t[k] for t in timings if t.get(k) is not None])},
    }


def cpu_times() -> list[int]:
    """The machine's aggregate CPU jiffies (/proc/stat: user nice system idle iowait ...)."""
    return [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


def cpu_busy(before: list[int], after: list[int]) -> float | None:
    delta = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(delta[:8])  # guest time is already counted in user
    return round(1 - (delta[3] + delta[4]) / total, 3) if total else None


def qpus_ready(target: Target, advertised_on: str | None) -> bool:
    for name in QPUS:
        obj = cast(dict[str, Any], target.custom.get_cluster_custom_object(
            G, V, "qpunodes", name))
        cond = condition(obj, "Ready")
        if cond is None or cond.get("status") != "True":
            return False
    if advertised_on is not None:
        status = target.core.read_node(advertised_on).status
        allocatable = (status.allocatable if status else None) or {}
        return all(allocatable.get(f"qpu.qbackbone.io/{q}") == "1" for q in QPUS)
    return True


def measure(target: Target, repeats: int, out: dict[str, Any]) -> None:
    target.kubectl("apply", "-n", JOBS, "-f", "-", stdin=yaml.safe_dump(LOCC_ONLY),
                   record="InvocationPolicy locc-only (jobs.locc_policy)")
    out["single"] = apply_to_verified(target, lambda n: single_job(n, ["dev-ideal-a"]),
                                      "single", repeats)
    out["distributed"] = apply_to_verified(target, cut_job, "cut", repeats)


def operator_ready(core: client.CoreV1Api) -> bool:
    pods = core.list_namespaced_pod(
        NS, label_selector="app.kubernetes.io/component=operator").items
    for pod in pods:
        conds = {c.type: c.status for c in (pod.status and pod.status.conditions) or []}
        if conds.get("Ready") == "True":
            return True
    return False


def real_node(bins: Path, work: Path, args: argparse.Namespace, out: dict[str, Any]) -> None:
    """Fill ``out`` with the real node's figures (as far as they got when something fails)."""
    from qbackbone.dev.image import build, plan

    t0 = time.monotonic()
    record = build(plan())
    out["image"] = {"kind": record["build"]["kind"], "build_seconds": record["build"]["seconds"],
                    "archive_bytes": record["archive_bytes"], "names": record["names"],
                    "wall_seconds": round(time.monotonic() - t0, 2)}
    print(f"image {record['build']['kind']} in {record['build']['seconds']} s", file=sys.stderr)
    local = LocalCluster(work / "real", bins, tied=True, node_ip=host_ip())
    t0 = time.monotonic()
    info = local.start()
    out["control_plane_start_seconds"] = round(time.monotonic() - t0, 2)
    node: RealNode | None = None
    api: client.ApiClient | None = None
    try:
        t0 = time.monotonic()
        node = start_real_node(info, name=NODE, tied=True, timeout=90,
                               labels={QPU_HOST_LABEL: "true"})
        out["start_real_node_seconds"] = round(time.monotonic() - t0, 2)
        t0 = time.monotonic()
        node.import_image(Path(record["archive"]))
        out["image_import_seconds"] = round(time.monotonic() - t0, 2)
        print(f"image imported in {out['image_import_seconds']} s", file=sys.stderr)
        api = config.new_client_from_config(config_file=info.kubeconfig)
        target = Target("real", info, api)
        helm_args = ["install", RELEASE, "charts/qbackbone", "-n", NS, "--create-namespace",
                     "-f", "charts/qbackbone/values-dev.yaml", "--wait", "--timeout", "10m"]
        target.commands.append(shlex.join(["helm", *helm_args]))
        ready_at: list[float] = []
        stop_polling = threading.Event()
        poll_api = config.new_client_from_config(config_file=info.kubeconfig)

        def poll_ready() -> None:
            core = client.CoreV1Api(poll_api)
            while not stop_polling.is_set():
                try:
                    if operator_ready(core):
                        ready_at.append(time.monotonic())
                        return
                except Exception:  # a poll that fails is retried
                    pass
                time.sleep(0.2)

        poller = threading.Thread(target=poll_ready, daemon=True)
        t0 = time.monotonic()
        poller.start()
        done = subprocess.run([str(bins / "helm"), "--kubeconfig", info.kubeconfig, *helm_args],
                              capture_output=True, text=True, timeout=900, check=False,
                              cwd=REPO)
        helm_seconds = time.monotonic() - t0
        if done.returncode != 0:
            raise RuntimeError(f"helm install: {done.stderr}\n{done.stdout}")
        wait_until(lambda: ready_at, 60, 0.1, "operator pod Ready")
        stop_polling.set()
        poller.join()
        poll_api.close()
        out["helm_install_wait_seconds"] = round(helm_seconds, 2)
        out["helm_install_to_operator_ready_seconds"] = round(ready_at[0] - t0, 2)
        t0 = time.monotonic()
        wait_until(lambda: qpus_ready(target, NODE), 120, 0.2,
                   "QPUNodes Ready and advertised by the node")
        out["qpunodes_ready_after_helm_seconds"] = round(time.monotonic() - t0, 2)
        print(f"helm install --wait {helm_seconds:.1f} s, operator Ready after "
              f"{out['helm_install_to_operator_ready_seconds']} s; QPUs ready "
              f"{out['qpunodes_ready_after_helm_seconds']} s later", file=sys.stderr)
        out["commands"] = target.commands
        measure(target, args.repeats, out)
        if args.burst:
            out["burst"] = burst(target, args.burst, args.burst_timeout)
    finally:
        if api is not None:
            api.close()
        if node is not None:
            t0 = time.monotonic()
            node.stop()
            out["node_stop_seconds"] = round(time.monotonic() - t0, 2)
        problems = stop_real_node(info)
        if problems:
            out["clean_up_problems"] = problems
        local.stop()


def helm_template(bins: Path, *args: str) -> str:
    done = subprocess.run([str(bins / "helm"), "template", RELEASE, str(CHART), "--namespace",
                           NS, *args], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"helm template: {done.stderr}")
    return done.stdout


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def stand_in_install(bins: Path, state: Path, out: dict[str, Any]) -> Iterator[Target]:
    """tests/chart/installed.py's install, with values-dev.yaml and its three QPUs on the
    agent's node: the rendered chart (CRDs first) applied; pods as local processes with
    their service account's token."""
    local = LocalCluster(state, bins, tied=True)
    t0 = time.monotonic()
    info = local.start()
    out["control_plane_start_seconds"] = round(time.monotonic() - t0, 2)
    api = config.new_client_from_config(config_file=info.kubeconfig)
    venv_bin = Path(sys.executable).parent
    port = free_port()
    agent = None
    try:
        env = {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"}
        agent = start_node_agent(info, [f"qpu-host:{','.join(QPUS)}"], tied=True,
                                 service_account_tokens=True, env=env)
        values = ["-f", str(VALUES_DEV), "--set", f"operator.healthPort={port}",
                  "--set", f"metrics.port={free_port()}",
                  "--set", f"worker.command={venv_bin / 'qbackbone'}"]
        text = helm_template(bins, "--include-crds", *values)
        docs = [d for d in yaml.safe_load_all(text) if d]
        crds = [d for d in docs if d["kind"] == "CustomResourceDefinition"]
        rest = [d for d in docs if d["kind"] != "CustomResourceDefinition"]
        target = Target("stand-in", info, api)
        target.commands.append(shlex.join(
            ["helm", "template", RELEASE, "charts/qbackbone", "--namespace", NS,
             "--include-crds", *[v.replace(str(REPO) + "/", "") for v in values]]))
        t0 = time.monotonic()
        target.kubectl("create", "namespace", NS, record=True)
        target.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(crds),
                       record="the CRDs of the helm template output")
        target.kubectl("wait", "--for=condition=Established", "crd", "--all",
                       "--timeout=60s", record=True)
        target.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(rest),
                       record="the rest of the helm template output")
        wait_until(lambda: healthy(f"http://127.0.0.1:{port}/healthz"), 120, 0.2,
                   "stand-in operator /healthz")
        out["apply_to_operator_healthy_seconds"] = round(time.monotonic() - t0, 2)
        t0 = time.monotonic()
        wait_until(lambda: qpus_ready(target, None), 120, 0.2, "QPUNodes Ready")
        out["qpunodes_ready_after_healthy_seconds"] = round(time.monotonic() - t0, 2)
        yield target
    finally:
        if agent is not None:
            stop(agent[1], agent[0])
        api.close()
        local.stop()


def stand_in(bins: Path, work: Path, args: argparse.Namespace, out: dict[str, Any]) -> None:
    with stand_in_install(bins, work / "stand-in", out) as target:
        out["commands"] = target.commands
        measure(target, args.repeats, out)
        if args.stand_in_burst:
            out["burst"] = burst(target, args.burst, args.burst_timeout)


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip()
                  for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), None)
    mem = next((int(line.split()[1]) // 1024 for line in
                Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), None)
    return {"cpus": os.cpu_count(), "cpu_model": model, "mem_mib": mem,
            "kernel": platform.release(), "python": platform.python_version()}


def git_head() -> dict[str, Any]:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], capture_output=True, text=True, cwd=REPO,
                              check=False).stdout.strip()

    return {"head": git("rev-parse", "HEAD"),
            "dirty_files": len(git("status", "--porcelain", "--untracked-files=no")
                               .splitlines())}


def fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def table(result: dict[str, Any]) -> str:
    lines = [f"{'apply -> verified (s)':<28}{'median':>8}{'min':>8}{'max':>8}  n"]
    for where in ("real_node", "stand_in"):
        part = result.get(where) or {}
        for kind in ("single", "distributed"):
            if kind in part:
                s = part[kind]
                lines.append(f"{where + ' ' + kind:<28}{fmt(s['median']):>8}{fmt(s['min']):>8}"
                             f"{fmt(s['max']):>8}  {s['n']}")
    real = result.get("real_node") or {}
    if real:
        lines.append(f"real node: image import {fmt(real.get('image_import_seconds'))} s, "
                     f"helm install -> operator Ready "
                     f"{fmt(real.get('helm_install_to_operator_ready_seconds'))} s "
                     f"(helm --wait returned {fmt(real.get('helm_install_wait_seconds'))} s)")
    for where in ("real_node", "stand_in"):
        b = (result.get(where) or {}).get("burst")
        if b:
            lines.append(
                f"{where} burst of {b['jobs']}: {b['finished']} finished ({b['verified']} "
                f"verified) in {fmt(b['total_seconds'])} s"
                f"{' (TIMED OUT)' if b['timed_out'] else ''}"
                f", {fmt(b['jobs_per_min'])} jobs/min, apply -> finished p50 "
                f"{fmt(b['apply_to_finished_p50'])} s p95 {fmt(b['apply_to_finished_p95'])} s")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--burst", type=int, default=50, help="0: no burst")
    parser.add_argument("--burst-timeout", type=float, default=900)
    parser.add_argument("--stand-in-burst", action="store_true",
                        help="also run the burst on the stand-in")
    parser.add_argument("--skip", choices=("real", "stand-in"), action="append", default=[])
    parser.add_argument("--output", type=Path, default=RESULT)
    args = parser.parse_args()
    others = running_kubelets()
    if others or subprocess.run(["pgrep", "-x", "kubelet"], capture_output=True,
                                check=False).returncode == 0:
        print("error: a kubelet already runs on this machine (another real-node test or "
              "benchmark?): one real node per machine; try again when it has stopped",
              file=sys.stderr)
        return 1
    if "real" not in args.skip:
        reason = real_node_unavailable()
        if reason:
            print(f"error: no real node on this host: {reason}", file=sys.stderr)
            return 1
    bins = find_bin_dir()
    argv = ["python", "benchmarks/realnode/apply_to_verified.py", *sys.argv[1:]]
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": shlex.join(argv), "machine": machine(), "git": git_head(),
        "k8s_bin_dir": str(bins),
        "jobs": {"single": single_job("single-N", ["dev-ideal-a"]),
                 "distributed": cut_job("cut-N"), "locc_policy": LOCC_ONLY,
                 "burst_selectors": ["dev-ideal-a", "dev-ideal-b", "none (placed by the "
                                     "policy: dev-noisy)"]},
        "notes": {
            "apply_to_verified": "seconds from just before `kubectl apply` (one job) until a "
                                 "poll every 0.1 s sees phase Succeeded and Verified True; "
                                 "the previous job's pods are awaited first (not timed)",
            "breakdown": "pod timestamps have whole-second resolution",
            "burst": "one kubectl apply of all jobs; finished = Succeeded or Failed seen by a "
                     "poll every 0.5 s",
        },
    }
    started = time.monotonic()
    errors = []
    with tempfile.TemporaryDirectory(prefix="qb-realnode-apply-") as tmp:
        work = Path(tmp)
        phases = [("real_node", real_node), ("stand_in", stand_in)]
        for key, run in phases:
            if key.replace("_node", "").replace("_", "-") in args.skip:
                continue
            result[key] = {}
            try:
                run(bins, work, args, result[key])
            except Exception as exc:
                result[key]["error"] = f"{type(exc).__name__}: {exc}"
                errors.append(f"{key}: {type(exc).__name__}: {exc}")
                traceback.print_exc()
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    output = args.output if not errors else args.output.with_suffix(".failed.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(table(result))
    print(f"wrote {output}")
    if errors:
        print("FAILED:\n" + "\n".join(errors), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
