"""Issue 18's figures on the real node: QPUs claimed through DRA beside the device plugin's
extended resource, admission through kueue, and quota fairness over a two-team burst.

    flock /tmp/qb-realnode.lock .venv/bin/python benchmarks/dra/figures.py   # ~5 min, root

The stack (``bench_stack.py``): a control plane of its own, the real node (kubelet 1.36,
containerd 2.x, runc) joined to it, QPUNodes ``bench-a`` and ``bench-b`` (ideal aer, hosted
on the node, Ready status written here), ``qbackbone dra-driver`` (publisher) and
``qbackbone dra-driver kubelet-plugin`` as processes, the device plugin serving ``bench-a``
as ``qpu.qbackbone.io/bench-a``, and later kueue (built from source, a host process). Pods
run a static tool that stamps CLOCK_REALTIME when its process starts (the same clock as
the create call here), sleeps, and writes the stamps and its ``QBACKBONE_QPU`` to the
termination log. Every other time is when a watch event (pods, ResourceClaims) or the CDI
directory (polled every 10 ms; the spec's mtime is when the plugin prepared the claim)
first showed the transition.

1. Claim-to-running, ``--pods`` pods per path, one at a time (the QPU is released, pod and
   claim gone, before the next), the two paths alternating: (a) ``limits:
   {qpu.qbackbone.io/bench-a: 1}``; (b) a ResourceClaimTemplate whose one request names
   ``bench-a``'s own DeviceClass. create -> claim allocated -> bound -> prepared (CDI spec
   written) -> container process started -> phase Running seen. One warm-up pod per path
   first (not counted).
2. Admission through kueue (quota free): the same claim pod with a LocalQueue label:
   create -> kueue's gate removed -> allocated -> bound -> prepared -> started -> Running.
3. Fairness: quota 2 QPUs; team A creates ``--burst`` single-pod workloads at once, then
   (``--gap`` s later) team B as many; each pod holds a QPU (the driver's class, any of the two)
   for ``--seconds`` s. (i) one StrictFIFO ClusterQueue shared by both teams (the chart's
   default); (ii) one ClusterQueue per team, 1 QPU nominal each, in one cohort, borrowing
   unlimited. Admission = kueue's gate removed, finish = phase Succeeded seen.

Writes ``benchmarks/results/dra-kueue.json``. p90: nearest rank.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench_stack import (
    BENCH_LABEL,
    IMAGE,
    NODE,
    RG,
    RV,
    Recorder,
    Stack,
    delete_pods,
    running_stack,
    termination,
)
from kubernetes.client.exceptions import ApiException

from qbackbone.dev.binaries import K8S_VERSION
from qbackbone.dev.kueue import KUEUE_VERSION
from qbackbone.dev.waiting import wait_for
from qbackbone.dra.attributes import DRIVER
from qbackbone.dra.classes import QUOTA_RESOURCE, qpu_class_name

REPO = Path(__file__).resolve().parents[2]
RESULT = REPO / "benchmarks" / "results" / "dra-kueue.json"
QPU_A, QPU_B = "bench-a", "bench-b"
KG, KV = "kueue.x-k8s.io", "v1beta2"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
FLAVOR = "qpu"


def log(message: str) -> None:
    print(message, flush=True)


def summary(values: Sequence[float]) -> dict[str, float | int]:
    """median / p90 (nearest rank) / min / max in seconds, 3 decimals."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    p90 = ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]
    return {"n": len(ordered), "median": round(statistics.median(ordered), 3),
            "p90": round(p90, 3), "min": round(ordered[0], 3), "max": round(ordered[-1], 3)}


def pod_body(name: str, seconds: float, *, extended: str | None = None,
             template: str | None = None, queue: str | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": IMAGE, "imagePullPolicy": "Never",
                                 "args": [f"{seconds:g}"]}
    spec: dict[str, Any] = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                            "nodeSelector": {"kubernetes.io/hostname": NODE},
                            "containers": [container]}
    if extended:
        container["resources"] = {"limits": {extended: "1"}}
    if template:
        spec["resourceClaims"] = [{"name": "qpu", "resourceClaimTemplateName": template}]
        container["resources"] = {"claims": [{"name": "qpu"}]}
    labels = {BENCH_LABEL: "1"}
    if queue:
        labels[QUEUE_LABEL] = queue
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": spec}


def claim_template(stack: Stack, namespace: str, name: str, device_class: str) -> None:
    stack.create(namespace, "resourceclaimtemplates", {
        "apiVersion": f"{RG}/{RV}", "kind": "ResourceClaimTemplate",
        "metadata": {"name": name},
        "spec": {"spec": {"devices": {"requests": [
            {"name": "qpu", "exactly": {"deviceClassName": device_class}}]}}}})


def create_pod(stack: Stack, namespace: str, body: dict[str, Any]) -> float:
    created = time.time()
    stack.core.create_namespaced_pod(namespace, body)  # type: ignore[arg-type]
    return created


def finished(rec: Recorder, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    record: dict[str, Any] = rec.wait(
        lambda: (r := rec.pods.get((namespace, name))) and (
            "succeeded" in r or "failed" in r) and r, timeout, f"pod {namespace}/{name} done")
    return record


def measure(stack: Stack, rec: Recorder, namespace: str, name: str,
            created: float) -> dict[str, Any]:
    """The pod's timings (seconds from ``created``) once it finished."""
    record = finished(rec, namespace, name)
    pod: Any = stack.core.read_namespaced_pod(name, namespace)
    if "failed" in record:
        raise SystemExit(f"pod {namespace}/{name} failed: {pod.status}")
    stamps = termination(pod)
    out: dict[str, Any] = {"pod": f"{namespace}/{name}", "qpu": stamps.get("qpu"),
                           "node": pod.spec.node_name}

    def rel(value: float | None) -> float | None:
        return None if value is None else round(value - created, 4)

    out["gate_removed"] = rel(record.get("ungated"))
    out["bound"] = rel(record.get("bound"))
    claim = rec.claim(namespace, name)
    if claim:
        out["claim_created"] = rel(claim.get("created"))
        out["allocated"] = rel(claim.get("allocated"))
        out["devices"] = claim.get("devices")
        cdi = rec.cdi.get(claim["uid"], {})
        out["prepared"] = rel(cdi.get("mtime"))
    out["started"] = rel(float(stamps["start"])) if "start" in stamps else None
    out["ended"] = rel(float(stamps["end"])) if "end" in stamps else None
    out["running_seen"] = rel(record.get("running"))
    out["succeeded_seen"] = rel(record.get("succeeded"))
    return out


def steps(sample: dict[str, Any], names: Sequence[str]) -> str:
    return "  ".join(f"{n} {sample[n]:.3f}" for n in names if sample.get(n) is not None)


STEPS = ("gate_removed", "claim_created", "allocated", "bound", "prepared", "started",
         "running_seen")


def summarise(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for step in STEPS:
        values = [s[step] for s in samples if s.get(step) is not None]
        if values:
            out[step] = summary(values)
    splits = {"bound_to_prepared": ("bound", "prepared"),
              "prepared_to_started": ("prepared", "started"),
              "bound_to_started": ("bound", "started"),
              "gate_removed_to_bound": ("gate_removed", "bound"),
              "started_to_running_seen": ("started", "running_seen"),
              "ended_to_succeeded_seen": ("ended", "succeeded_seen")}
    for label, (a, b) in splits.items():
        values = [s[b] - s[a] for s in samples if s.get(a) is not None and s.get(b) is not None]
        if values:
            out[label] = summary(values)
    return out


def claim_to_running(stack: Stack, rec: Recorder, pods: int, seconds: float
                     ) -> dict[str, Any]:
    ns = stack.namespace("bench-latency")
    claim_template(stack, ns, "qpu-a", qpu_class_name(QPU_A))
    samples: dict[str, list[dict[str, Any]]] = {"extended_resource": [], "resource_claim": []}
    warmup: dict[str, dict[str, Any]] = {}
    for i in range(pods + 1):
        order = ["extended_resource", "resource_claim"]
        if i % 2:
            order.reverse()
        for path in order:
            name = f"{'ext' if path == 'extended_resource' else 'dra'}-{i}"
            body = (pod_body(name, seconds, extended=f"qpu.qbackbone.io/{QPU_A}")
                    if path == "extended_resource" else
                    pod_body(name, seconds, template="qpu-a"))
            created = create_pod(stack, ns, body)
            sample = measure(stack, rec, ns, name, created)
            if sample["qpu"] != QPU_A or sample["node"] != NODE:
                raise SystemExit(f"{name} ran with QPU {sample['qpu']!r} on {sample['node']}")
            delete_pods(stack, ns, [name], rec)
            if i == 0:
                warmup[path] = sample
            else:
                samples[path].append(sample)
            log(f"  {name}: " + steps(sample, ("allocated", "bound", "prepared", "started",
                                                  "running_seen")))
    return {path: {"summary": summarise(s), "samples": s, "warmup": warmup[path]}
            for path, s in samples.items()}


def cluster_queue(name: str, qpus: int, namespaces: Sequence[str],
                  cohort: str | None = None, strategy: str = "StrictFIFO") -> dict[str, Any]:
    """The chart's ClusterQueue (templates/kueue.yaml) with ``qpus`` QPUs."""
    spec: dict[str, Any] = {
        "queueingStrategy": strategy,
        "namespaceSelector": {"matchExpressions": [{
            "key": "kubernetes.io/metadata.name", "operator": "In",
            "values": sorted(namespaces)}]},
        "resourceGroups": [{"coveredResources": [QUOTA_RESOURCE, "cpu", "memory"],
                            "flavors": [{"name": FLAVOR, "resources": [
                                {"name": QUOTA_RESOURCE, "nominalQuota": qpus},
                                {"name": "cpu", "nominalQuota": "64"},
                                {"name": "memory", "nominalQuota": "256Gi"}]}]}]}
    if cohort:
        spec["cohortName"] = cohort
    return {"apiVersion": f"{KG}/{KV}", "kind": "ClusterQueue", "metadata": {"name": name},
            "spec": spec}


def queue_objects(stack: Stack, cqs: Sequence[dict[str, Any]],
                  local: dict[str, str]) -> None:
    """ClusterQueues ``cqs`` and a LocalQueue ``team`` in each namespace of ``local``
    (namespace -> ClusterQueue), and the ResourceFlavor when missing (no node labels: QPUs are
    not per node, as the chart has it); waits until the ClusterQueues are Active."""
    try:
        stack.create_cluster("resourceflavors", {
            "apiVersion": f"{KG}/{KV}", "kind": "ResourceFlavor",
            "metadata": {"name": FLAVOR}}, KG, KV)
    except ApiException as exc:
        if exc.status != 409:
            raise
    for cq in cqs:
        stack.create_cluster("clusterqueues", cq, KG, KV)
    for namespace, cq_name in local.items():
        stack.create(namespace, "localqueues", {
            "apiVersion": f"{KG}/{KV}", "kind": "LocalQueue",
            "metadata": {"name": "team", "namespace": namespace},
            "spec": {"clusterQueue": cq_name}}, KG, KV)

    def active(name: str) -> bool:
        got: Any = stack.custom.get_cluster_custom_object(KG, KV, "clusterqueues", name)
        return any(c["type"] == "Active" and c["status"] == "True"
                   for c in (got.get("status") or {}).get("conditions") or [])

    for cq in cqs:
        name = str(cq["metadata"]["name"])
        wait_for(partial(active, name), 30, what=f"ClusterQueue {name} Active")


def kueue_admission(stack: Stack, rec: Recorder, pods: int, seconds: float
                    ) -> dict[str, Any]:
    ns = stack.namespace("bench-admission")
    queue_objects(stack, [cluster_queue("bench-admission", 2, [ns])], {ns: "bench-admission"})
    claim_template(stack, ns, "qpu-a", qpu_class_name(QPU_A))
    samples, warmup = [], None
    for i in range(pods + 1):
        name = f"adm-{i}"
        created = create_pod(stack, ns, pod_body(name, seconds, template="qpu-a",
                                                 queue="team"))
        sample = measure(stack, rec, ns, name, created)
        if sample["qpu"] != QPU_A:
            raise SystemExit(f"{name} ran with QPU {sample['qpu']!r}")
        delete_pods(stack, ns, [name], rec)
        if i == 0:
            warmup = sample
        else:
            samples.append(sample)
        log(f"  {name}: " + steps(sample, ("gate_removed", "allocated", "bound", "prepared",
                                          "started", "running_seen")))
    return {"summary": summarise(samples), "samples": samples, "warmup": warmup}


def jain(values: Sequence[float]) -> float:
    total, squares = sum(values), sum(v * v for v in values)
    return round(total * total / (len(values) * squares), 4) if squares else 1.0


def burst(stack: Stack, rec: Recorder, tag: str, cqs: Sequence[dict[str, Any]],
          local: dict[str, str], teams: dict[str, str], size: int, seconds: float,
          gap: float) -> dict[str, Any]:
    """``teams``: team letter -> namespace (already created, in ``local``)."""
    queue_objects(stack, cqs, local)
    for namespace in teams.values():
        claim_template(stack, namespace, "qpu", DRIVER)
    created: dict[tuple[str, str], float] = {}
    t0 = time.time()
    for k, (team, namespace) in enumerate(teams.items()):
        if k:
            time.sleep(gap)
        for j in range(size):
            name = f"{team}-{j}"
            created[(team, name)] = create_pod(stack, namespace, pod_body(
                name, seconds, template="qpu", queue="team"))
    timeout = 2 * size * seconds * 3 + 120
    pods = []
    for (team, name), at in created.items():
        namespace = teams[team]
        record = finished(rec, namespace, name, timeout)
        pod = stack.core.read_namespaced_pod(name, namespace)
        if "failed" in record:
            raise SystemExit(f"pod {namespace}/{name} failed: {pod.status}")
        stamps = termination(pod)
        pods.append({"team": team, "pod": name, "created": round(at - t0, 3),
                     "admitted": round(record["ungated"] - t0, 3),
                     "bound": round(record["bound"] - t0, 3),
                     "started": round(float(stamps["start"]) - t0, 3),
                     "ended": round(float(stamps["end"]) - t0, 3),
                     "finished": round(record["succeeded"] - t0, 3),
                     "qpu": stamps.get("qpu")})
    makespan = max(p["finished"] for p in pods)
    half = makespan / 2
    pods.sort(key=lambda p: p["admitted"])
    held: dict[str, float] = {}
    first_half: dict[str, float] = {}
    for team in teams:
        mine = [p for p in pods if p["team"] == team]
        held[team] = sum(p["finished"] - p["admitted"] for p in mine)
        first_half[team] = round(sum(max(0.0, min(p["finished"], half) - p["admitted"])
                                     for p in mine), 3)
    result = {
        "admission_order": "".join(p["team"] for p in pods),
        "admission_order_pods": [p["pod"] for p in pods],
        "mean_wait_seconds": {t: round(statistics.mean(p["admitted"] - p["created"] for p in pods
                                                       if p["team"] == t), 3) for t in teams},
        "max_wait_seconds": {t: round(max(p["admitted"] - p["created"] for p in pods
                                          if p["team"] == t), 3) for t in teams},
        "team_done_seconds": {t: max(p["finished"] for p in pods if p["team"] == t)
                              for t in teams},
        "makespan_seconds": makespan,
        "first_half_qpu_seconds": first_half,
        "jain_first_half": jain(list(first_half.values())),
        "qpu_seconds_held": {t: round(v, 3) for t, v in held.items()},
        "admitted_to_bound": summary([p["bound"] - p["admitted"] for p in pods]),
        "admitted_to_started": summary([p["started"] - p["admitted"] for p in pods]),
        "ended_to_finished": summary([p["finished"] - p["ended"] for p in pods]),
        "quota_held_per_pod": summary([p["finished"] - p["admitted"] for p in pods]),
        "max_concurrent_admitted": max_concurrent(pods),
        "pods": pods,
    }
    for team, namespace in teams.items():
        delete_pods(stack, namespace, [f"{team}-{j}" for j in range(size)], rec)
    log(f"  {tag}: order {result['admission_order']}  mean wait {result['mean_wait_seconds']}"
        f"  Jain(first half) {result['jain_first_half']}  makespan {makespan:.1f} s")
    return result


def max_concurrent(pods: Sequence[dict[str, Any]]) -> int:
    events = sorted([(p["admitted"], 1) for p in pods] + [(p["finished"], -1) for p in pods])
    best = now = 0
    for _, step in events:
        now += step
        best = max(best, now)
    return best


def fairness(stack: Stack, rec: Recorder, size: int, seconds: float, gap: float
             ) -> dict[str, Any]:
    shared_ns = {t: stack.namespace(f"shared-{t}") for t in ("a", "b")}
    shared = burst(stack, rec, "one shared StrictFIFO ClusterQueue (2 QPUs)",
                   [cluster_queue("shared", 2, list(shared_ns.values()))],
                   {ns: "shared" for ns in shared_ns.values()}, shared_ns, size, seconds, gap)
    cohort_ns = {t: stack.namespace(f"cohort-{t}") for t in ("a", "b")}
    cohort = burst(stack, rec, "a ClusterQueue per team (1 QPU each), one cohort",
                   [cluster_queue(f"team-{t}", 1, [ns], cohort="qpus")
                    for t, ns in cohort_ns.items()],
                   {ns: f"team-{t}" for t, ns in cohort_ns.items()}, cohort_ns, size, seconds,
                   gap)
    return {"shared_strict_fifo": {"config": "one ClusterQueue, StrictFIFO, nominalQuota 2 "
                                             "qpu.qbackbone.io/qpus, a LocalQueue per team",
                                   **shared},
            "cohort_per_team": {"config": "a ClusterQueue per team, StrictFIFO, nominalQuota 1 "
                                          "each, cohortName qpus, no borrowingLimit, no "
                                          "preemption", **cohort}}


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {"cores": os.cpu_count(), "cpu": model, "memory_gib": round(int(mem) / 2**20, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def fmt(stats: dict[str, Any] | None) -> str:
    if not stats or not stats.get("n"):
        return "-"
    return f"{stats['median']:.3f} / {stats['p90']:.3f} / {stats['max']:.3f}"


def report(result: dict[str, Any]) -> None:
    log("\nclaim-to-running (s from create; median / p90 / max)")
    paths = result["claim_to_running"]
    kueue = result["kueue_admission"]["summary"]
    log(f"{'step':24} {'extended resource':>22} {'resource claim':>22} {'claim via kueue':>22}")
    for step in (*STEPS, "bound_to_prepared", "prepared_to_started", "bound_to_started",
                 "gate_removed_to_bound", "started_to_running_seen",
                 "ended_to_succeeded_seen"):
        row = [paths["extended_resource"]["summary"].get(step),
               paths["resource_claim"]["summary"].get(step), kueue.get(step)]
        if any(row):
            log(f"{step:24} " + " ".join(f"{fmt(r):>22}" for r in row))
    log("\nfairness (2 QPUs, burst A then B)")
    for key, found in result["fairness"].items():
        waits = found["mean_wait_seconds"]
        log(f"  {key}: order {found['admission_order']}, mean wait A {waits['a']}"
            f" s, B {waits['b']} s, first-half QPU-s "
            f"{found['first_half_qpu_seconds']}, Jain {found['jain_first_half']}, makespan "
            f"{found['makespan_seconds']} s; quota held per pod {fmt(found['quota_held_per_pod'])}"
            f" (admitted -> started {fmt(found['admitted_to_started'])}, ended -> Succeeded "
            f"seen {fmt(found['ended_to_finished'])})")


def partial_save(out: Path, result: dict[str, Any]) -> None:
    """What is measured so far (``"complete": false``), in case a later part fails."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**result, "complete": False}, indent=2) + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=10, help="pods per path (N)")
    parser.add_argument("--burst", type=int, default=8, help="pods per team in the burst (M)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="seconds each burst pod holds its QPU (S)")
    parser.add_argument("--latency-seconds", type=float, default=2.0,
                        help="seconds each latency pod runs (long enough to be seen Running)")
    parser.add_argument("--gap", type=float, default=1.1,
                        help="seconds between team A's and team B's bursts (kueue orders by "
                             "creationTimestamp, 1 s resolution)")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)

    t_all = time.monotonic()
    result: dict[str, Any] = {
        "what": "issue 18 figures on the real node (benchmarks/dra/figures.py)",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "flock /tmp/qb-realnode.lock .venv/bin/python benchmarks/dra/figures.py "
                   + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine(),
        "params": {"pods": args.pods, "burst": args.burst, "burst_seconds": args.seconds,
                   "latency_pod_seconds": args.latency_seconds, "gap_seconds": args.gap,
                   "warmup_pods_per_path": 1, "p90": "nearest rank"},
        "notes": [
            "times are seconds from the pod's create call (wall clock); 'started' is the "
            "container process's own CLOCK_REALTIME stamp, 'prepared' the mtime of the CDI "
            "spec the kubelet plugin wrote, the rest the first watch event showing the step",
            "'running_seen' lags 'started' by the kubelet's PLEG relist (1 s period) and status "
            "update",
            "the device plugin's Allocate is not observable from outside: its path has no "
            "allocated/prepared split",
        ],
    }
    with tempfile.TemporaryDirectory(prefix="qb-dra-bench-") as tmp, \
            running_stack(Path(tmp), (QPU_A, QPU_B), (QPU_A,), say=log) as stack:
        result["versions"] = {"kubernetes": K8S_VERSION, "kueue": KUEUE_VERSION,
                              **stack.versions()}
        rec = Recorder(stack.api).start()
        try:
            log(f"1. claim-to-running, {args.pods} pods per path (+1 warm-up)")
            result["claim_to_running"] = claim_to_running(stack, rec, args.pods,
                                                          args.latency_seconds)
            partial_save(args.out, result)
            log("2. kueue")
            stack.start_kueue()
            log(f"kueue up in {stack.timings['kueue_start_seconds']} s")
            result["kueue_admission"] = kueue_admission(stack, rec, args.pods,
                                                        args.latency_seconds)
            partial_save(args.out, result)
            log(f"3. fairness: {args.burst} pods per team, {args.seconds:g} s each")
            result["fairness"] = fairness(stack, rec, args.burst, args.seconds, args.gap)
        finally:
            rec.stop()
        result["bring_up"] = stack.timings
    result["total_seconds"] = round(time.monotonic() - t_all, 1)
    result["complete"] = True
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report(result)
    log(f"\nwrote {args.out} ({result['total_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
