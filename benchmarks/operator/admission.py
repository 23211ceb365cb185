"""Joint admission vs per-job shot splitting: a discrete-event simulation of the operator's
queue on the scheduler's own time model (no Kubernetes, no pods).

    .venv/bin/python benchmarks/operator/admission.py --quick   # under a minute, no noise
    .venv/bin/python benchmarks/operator/admission.py           # full sweep, about 4 minutes

Instances come from ``core.scheduling.generator.generate``: its fleet modelled on real
devices (8 QPUs, 1 s setup per fragment) and jobs with 1-3 LOCC-chained subcircuits arriving
as a Poisson stream (rate set by ``load``), each with a deadline ``arrival + deadline_coef *
t_ref``. Sweep: load x deadline coefficient x seeds, each with and without duration noise.

Two admission policies, run by the same executor:

* ``joint`` (the operator now): a real ``k8s.queue.FleetQueue`` with a simulated clock. At
  every event (arrival, fragment end) and whenever the last plan goes stale (1 s + 1 us after
  it was made) every waiting job is ``place``d, arrivals first added to the queue so one plan
  covers them all. Needs: one per subcircuit (its shots, the QPUs eligible by qubits and depth,
  LOCC predecessors); committed work: every admitted fragment not yet ended (running since
  when, its planned order, its LOCC predecessors), as ``JobReconciler._committed`` reports it
  and the queue projects it onto the QPUs. An admitted job's fragments are appended to its
  QPUs' FIFO queues; a job still waiting at its deadline is dropped.
* ``per-job`` (the operator before): on arrival each subcircuit's shots are split over all its
  eligible QPUs with ``core.execute.shots.split_shots`` (proportional to shot rate) and
  queued at once; nothing is ever dropped. ``per-job-nosplit`` (a reference, not asked of the
  old operator by default: its policy's ``shotSplitting=false``) puts each subcircuit whole on
  the eligible QPU that would finish it first in isolation (``split_shots(..., False)``): it
  separates what joint admission buys from what not splitting everywhere buys.

Executor: each QPU runs one fragment at a time, taking the first fragment of its FIFO queue
whose LOCC predecessors have all ended (blocked fragments are skipped, not waited for).
Duration = setup + shots * shot_time, times a noise factor uniform in [0.8, 1.2] in the noisy
variant, drawn per (seed, job, subcircuit, QPU) so both policies see the same factor for the
same work; the planner always sees the nominal time. Served: every fragment of the job ended
by its deadline. Every run asserts that each executed job ran each subcircuit's shots exactly
once and that precedence held.

Honest limits: this is the model's time, not the operator's: no pod start-up, no API
latency, no reconcile jitter (the real queue re-plans from per-job 1 s timers, here exactly
when the plan goes stale, the best case), all QPUs always Ready, estimates exact without
noise. ``per-job`` serves late jobs eventually (their results arrive after the deadline);
``joint`` never runs a job it dropped. Planning seconds are wall-clock seconds of
``FleetQueue``'s planning (``on_plan``) on this machine, with ``--workers`` processes sharing
its cores. Writes ``benchmarks/results/operator-admission.json`` (``-quick.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from qbackbone.core.execute.shots import split_shots
from qbackbone.core.qpus.descriptor import QPUDescriptor
from qbackbone.core.scheduling import QPU, InstanceParams, Job, Problem, generate
from qbackbone.core.scheduling.admission import Admit
from qbackbone.k8s.fragments import Need
from qbackbone.k8s.queue import Committed, FleetQueue, Waiting

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
POLICIES = ("joint", "per-job", "per-job-nosplit")
EPS = 1e-9
NOISE = (0.8, 1.2)

MODES: dict[str, dict[str, Any]] = {
    "quick": {"n_jobs": 20, "n_qpus": 8, "seeds": 2, "loads": (0.5, 1.0, 2.0),
              "coefs": (1.0, 2.0), "noise": (False,)},
    "full": {"n_jobs": 30, "n_qpus": 8, "seeds": 5, "loads": (0.5, 1.0, 2.0),
             "coefs": (1.0, 2.0), "noise": (False, True)},
}


@dataclass
class Frag:
    """One fragment: shots of one subcircuit on one QPU."""

    job: str
    sub: int
    qpu: str
    shots: int
    nominal: float  # what the planner assumes
    actual: float  # what it takes (noise)
    order: float = 0.0  # when the admitting plan starts it (the order QPUs take work in)
    start: float | None = None
    end: float | None = None


@dataclass
class JobState:
    job: Job
    eligible: list[list[str]]  # per subcircuit, fastest first
    preds: list[list[int]]
    frags: list[Frag] = field(default_factory=list)
    left: list[int] = field(default_factory=list)  # unfinished fragments per subcircuit
    admitted_at: float | None = None
    planned_end: float | None = None  # joint: absolute end the admitting plan expected
    dropped: bool = False
    finish: float | None = None

    @property
    def served(self) -> bool:
        return self.finish is not None and self.finish <= self.job.deadline + EPS


def descriptor(q: QPU) -> QPUDescriptor:
    return QPUDescriptor(name=q.name, provider="sim", backend_name=q.name, qubits=q.qubits,
                         device_qubits=q.qubits, ideal=False, shot_time=q.shot_time,
                         setup_time=q.setup_time, max_depth=q.max_depth,
                         max_depth_derived=True, calibration=None)


class Executor:
    """Per-QPU FIFO queues; a QPU takes the first fragment whose predecessors have ended."""

    def __init__(self, qpus: Sequence[QPU], jobs: dict[str, JobState]) -> None:
        self.qpus = {q.name: q for q in qpus}
        self.jobs = jobs
        self.queues: dict[str, list[Frag]] = {q.name: [] for q in qpus}
        self.running: dict[str, Frag | None] = {q.name: None for q in qpus}
        self.busy: dict[str, float] = {q.name: 0.0 for q in qpus}

    def enqueue(self, state: JobState, frags: list[Frag]) -> None:
        state.frags = frags
        state.left = [sum(1 for f in frags if f.sub == i) for i in range(len(state.preds))]
        assert all(state.left), f"{state.job.name}: a subcircuit without fragments"
        for f in sorted(frags, key=lambda f: state.job.topological_order().index(f.sub)):
            self.queues[f.qpu].append(f)

    def committed(self) -> list[Committed]:
        """The admitted fragments not yet ended, as the operator reports them to the queue."""
        out: list[Committed] = []
        for name, queue in self.queues.items():
            run = self.running[name]
            for f in ([run] if run is not None else []) + queue:
                state = self.jobs[f.job]
                before = tuple(key(g) for g in state.frags
                               if g.sub in state.preds[f.sub] and g.end is None)
                out.append(Committed(f.job, key(f), f.qpu, f.shots, f.start, f.order, before))
        return out

    def next_end(self) -> float | None:
        ends = [f.end for f in self.running.values() if f is not None and f.end is not None]
        return min(ends, default=None)

    def finish(self, now: float) -> None:
        for name, f in self.running.items():
            if f is None or f.end is None or f.end > now + EPS:
                continue
            self.running[name] = None
            state = self.jobs[f.job]
            state.left[f.sub] -= 1
            if not any(state.left):
                state.finish = max(g.end for g in state.frags if g.end is not None)

    def dispatch(self, now: float) -> None:
        for name, queue in self.queues.items():
            if self.running[name] is not None:
                continue
            for k, f in enumerate(queue):
                state = self.jobs[f.job]
                if all(state.left[p] == 0 for p in state.preds[f.sub]):
                    del queue[k]
                    f.start, f.end = now, now + f.actual
                    self.busy[name] += f.actual
                    self.running[name] = f
                    break

    def idle(self) -> bool:
        return all(f is None for f in self.running.values()) and not any(self.queues.values())


def key(f: Frag) -> str:
    return f"{f.sub}-{f.qpu}"


def noise_factor(seed: int, job: str, sub: int, qpu: str, noisy: bool) -> float:
    if not noisy:
        return 1.0
    return random.Random(f"{seed}:{job}:{sub}:{qpu}").uniform(*NOISE)


def simulate(problem: Problem, policy: str, seed: int, noisy: bool) -> dict[str, Any]:
    """Run ``problem``'s job stream under ``policy``; the run's metrics."""
    qpus = {q.name: q for q in problem.qpus}
    descs = {q.name: descriptor(q) for q in problem.qpus}
    jobs: dict[str, JobState] = {}
    for job in problem.jobs:
        elig = [sorted((q.name for q in problem.qpus if q.can_run(s)),
                       key=lambda n: (qpus[n].shot_time, n)) for s in job.subcircuits]
        assert all(elig), f"{job.name}: a subcircuit no QPU can run"
        jobs[job.name] = JobState(job, elig, job.predecessors())
    ex = Executor(problem.qpus, jobs)
    arrivals = sorted(problem.jobs, key=lambda j: (j.arrival, j.name))

    def frag(state: JobState, sub: int, qpu: str, shots: int) -> Frag:
        q = qpus[qpu]
        factor = noise_factor(seed, state.job.name, sub, qpu, noisy)
        return Frag(state.job.name, sub, qpu, shots, q.duration(shots),
                    q.duration(shots) * factor)

    now = 0.0
    plans: list[tuple[float, int]] = []
    plan_at = [-math.inf]

    def on_plan(seconds: float, n: int) -> None:
        plans.append((seconds, n))
        plan_at[0] = now

    queue = FleetQueue(seed=seed, clock=lambda: now, on_plan=on_plan)
    ready = frozenset(qpus)
    waiting: dict[str, Waiting] = {}  # joint only, in arrival order
    admitted: set[str] = set()  # joint: admitted, not finished
    i = 0
    wall = time.perf_counter()
    while True:
        times = [] if i >= len(arrivals) else [arrivals[i].arrival]
        end = ex.next_end()
        if end is not None:
            times.append(end)
        if waiting:
            times.append(max(plan_at[0] + queue.replan_seconds + 1e-6, now + 1e-6))
            times.append(min(jobs[u].job.deadline for u in waiting))
        if not times:
            break
        now = max(now, min(times))
        ex.finish(now)
        for name in [n for n in admitted if jobs[n].finish is not None]:
            queue.remove(name)  # as the reconciler does on a terminal status
            admitted.discard(name)
        while i < len(arrivals) and arrivals[i].arrival <= now + EPS:
            job = arrivals[i]
            i += 1
            state = jobs[job.name]
            if policy.startswith("per-job"):
                frags = []
                for k, sub in enumerate(job.subcircuits):
                    for share in split_shots(sub.shots, [descs[n] for n in state.eligible[k]],
                                             policy == "per-job"):
                        frags.append(frag(state, k, share.qpu, share.shots))
                state.admitted_at = now
                ex.enqueue(state, frags)
                continue
            names = [f"s{k}" for k in range(len(job.subcircuits))]
            needs = [Need(names[k], sub.shots, sub.qubits, tuple(state.eligible[k]),
                          tuple(names[p] for p in state.preds[k]))
                     for k, sub in enumerate(job.subcircuits)]
            allowed = {n for e in state.eligible for n in e}
            w = Waiting(job.name, needs, {n: descs[n] for n in sorted(allowed)}, job.deadline,
                        job.splittable)
            waiting[job.name] = w
            queue.add(w)
        for uid in [u for u in waiting if jobs[u].job.deadline <= now + EPS]:
            queue.remove(uid)
            del waiting[uid]
            jobs[uid].dropped = True
        for uid, w in list(waiting.items()):
            placement = queue.place(w, ready, ex.committed)
            decision = placement.decision
            if not isinstance(decision, Admit):
                continue
            del waiting[uid]
            admitted.add(uid)
            state = jobs[uid]
            assert set(decision.shares) == set(range(len(state.preds))), decision.shares
            state.admitted_at = now
            state.planned_end = plan_at[0] + decision.end  # Admit times: after the plan
            frags = [frag(state, k, q, n) for k, per_qpu in decision.shares.items()
                     for q, n in sorted(per_qpu.items()) if n > 0]
            for f in frags:
                f.order = placement.planned_at + decision.starts[f.sub][f.qpu]
            ex.enqueue(state, frags)
        ex.dispatch(now)
    wall = time.perf_counter() - wall
    assert ex.idle() and not waiting and len(queue) == 0
    return metrics(problem, jobs, ex, policy, plans, wall)


def check(state: JobState) -> None:
    """Each subcircuit's shots ran exactly once, on eligible QPUs, after its predecessors."""
    job = state.job
    for k, sub in enumerate(job.subcircuits):
        mine = [f for f in state.frags if f.sub == k]
        assert sum(f.shots for f in mine) == sub.shots, (job.name, k)
        assert all(f.qpu in state.eligible[k] and f.shots > 0 for f in mine), (job.name, k)
        assert all(f.start is not None and f.end is not None for f in mine), (job.name, k)
        assert len({(f.qpu, f.start) for f in mine}) == len(mine), (job.name, k)
        for p in state.preds[k]:
            ready = max(f.end for f in state.frags if f.sub == p and f.end is not None)
            assert all(f.start is not None and f.start >= ready - EPS for f in mine), (
                f"{job.name}: subcircuit {k} started before predecessor {p} ended")


def quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def metrics(problem: Problem, jobs: dict[str, JobState], ex: Executor, policy: str,
            plans: list[tuple[float, int]], wall: float) -> dict[str, Any]:
    executed = [s for s in jobs.values() if s.frags]
    for s in executed:
        check(s)
    # No QPU ever ran two fragments at once.
    for name in ex.qpus:
        runs = sorted((f.start, f.end) for s in executed for f in s.frags
                      if f.qpu == name and f.start is not None and f.end is not None)
        assert all(a[1] <= b[0] + EPS for a, b in pairwise(runs)), name
    assert all(s.dropped != bool(s.frags) for s in jobs.values())
    served = [s for s in jobs.values() if s.served]
    latency = [s.finish - s.job.arrival for s in served if s.finish is not None]
    horizon = max([f.end for s in executed for f in s.frags if f.end is not None]
                  + [j.arrival for j in problem.jobs])
    busy = sum(ex.busy.values())
    wasted = sum(f.actual for s in executed if not s.served for f in s.frags)
    late_admitted = [s for s in executed if not s.served] if policy == "joint" else []
    plan_error = [s.finish - s.planned_end for s in executed
                  if s.finish is not None and s.planned_end is not None]
    seconds = [p[0] for p in plans]
    n = len(problem.jobs)
    return {
        "jobs": n,
        "served": len(served),
        "fraction": len(served) / n,
        "dropped": sum(s.dropped for s in jobs.values()),
        "finished_late": sum(1 for s in executed if not s.served),
        "admitted_late": len(late_admitted),
        "latency_mean": statistics.fmean(latency) if latency else None,
        "latency_p95": quantile(latency, 0.95),
        "busy_share": busy / (len(ex.qpus) * horizon) if horizon > 0 else 0.0,
        "busy_seconds": busy,
        "wasted_seconds": wasted,  # QPU time spent on jobs that missed their deadline
        "fragments": sum(len(s.frags) for s in executed),
        "horizon": horizon,
        "plans": len(plans),
        "plan_seconds_total": sum(seconds),
        "plan_seconds_mean": statistics.fmean(seconds) if seconds else None,
        "plan_seconds_max": max(seconds, default=None),
        "plan_jobs_mean": statistics.fmean(p[1] for p in plans) if plans else None,
        "plan_error_mean": statistics.fmean(plan_error) if plan_error else None,
        "plan_error_max": max(plan_error, default=None),
        "sim_seconds": wall,
    }


def run_instance(task: tuple[dict[str, Any], float, float, int]) -> list[dict[str, Any]]:
    mode, load, coef, seed = task
    params = InstanceParams(n_jobs=mode["n_jobs"], n_qpus=mode["n_qpus"], load=load,
                            deadline_coef=coef, seed=seed)
    problem = generate(params)
    out = []
    for noisy in mode["noise"]:
        for policy in POLICIES:
            m = simulate(problem, policy, seed, noisy)
            out.append({"policy": policy, "load": load, "deadline_coef": coef, "seed": seed,
                        "noise": noisy, **{k: _round(v) for k, v in m.items()}})
    return out


def _round(v: Any) -> Any:
    return round(v, 6) if isinstance(v, float) else v


def _mean(values: list[Any]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[float, float, bool], list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault((r["load"], r["deadline_coef"], r["noise"]), []).append(r)
    rows = []
    keys = ("fraction", "latency_mean", "latency_p95", "busy_share", "wasted_seconds",
            "fragments", "dropped", "finished_late", "admitted_late", "plans",
            "plan_seconds_total", "plan_seconds_mean", "plan_seconds_max", "plan_jobs_mean",
            "plan_error_mean")
    for (load, coef, noisy), group in sorted(groups.items()):
        row: dict[str, Any] = {"load": load, "deadline_coef": coef, "noise": noisy}
        for policy in POLICIES:
            mine = [r for r in group if r["policy"] == policy]
            row[policy] = {k: _round(_mean([r[k] for r in mine])) for k in keys}
            row[policy]["seeds"] = len(mine)
        joint = {r["seed"]: r["fraction"] for r in group if r["policy"] == "joint"}
        per_job = {r["seed"]: r["fraction"] for r in group if r["policy"] == "per-job"}
        diffs = [100 * (joint[s] - per_job[s]) for s in sorted(joint)]
        whole = {r["seed"]: r["fraction"] for r in group if r["policy"] == "per-job-nosplit"}
        row["gain_vs_nosplit_pp"] = _round(
            statistics.fmean(100 * (joint[s] - whole[s]) for s in sorted(joint)))
        row["seeds_joint_worse_vs_nosplit"] = sum(joint[s] < whole[s] for s in joint)
        row["gain_pp"] = _round(statistics.fmean(diffs))
        row["gain_pp_min"] = _round(min(diffs))
        row["gain_pp_max"] = _round(max(diffs))
        row["seeds_joint_worse"] = sum(d < 0 for d in diffs)
        rows.append(row)
    return rows


def _fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"{'load':>4} {'coef':>4} {'noise':>5} | {'joint%':>6} {'perjob%':>7} {'gain pp':>7} "
          f"{'min..max':>11} {'worse':>5} | {'nosplit%':>8} {'gain':>6} | {'p95 J':>6} "
          f"{'p95 P':>6} | {'busy J':>6} {'busy P':>6} | {'plans':>5} {'plan s':>6} "
          f"{'ms/plan':>7} {'late adm':>8}")
    for r in rows:
        j, p = r["joint"], r["per-job"]
        print(f"{r['load']:>4} {r['deadline_coef']:>4} {'yes' if r['noise'] else 'no':>5} | "
              f"{100 * j['fraction']:>6.1f} {100 * p['fraction']:>7.1f} {r['gain_pp']:>+7.1f} "
              f"{r['gain_pp_min']:>+5.0f}..{r['gain_pp_max']:<+5.0f} "
              f"{r['seeds_joint_worse']:>5} | {100 * r['per-job-nosplit']['fraction']:>8.1f} "
              f"{r['gain_vs_nosplit_pp']:>+6.1f} | {_fmt(j['latency_p95'], '6.1f')} "
              f"{_fmt(p['latency_p95'], '6.1f')} | {j['busy_share']:>6.2f} "
              f"{p['busy_share']:>6.2f} | {j['plans']:>5.0f} "
              f"{j['plan_seconds_total']:>6.2f} {1000 * (j['plan_seconds_mean'] or 0):>7.1f} "
              f"{j['admitted_late']:>8.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sweep, under a minute")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                    help="processes (instances run in parallel; default 2)")
    ap.add_argument("--out", default=str(RESULTS), help="results directory")
    args = ap.parse_args()
    name = "quick" if args.quick else "full"
    mode = MODES[name]
    t0 = time.perf_counter()
    tasks = [(mode, load, coef, seed) for load in mode["loads"] for coef in mode["coefs"]
             for seed in range(mode["seeds"])]
    runs: list[dict[str, Any]] = []
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            for out in pool.map(run_instance, tasks):
                runs.extend(out)
    else:
        for task in tasks:
            runs.extend(run_instance(task))
    rows = summarize(runs)
    print(f"{name}: {mode['n_jobs']} jobs, {mode['n_qpus']} QPUs, {mode['seeds']} seeds per "
          "point; served % (mean over seeds), gain = joint - per-job in percentage points "
          "(min..max over seeds, 'worse' = seeds where joint served fewer); nosplit% = "
          "per-job without splitting and joint's gain over it; p95 arrival->finish "
          "(s) of served jobs; QPU busy share; joint planning: plans, total s, ms per plan; "
          "late adm = admitted by joint yet late")
    print_table(rows)
    elapsed = time.perf_counter() - t0
    meta = {"mode": name, **{k: list(v) if isinstance(v, tuple) else v for k, v in mode.items()},
            "policies": list(POLICIES), "noise_range": list(NOISE), "workers": args.workers,
            "cpus": os.cpu_count(), "lookahead": FleetQueue().lookahead,
            "replan_seconds": FleetQueue().replan_seconds, "seconds": round(elapsed, 1)}
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ("operator-admission-quick.json" if args.quick else
                      "operator-admission.json")
    path.write_text(json.dumps({"meta": meta, "summary": rows, "runs": runs}, indent=1) + "\n")
    print(f"wrote {path} ({elapsed:.1f} s)")


if __name__ == "__main__":
    main()
