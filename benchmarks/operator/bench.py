"""Operator benchmark (issue 8): apply-to-verified-result latency, a burst of jobs, API requests,
and the joint plan behind admission (plans made, their time, how long jobs waited).

    .venv/bin/python benchmarks/operator/bench.py --quick   # 3 latency reps, 10 jobs (~2 min)
    .venv/bin/python benchmarks/operator/bench.py           # 5 latency reps, 50 jobs

Brings up the local control plane (``qbackbone.dev``; binaries from ``$QB_K8S_BIN_DIR`` or
``hack/build-k8s.sh``) with an audit log, a node agent with two ideal aer QPUs, ``crds/`` and
``qbackbone operator`` as a subprocess that authenticates with its own static token (user
``qbackbone-operator``), so the audit log tells its requests from the workers' and this
script's (both use the admin certificate). Everything is torn down at the end.

Writes benchmarks/results/operator-bench.json (``-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from kubernetes import client, config, watch
from prometheus_client.parser import text_string_to_metric_families

from qbackbone.dev import ClusterInfo, LocalCluster
from qbackbone.dev.agentproc import start_node_agent
from qbackbone.dev.crds import install_crds
from qbackbone.dev.procs import free_port
from qbackbone.dev.procs import stop as stop_process
from qbackbone.dev.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
G, V = "qbackbone.io", "v1alpha1"
OPERATOR_USER = "qbackbone-operator"
QPUS = ("bq-a", "bq-b")
NAMESPACE = "default"
OVERHEAD_TARGET = 2.0
# The deadline burst: QPUs modelled at 3 s per fragment (a fragment pod really takes 2-3 s
# here with two sharing 2 cores); half the jobs must finish within 25 s of submission: in
# arrival order the later ones would not (about 36 s in the model), first they do (18 s).
DEADLINE_BURST_SETUP = 3.0
DEADLINE_BURST_DEADLINE = 25.0

AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1", "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


def bin_dir() -> Path:
    env = os.environ.get("QB_K8S_BIN_DIR")
    if env:
        return Path(env)
    out = subprocess.run([str(ROOT / "hack" / "build-k8s.sh")], check=True,
                         capture_output=True, text=True).stdout
    return Path(out.strip().splitlines()[-1])


def operator_kubeconfig(path: Path, info: ClusterInfo, token: str) -> Path:
    """The admin kubeconfig with the user swapped for the operator's static token."""
    admin = yaml.safe_load(Path(info.kubeconfig).read_text())
    admin["users"] = [{"name": OPERATOR_USER, "user": {"token": token}}]
    for ctx in admin["contexts"]:
        ctx["context"]["user"] = OPERATOR_USER
    path.write_text(yaml.safe_dump(admin))
    path.chmod(0o600)
    return path


# --- circuits --------------------------------------------------------------------------------

def layered_qasm(n: int, rng: np.random.Generator, layers: int = 2) -> str:
    lines = ['OPENQASM 2.0;', 'include "qelib1.inc";', f"qreg q[{n}];"]
    for _ in range(layers):
        lines += [f"ry({rng.uniform(0, np.pi):.4f}) q[{i}];" for i in range(n)]
        lines += [f"cx q[{i}], q[{i + 1}];" for i in range(n - 1)]
    return "\n".join(lines) + "\n"


def observables(n: int) -> list[str]:
    zz = ["I" * i + "ZZ" + "I" * (n - i - 2) for i in range(0, n - 1, 2)]
    return ["Z" * n, *zz]


def quantum_job(name: str, qasm: str, obs: list[str], shots: int) -> dict[str, Any]:
    return {"apiVersion": f"{G}/{V}", "kind": "QuantumJob",
            "metadata": {"name": name, "labels": {"bench": "operator"}},
            "spec": {"circuit": {"qasm": qasm, "observables": obs}, "shots": shots,
                     "execution": {"mode": "SingleQPU"}}}


# --- the environment -------------------------------------------------------------------------

class Bench:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.audit_log = state / "audit.log"
        self.token = secrets.token_hex(16)
        self.cluster: LocalCluster | None = None
        self.info: ClusterInfo | None = None
        self.agent: tuple[subprocess.Popen[bytes], Any] | None = None
        self.operator: subprocess.Popen[bytes] | None = None
        self.operator_log = state / "operator.log"
        self.metrics_url = ""
        self.api: client.ApiClient | None = None

    def up(self) -> dict[str, float]:
        t: dict[str, float] = {}
        t0 = time.monotonic()
        tokens = self.state / "tokens.csv"
        tokens.write_text(f"{self.token},{OPERATOR_USER},{OPERATOR_USER},system:masters\n")
        policy = self.state / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        self.cluster = LocalCluster(self.state / "cluster", bin_dir(), tied=True,
                                    apiserver_args=[f"--token-auth-file={tokens}",
                                                    f"--audit-policy-file={policy}",
                                                    f"--audit-log-path={self.audit_log}",
                                                    "--audit-log-maxsize=0"])
        info = self.info = self.cluster.start()
        t["cluster"] = time.monotonic() - t0
        api = self.api = config.new_client_from_config(config_file=info.kubeconfig)
        api.user_agent = "qbackbone-bench"
        install_crds(info, api, ROOT / "crds")
        t1 = time.monotonic()
        self.agent = start_node_agent(info, [f"bench-host:{','.join(QPUS)}"], tied=True,
                                      pod_env=[f"KUBECONFIG={info.kubeconfig}"])
        t["nodeAgent"] = time.monotonic() - t1
        t2 = time.monotonic()
        self.start_operator(operator_kubeconfig(self.state / "operator.kubeconfig", info,
                                                self.token))
        t["operator"] = time.monotonic() - t2
        custom = client.CustomObjectsApi(api)
        for qpu in QPUS:
            custom.create_cluster_custom_object(G, V, "qpunodes", {
                "apiVersion": f"{G}/{V}", "kind": "QPUNode", "metadata": {"name": qpu},
                "spec": {"backend": {"provider": "aer", "name": "aer_simulator"},
                         "qubits": 8}})
        for qpu in QPUS:
            wait_for(partial(qpu_ready, custom, qpu), 60, what=f"QPUNode {qpu} Ready")
        t["total"] = time.monotonic() - t0
        return {k: round(v, 2) for k, v in t.items()}

    def start_operator(self, kubeconfig: Path) -> None:
        url = f"http://127.0.0.1:{free_port()}/healthz"
        metrics_port = free_port()
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        qbackbone = str(Path(sys.executable).parent / "qbackbone")
        argv = [qbackbone, "operator", f"--kubeconfig={kubeconfig}", f"--liveness={url}",
                f"--worker-command={qbackbone}", "--seed=11", f"--metrics-port={metrics_port}"]
        with self.operator_log.open("ab") as out:
            self.operator = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                             start_new_session=True)
        proc = self.operator

        def healthy() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"operator exited: {self.operator_log.read_text()[-3000:]}")
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)

        wait_for(healthy, 60, interval=0.3, what="operator /healthz")

    def down(self) -> None:
        if self.operator is not None and self.operator.poll() is None:
            self.operator.send_signal(signal.SIGTERM)
            try:
                self.operator.wait(20)
            except subprocess.TimeoutExpired:
                self.operator.kill()
                self.operator.wait(5)
        if self.agent is not None:
            stop_process(self.agent[1], self.agent[0])
        if self.api is not None:
            self.api.close()
        if self.cluster is not None:
            self.cluster.stop()


def qpu_ready(custom: client.CustomObjectsApi, name: str) -> bool:
    """Ready for the QPUNode's current generation."""
    obj: Any = custom.get_cluster_custom_object(G, V, "qpunodes", name)
    return any(c["type"] == "Ready" and c["status"] == "True"
               and c.get("observedGeneration") == obj["metadata"]["generation"]
               for c in (obj.get("status") or {}).get("conditions") or [])


# --- measurements ----------------------------------------------------------------------------

def phase_of(obj: dict[str, Any]) -> str | None:
    return (obj.get("status") or {}).get("phase")


def wait_terminal(custom: client.CustomObjectsApi, names: list[str], timeout: float,
                  interval: float) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
    """Poll (one list per interval) until every job is Succeeded/Failed or ``timeout``;
    monotonic time each was first seen terminal, and the last objects."""
    seen: dict[str, float] = {}
    objs: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    want = set(names)
    while time.monotonic() < deadline:
        listed: Any = custom.list_namespaced_custom_object(G, V, NAMESPACE, "quantumjobs")
        now = time.monotonic()
        for obj in listed["items"]:
            name = obj["metadata"]["name"]
            if name in want:
                objs[name] = obj
                if name not in seen and phase_of(obj) in ("Succeeded", "Failed"):
                    seen[name] = now
        if want <= set(seen):
            break
        time.sleep(interval)
    return seen, objs


class PodWatch:
    """Every pod ADDED in the namespace, as (name, uid), from a watch in a thread."""

    def __init__(self, api: client.ApiClient) -> None:
        self.core = client.CoreV1Api(api)
        self.added: list[tuple[str, str]] = []
        self.stopped = False
        self.error: str | None = None
        self.watch = watch.Watch()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for event in self.watch.stream(self.core.list_namespaced_pod, NAMESPACE,
                                           timeout_seconds=3600):
                pod = event["object"]
                if event["type"] == "ADDED":
                    self.added.append((pod.metadata.name, pod.metadata.uid))
        except Exception as exc:  # the API server going away at teardown ends the stream
            if not self.stopped:
                self.error = repr(exc)

    def stop(self) -> None:
        self.stopped = True
        self.watch.stop()


def result_seconds(core: client.CoreV1Api, job: str) -> list[float]:
    found: Any = core.list_namespaced_config_map(
        NAMESPACE, label_selector=f"qbackbone.io/job={job},qbackbone.io/role=result")
    return [float((cm.data or {}).get("seconds") or 0.0) for cm in found.items]


def latency(bench: Bench, reps: int, rng: np.random.Generator) -> dict[str, Any]:
    assert bench.api is not None
    custom, core = client.CustomObjectsApi(bench.api), client.CoreV1Api(bench.api)
    runs: list[dict[str, Any]] = []
    for i in range(reps):
        name = f"lat8-{i}"
        body = quantum_job(name, layered_qasm(8, rng), observables(8), shots=4000)
        t0 = time.monotonic()
        wall0 = time.time()
        custom.create_namespaced_custom_object(G, V, NAMESPACE, "quantumjobs", body)
        seen, objs = wait_terminal(custom, [name], 180, 0.05)
        job = objs[name]
        status = job.get("status") or {}
        wall = seen.get(name, float("nan")) - t0
        timings = status.get("timings") or {}
        execute = float(timings.get("executeSeconds") or 0.0)
        runs.append({
            "job": name, "phase": status.get("phase"),
            "verified": (status.get("verification") or {}).get("passed"),
            "wallSeconds": round(wall, 3), "executeSeconds": execute,
            "workerSeconds": result_seconds(core, name),
            "overheadSeconds": round(wall - execute, 3),
            "fragments": len((status.get("plan") or {}).get("fragments") or []),
            "timings": timings, "window": [wall0, time.time()],
        })
        print(f"  {name}: {status.get('phase')} verified={runs[-1]['verified']} "
              f"wall {wall:.2f} s, execute {execute:.3f} s, "
              f"fragments {runs[-1]['fragments']}", flush=True)
        time.sleep(1.0)  # let the finished job's last requests land in its window
    walls = [r["wallSeconds"] for r in runs]
    over = [r["overheadSeconds"] for r in runs]
    return {
        "runs": runs,
        "wallMedian": round(statistics.median(walls), 3), "wallMax": round(max(walls), 3),
        "overheadMedian": round(statistics.median(over), 3),
        "overheadMax": round(max(over), 3),
        "overheadShareMedian": round(statistics.median(
            r["overheadSeconds"] / r["wallSeconds"] for r in runs), 3),
        "allVerified": all(r["phase"] == "Succeeded" and r["verified"] is True for r in runs),
        "overheadTargetMet": max(over) < OVERHEAD_TARGET,
    }


def joint_plans(bench: Bench) -> dict[str, Any]:
    """The operator's joint-plan histogram so far: plans made, mean and largest bucket."""
    with urllib.request.urlopen(bench.metrics_url, timeout=5) as response:
        text = response.read().decode()
    count = total = 0.0
    buckets: list[tuple[float, float]] = []
    for family in text_string_to_metric_families(text):
        if family.name != "qbackbone_joint_plan_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_count"):
                count = sample.value
            elif sample.name.endswith("_sum"):
                total = sample.value
            elif sample.name.endswith("_bucket"):
                buckets.append((float(sample.labels["le"]), sample.value))
    below = [le for le, n in sorted(buckets) if n >= count]
    return {"plans": int(count), "meanSeconds": round(total / count, 4) if count else None,
            "allWithinSeconds": below[0] if below else None}


def queue_waits(core: client.CoreV1Api, custom: client.CustomObjectsApi,
                names: list[str]) -> dict[str, Any]:
    """Per job, seconds from creation to its decision record and from the decision record to
    its admission record (the wait in the joint plan's queue); API timestamps, 1 s steps."""
    created = {}
    for name in names:
        job: Any = custom.get_namespaced_custom_object(G, V, NAMESPACE, "quantumjobs", name)
        created[name] = parse_ts(job["metadata"]["creationTimestamp"])

    def stamps(role: str) -> dict[str, float]:
        records: Any = core.list_namespaced_config_map(
            NAMESPACE, label_selector=f"qbackbone.io/role={role}")
        return {cm.metadata.labels["qbackbone.io/job"]: cm.metadata.creation_timestamp.timestamp()
                for cm in records.items if cm.metadata.labels["qbackbone.io/job"] in created}

    decided, admitted = stamps("decision"), stamps("admission")

    def summary(values: list[float]) -> dict[str, Any]:
        return {"median": statistics.median(values) if values else None,
                "max": max(values, default=None), "jobs": len(values)}

    return {"toDecision": summary([decided[n] - created[n] for n in decided]),
            "queued": summary([admitted[n] - decided[n] for n in admitted if n in decided])}


def deadline_burst(bench: Bench, n: int, rng: np.random.Generator,
                   setup: float, deadline: float) -> dict[str, Any]:
    """``n`` jobs at once on QPUs modelled at ``setup`` s per fragment (about what a fragment
    pod really takes here), every other one with a ``deadline``: in arrival order the later
    deadline jobs would wait behind the others past it; the joint plan puts them first."""
    assert bench.api is not None
    custom, core = client.CustomObjectsApi(bench.api), client.CoreV1Api(bench.api)
    for qpu in QPUS:
        custom.patch_cluster_custom_object(G, V, "qpunodes", qpu,
                                           {"spec": {"setupTime": f"{setup:g}s"}})
    for qpu in QPUS:
        wait_for(partial(qpu_ready, custom, qpu), 60, what=f"QPUNode {qpu} Ready again")
    names = [f"dl-{i:03d}" for i in range(n)]
    urgent = {nm for i, nm in enumerate(names) if i % 2 == 1}
    t0 = time.monotonic()
    for i, name in enumerate(names):
        q = 3 + i % 4
        body = quantum_job(name, layered_qasm(q, rng), observables(q), shots=1000)
        if name in urgent:
            body["spec"]["deadline"] = f"{deadline:g}s"
        custom.create_namespaced_custom_object(G, V, NAMESPACE, "quantumjobs", body)
    seen, objs = wait_terminal(custom, names, max(120.0, 10.0 * n), 0.25)

    def met(nm: str) -> bool:
        conds = ((objs.get(nm) or {}).get("status") or {}).get("conditions") or []
        return any(c["type"] == "DeadlineMet" and c["status"] == "True" for c in conds)

    admitted: Any = core.list_namespaced_config_map(
        NAMESPACE, label_selector="qbackbone.io/role=admission")
    order = [cm.metadata.labels["qbackbone.io/job"] for cm in sorted(
        admitted.items, key=lambda cm: (cm.metadata.creation_timestamp, cm.metadata.name))
        if cm.metadata.labels["qbackbone.io/job"] in set(names)]
    first_half = order[:len(urgent)]
    return {
        "jobs": n, "withDeadline": len(urgent), "deadlineSeconds": deadline,
        "modelSetupSeconds": setup,
        "phases": dict(Counter(phase_of(objs.get(nm, {})) or "None" for nm in names)),
        "deadlinesMet": sum(1 for nm in urgent if met(nm)),
        "urgentAmongFirstAdmitted": sum(1 for nm in first_half if nm in urgent),
        "totalSeconds": round(max(seen.values()) - t0, 2) if seen else None,
        "waitSeconds": queue_waits(core, custom, names),
    }


def burst(bench: Bench, n: int, rng: np.random.Generator, timeout: float) -> dict[str, Any]:
    assert bench.api is not None
    custom, core = client.CustomObjectsApi(bench.api), client.CoreV1Api(bench.api)
    pods = PodWatch(bench.api)
    time.sleep(0.5)
    names = [f"burst-{i:03d}" for i in range(n)]
    bodies = []
    for i, name in enumerate(names):
        q = 3 + i % 4
        bodies.append(quantum_job(name, layered_qasm(q, rng), observables(q), shots=1000))
    wall0 = time.time()
    t0 = time.monotonic()
    for body in bodies:
        custom.create_namespaced_custom_object(G, V, NAMESPACE, "quantumjobs", body)
    submitted = time.monotonic() - t0
    seen, objs = wait_terminal(custom, names, timeout, 0.25)
    total = (max(seen.values()) - t0) if seen else float("nan")
    time.sleep(1.0)
    pods.stop()
    wall1 = time.time()
    phases = Counter(phase_of(objs.get(nm, {})) or "None" for nm in names)
    # None lost: every job terminal. None run twice: one pod per planned fragment, each pod
    # created once (one uid per name), one result per fragment.
    uids: dict[str, set[str]] = defaultdict(set)
    for pod_name, uid in pods.added:
        uids[pod_name].add(uid)
    all_pods: Any = core.list_namespaced_pod(NAMESPACE, label_selector="qbackbone.io/job")
    by_job: dict[str, list[str]] = defaultdict(list)
    for pod in all_pods.items:
        by_job[pod.metadata.labels["qbackbone.io/job"]].append(pod.metadata.name)
    results: Any = core.list_namespaced_config_map(NAMESPACE,
                                                   label_selector="qbackbone.io/role=result")
    res_by_job: Counter[str] = Counter(cm.metadata.labels["qbackbone.io/job"]
                                       for cm in results.items)
    mismatches = []
    for nm in names:
        planned = len(((objs.get(nm) or {}).get("status") or {}).get("plan", {})
                      .get("fragments") or [])
        if phase_of(objs.get(nm, {})) == "Succeeded" and not (
                planned == len(by_job[nm]) == res_by_job[nm]):
            mismatches.append({"job": nm, "planned": planned, "pods": len(by_job[nm]),
                               "results": res_by_job[nm]})
    recreated = sorted(p for p, u in uids.items() if len(u) > 1)
    lost = sorted(set(names) - set(seen))
    verified = sum(1 for nm in names
                   if ((objs.get(nm) or {}).get("status") or {}).get("verification", {})
                   .get("passed") is True)
    failed_reasons = Counter(
        next((c.get("reason") for c in (objs[nm].get("status") or {}).get("conditions") or []
              if c["type"] == "Failed" and c["status"] == "True"), "?")
        for nm in names if phase_of(objs.get(nm, {})) == "Failed")
    fragments = sum(len(v) for k, v in by_job.items() if k in set(names))
    waits = queue_waits(core, custom, names)
    return {
        "jobs": n, "submitSeconds": round(submitted, 3), "totalSeconds": round(total, 2),
        "throughputJobsPerMinute": round(60 * len(seen) / total, 2) if seen else 0.0,
        "phases": dict(phases), "verified": verified, "failedReasons": dict(failed_reasons),
        "fragmentPods": fragments, "podsAddedWatched": len(pods.added),
        "lost": lost, "recreatedPods": recreated, "fragmentMismatches": mismatches,
        "podWatchError": pods.error,
        "noneLost": not lost,
        "noneRunTwice": not recreated and not mismatches and pods.error is None,
        "finishSecondsSorted": sorted(round(v - t0, 2) for v in seen.values()),
        "waitSeconds": waits,
        "window": [wall0, wall1],
    }


# --- the audit log ---------------------------------------------------------------------------

def parse_ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def audit_events(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text().splitlines():
        ev = json.loads(line)
        # One event per request: ResponseComplete, or ResponseStarted for watches (their
        # completion comes only when the watch ends).
        if ev.get("stage") == "ResponseStarted" and ev.get("verb") != "watch":
            continue
        if ev.get("stage") == "ResponseComplete" and ev.get("verb") == "watch":
            continue
        if ev.get("stage") not in ("ResponseStarted", "ResponseComplete"):
            continue
        events.append(ev)
    return events


def key(ev: dict[str, Any]) -> str:
    ref = ev.get("objectRef") or {}
    res = ref.get("resource", ev.get("requestURI", "?"))
    if ref.get("subresource"):
        res += "/" + ref["subresource"]
    return f"{ev['verb']} {res}"


def requests_in(events: list[dict[str, Any]], window: list[float], jobs: int,
                user: str = OPERATOR_USER) -> dict[str, Any]:
    lo, hi = window
    mine = [ev for ev in events if ev["user"].get("username") == user
            and lo <= parse_ts(ev["requestReceivedTimestamp"]) <= hi]
    by_verb = Counter(ev["verb"] for ev in mine)
    by_key = Counter(key(ev) for ev in mine)
    return {
        "jobs": jobs, "windowSeconds": round(hi - lo, 2), "total": len(mine),
        "perJob": round(len(mine) / jobs, 2),
        "perJobByVerb": {v: round(c / jobs, 2) for v, c in sorted(by_verb.items())},
        "perJobByVerbResource": {k: round(c / jobs, 2) for k, c in sorted(by_key.items())},
        "codes": dict(Counter(str((ev.get("responseStatus") or {}).get("code"))
                              for ev in mine)),
    }


def job_timeline(events: list[dict[str, Any]], job: str) -> dict[str, float]:
    """Seconds after the job's create request when the operator (and workers) touched it."""
    def when(pred: Callable[[dict[str, Any]], bool]) -> list[float]:
        return sorted(parse_ts(ev["requestReceivedTimestamp"]) for ev in events if pred(ev))

    def ref(ev: dict[str, Any]) -> dict[str, Any]:
        return ev.get("objectRef") or {}

    created = when(lambda e: e["verb"] == "create" and ref(e).get("resource") == "quantumjobs"
                   and ref(e).get("name") == job)
    if not created:
        return {}
    t0 = created[0]
    out: dict[str, float] = {}
    op = OPERATOR_USER

    def first(label: str, pred: Callable[[dict[str, Any]], bool], last: bool = False) -> None:
        ts = when(pred)
        if ts:
            out[label] = round((ts[-1] if last else ts[0]) - t0, 3)

    first("operatorFirstRequest", lambda e: e["user"].get("username") == op
          and ref(e).get("name") == job)
    first("decisionCreated", lambda e: e["user"].get("username") == op and e["verb"] == "create"
          and ref(e).get("name") == f"{job}-decision")
    first("podsCreated", lambda e: e["user"].get("username") == op and e["verb"] == "create"
          and ref(e).get("resource") == "pods" and str(ref(e).get("name", "")).startswith(job),
          last=True)
    first("podBound", lambda e: ref(e).get("subresource") == "binding"
          and str(ref(e).get("name", "")).startswith(job + "-"), last=True)
    def pod_status(e: dict[str, Any]) -> bool:  # the node agent's pod status writes
        return (e["user"].get("username") != op and ref(e).get("resource") == "pods"
                and ref(e).get("subresource") == "status"
                and str(ref(e).get("name", "")).startswith(job + "-"))

    first("podStatusFirst", pod_status)
    first("podStatusLast", pod_status, last=True)
    first("resultsCreated", lambda e: e["user"].get("username") != op and e["verb"] == "create"
          and ref(e).get("resource") == "configmaps"
          and str(ref(e).get("name", "")).startswith(job + "-")
          and str(ref(e).get("name", "")).endswith("-out"), last=True)
    first("lastStatusWrite", lambda e: e["user"].get("username") == op
          and ref(e).get("resource") == "quantumjobs" and ref(e).get("subresource") == "status"
          and ref(e).get("name") == job and e["verb"] in ("patch", "update"), last=True)
    return out


# --- report ----------------------------------------------------------------------------------

def stray_processes(state: Path) -> list[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line.strip() for line in out.splitlines()
            if str(state) in line and "ps -eo" not in line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 latency reps, 10 jobs")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--reps", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    args = parser.parse_args()
    jobs = args.jobs or (10 if args.quick else 50)
    reps = args.reps or (3 if args.quick else 5)
    rng = np.random.default_rng(8)
    state = Path(tempfile.mkdtemp(prefix="qb-opbench-"))
    bench = Bench(state)
    t_start = time.monotonic()
    report: dict[str, Any] = {"mode": "quick" if args.quick else "full", "cores": os.cpu_count(),
                              "qpus": list(QPUS), "state": str(state)}
    try:
        print(f"state {state}", flush=True)
        report["setupSeconds"] = bench.up()
        print(f"up: {report['setupSeconds']}", flush=True)
        idle0 = time.time()
        time.sleep(5.0)
        idle_window = [idle0, time.time()]
        print(f"latency: {reps} x 8-qubit job", flush=True)
        report["latency"] = latency(bench, reps, rng)
        print(f"burst: {jobs} jobs at once", flush=True)
        report["burst"] = burst(bench, jobs, rng, timeout=max(120.0, 12.0 * jobs))
        print(f"deadline burst: {jobs // 2} jobs, half with a deadline, QPUs modelled at "
              f"{DEADLINE_BURST_SETUP:g} s per fragment", flush=True)
        report["deadlineBurst"] = deadline_burst(bench, jobs // 2, rng, DEADLINE_BURST_SETUP,
                                                 DEADLINE_BURST_DEADLINE)
        report["jointPlans"] = joint_plans(bench)
        events = audit_events(bench.audit_log)
        report["requests"] = {
            "idlePer5s": requests_in(events, idle_window, 1),
            "latencyJobs": requests_in(events, [report["latency"]["runs"][0]["window"][0],
                                                report["latency"]["runs"][-1]["window"][1]],
                                       reps),
            "burstJobs": requests_in(events, report["burst"]["window"], jobs),
        }
        report["latency"]["timelines"] = {r["job"]: job_timeline(events, r["job"])
                                          for r in report["latency"]["runs"]}
    finally:
        bench.down()
        time.sleep(1.0)
        report["strayProcesses"] = stray_processes(state)
        if not args.keep:
            shutil.rmtree(state, ignore_errors=True)
    report["benchSeconds"] = round(time.monotonic() - t_start, 1)
    print_report(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / ("operator-bench-quick.json" if args.quick else "operator-bench.json")
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")
    ok = (report["latency"]["allVerified"] and report["burst"]["noneLost"]
          and report["burst"]["noneRunTwice"] and not report["strayProcesses"])
    return 0 if ok else 1


def print_report(r: dict[str, Any]) -> None:
    lat, b, req = r["latency"], r["burst"], r["requests"]
    print("\n== apply -> verified result, 8-qubit job, ideal aer ==")
    print(f"{'job':8} {'phase':10} {'verified':8} {'wall s':>7} {'exec s':>7} {'overhead s':>10}")
    for run in lat["runs"]:
        print(f"{run['job']:8} {run['phase']:10} {run['verified']!s:8} {run['wallSeconds']:7.2f}"
              f" {run['executeSeconds']:7.3f} {run['overheadSeconds']:10.2f}")
    print(f"median wall {lat['wallMedian']} s (max {lat['wallMax']}), overhead median "
          f"{lat['overheadMedian']} s (max {lat['overheadMax']}), overhead share "
          f"{lat['overheadShareMedian']:.0%}; target < {OVERHEAD_TARGET} s: "
          f"{'met' if lat['overheadTargetMet'] else 'MISSED'}")
    for job, tl in lat.get("timelines", {}).items():
        print(f"  {job} timeline (s after create): {tl}")
    print(f"\n== {b['jobs']} jobs submitted at once ==")
    print(f"submit {b['submitSeconds']} s, all terminal after {b['totalSeconds']} s, "
          f"{b['throughputJobsPerMinute']} jobs/min; phases {b['phases']}, verified "
          f"{b['verified']}, fragment pods {b['fragmentPods']}")
    print(f"none lost: {b['noneLost']} {b['lost'] or ''}; none run twice: {b['noneRunTwice']} "
          f"(recreated pods {b['recreatedPods']}, mismatches {b['fragmentMismatches']})")
    print(f"created -> decided (s, API timestamps): {b['waitSeconds']['toDecision']}; decided -> "
          f"admitted: {b['waitSeconds']['queued']}; joint plans (whole run): {r['jointPlans']}")
    d = r["deadlineBurst"]
    print(f"\n== {d['jobs']} jobs at once, {d['withDeadline']} with a {d['deadlineSeconds']:g} s "
          f"deadline, QPUs modelled at {d['modelSetupSeconds']:g} s per fragment ==")
    print(f"phases {d['phases']}; deadlines met {d['deadlinesMet']}/{d['withDeadline']}; "
          f"deadline jobs among the first {d['withDeadline']} admitted: "
          f"{d['urgentAmongFirstAdmitted']}; all terminal after {d['totalSeconds']} s; waits "
          f"{d['waitSeconds']}")
    print("\n== operator API requests per job (audit log, user qbackbone-operator) ==")
    for label, q in req.items():
        print(f"{label}: total {q['total']} over {q['windowSeconds']} s, per job {q['perJob']}:"
              f" {q['perJobByVerb']}")
    print(f"\nstray processes: {r['strayProcesses'] or 'none'}; bench {r['benchSeconds']} s")


if __name__ == "__main__":
    sys.exit(main())
