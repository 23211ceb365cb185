"""Replay >= 1,000 generated jobs through the real QIP, static and learning (issue 20).

Each job is decided by ``core.qip.engine.decide`` over the nominal QPU assessments (time
model, estimated success, default power model); the learning variant first applies what
``core.learning.learn`` teaches from the records of the jobs before it (the policy's
default bounds: minSamples 5, maxCorrection 4, halfLife 24h, window 100; nothing tuned on
this replay, so the figures are held out). Outcomes come from the model in ``world.py``
(fra: 2x slower and 3x the error rates from the start, 5x and a queue from job 400),
calibrated on real simulator runs (``calibrate.py``). Reported per block of 100 jobs and in
total, per variant and seed: deadline misses (refusals included), verification failures,
the run-time estimate's MAPE, energy per job (estimated and as run), and the share of the
quantum shots fra took; plus what was learned and one decision's learned rules.

    .venv/bin/python benchmarks/qip/learning_replay.py            # 3 seeds x 1,000 jobs, ~1 min
    .venv/bin/python benchmarks/qip/learning_replay.py --jobs 300 --seeds 1 --no-write
    .venv/bin/python benchmarks/qip/learning_replay.py --drifted ams --slower 4 \
        --noisier 4 --drift-at 1000 --output /tmp/held-out.json   # another drift, held out
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from calibrate import calibrate  # noqa: E402
from world import (  # noqa: E402
    DEFAULT,
    FLEET,
    Job,
    Scenario,
    ShareOutcome,
    generate,
    run_share,
    verify,
)

from qbackbone.api.policy import InvocationPolicySpec  # noqa: E402
from qbackbone.core.energy.model import TECHNOLOGY_DEFAULTS, classical_joules  # noqa: E402
from qbackbone.core.history.collect import problem_class  # noqa: E402
from qbackbone.core.history.record import FragmentRecord, JobRecord  # noqa: E402
from qbackbone.core.history.store import HistoryStore  # noqa: E402
from qbackbone.core.learning import LearnedView, apply_learning, learn  # noqa: E402
from qbackbone.core.qip.engine import QIPDecision, decide  # noqa: E402
from qbackbone.core.qip.inputs import JobInputs, OperationalContext, QPUAssessment  # noqa: E402

RESULTS = HERE.parent / "results" / "qip-learning.json"
POWER = TECHNOLOGY_DEFAULTS["superconducting"]
BLOCK = 100
EARLY = 10  # the first block again, in steps of this many jobs: learning starting
POLICY = InvocationPolicySpec.model_validate({"learning": {"enabled": True}})


@dataclass
class Outcome:
    """One replayed job."""

    path: str | None
    missed: bool
    verify_failed: bool
    ape: float | None  # |predicted - actual| / actual run time (quantum jobs)
    estimated_joules: float | None
    joules: float
    shots_by_qpu: dict[str, int] = field(default_factory=dict)


def assessments(job: Job) -> list[QPUAssessment]:
    """The nominal view of every QPU for this job."""
    return [QPUAssessment(q.descriptor(), True, True, job.features().two_qubit_depth,
                          q.estimate(job), power=POWER) for q in FLEET]


def context(job: Job, view: LearnedView) -> OperationalContext:
    """Deadline and fallback of the job, and the learned verdict of its problem class."""
    seconds = job.classical_seconds()
    return OperationalContext(mode="Auto", deadline_remaining=job.deadline,
                              classical_seconds=seconds,
                              classical_method=None if seconds is None else "statevector",
                              classical_joules=None if seconds is None
                              else classical_joules(seconds),
                              quantum_pays=view.quantum_pays, quantum_pays_why=view.why)


def replay_job(job: Job, qip: QIPDecision, view: LearnedView, rng: random.Random,
               k: tuple[float, float], scenario: Scenario = DEFAULT
               ) -> tuple[Outcome, JobRecord]:
    """Run the decision in the world model; the outcome and the job's history record."""
    by_name = {q.name: q for q in FLEET}
    estimated = {a.descriptor.name: a.estimated_fidelity or 1.0 for a in view.assessments}
    shares: list[ShareOutcome] = []
    fragments: list[FragmentRecord] = []
    implied = None
    verified: bool | None = None
    ape = None
    if qip.path == "SingleQPU":
        for s in qip.shares:
            out = run_share(job, by_name[s.qpu], s.shots, rng, *k, scenario)
            shares.append(out)
            q = by_name[s.qpu]
            fragments.append(FragmentRecord(
                qpu=s.qpu, shots=float(s.shots), setup_seconds=q.setup_time,
                shot_seconds=q.shot_time, predicted_seconds=s.end - s.start,
                actual_seconds=out.seconds, actual_wait_seconds=out.wait,
                estimated_success=q.estimate(job)))
        actual = max(s.wait + s.seconds for s in shares)
        predicted = max(s.end for s in qip.shares)
        ape = abs(predicted - actual) / actual
        verified, implied = verify(job, shares, estimated, rng)
        joules = sum(POWER.joules(s.seconds, s.shots) for s in shares)
    elif qip.path == "Classical":
        actual = (job.classical_seconds() or 0.0) * random.Random(job.index).uniform(0.9, 1.1)
        verified, joules = True, classical_joules(actual)
    else:
        actual, joules = float("inf"), 0.0
    missed = actual > job.deadline
    finished = job.arrival + (actual if actual != float("inf") else 0.0)
    record = JobRecord(
        name=f"job-{job.index}", namespace="replay", finished_at=finished, policy="default",
        policy_generation=1, problem_class=problem_class(
            {"qubits": job.qubits, "twoQubitDepth": job.features().two_qubit_depth}, True),
        path=qip.path, reason=str(qip.reason), phase="Succeeded" if qip.path else "Failed",
        qpus=[s.qpu for s in shares], fragments=fragments, implied_success=implied,
        verified=verified, deadline_seconds=job.deadline, deadline_met=not missed,
        total_seconds=None if actual == float("inf") else actual,
        estimated_energy_joules=qip.energy_joules, energy_joules=joules,
        learned=[f"{r.name}:{r.qpu or ''}" for r in view.rules])
    return Outcome(qip.path, missed, verified is False, ape, qip.energy_joules, joules,
                   {s.qpu: s.shots for s in shares}), record


def replay(jobs: list[Job], learning: bool, seed: int, k: tuple[float, float],
           scenario: Scenario = DEFAULT) -> tuple[list[Outcome], dict[str, Any]]:
    """Every job in order; the outcomes and what the learning variant used at the end."""
    rng = random.Random(seed * 7919 + 1)
    history: list[JobRecord] = []  # newest last; learn() reads the newest few
    store = HistoryStore(":memory:")  # what qbackbone run would keep
    outcomes: list[Outcome] = []
    example: dict[str, Any] = {}
    learned_at: dict[str, dict[str, float]] = {}
    limit = POLICY.learning.window * len(FLEET) * 2
    model = None
    for job in jobs:
        nominal = assessments(job)
        view = LearnedView(nominal)
        if learning:
            model = learn(history[-limit:], POLICY.learning, job.arrival)
            view = apply_learning(nominal, model, problem_class(
                {"qubits": job.qubits, "twoQubitDepth": job.features().two_qubit_depth}, True))
        qip = decide(JobInputs(job.features(), context(job, view), tuple(view.assessments)),
                     POLICY)
        qip.rules[:0] = view.rules
        outcome, record = replay_job(job, qip, view, rng, k, scenario)
        outcomes.append(outcome)
        history.append(record)
        store.append(record)
        if model is not None and job.index in (49, scenario.drift_at - 1, len(jobs) - 1):
            learned_at[f"job{job.index}"] = model.adjustments()
        if learning and job.index == len(jobs) - 1:
            example = {"job": job.index, "path": qip.path, "message": qip.message,
                       "learnedRules": [r.to_wire() for r in view.rules]}
    store.prune(jobs[-1].arrival)
    summary = {"recordsKept": store.count(), "exampleDecision": example,
               "learnedAdjustments": learned_at}
    store.close()
    return outcomes, summary


def figures(outcomes: list[Outcome], drifted: str = DEFAULT.qpu) -> dict[str, Any]:
    """Totals over a list of outcomes."""
    apes = [o.ape for o in outcomes if o.ape is not None]
    quantum_shots = sum(sum(o.shots_by_qpu.values()) for o in outcomes)
    estimated = [o.estimated_joules for o in outcomes if o.estimated_joules is not None]
    return {
        "jobs": len(outcomes),
        "deadlineMisses": sum(o.missed for o in outcomes),
        "verificationFailures": sum(o.verify_failed for o in outcomes),
        "refused": sum(o.path is None for o in outcomes),
        "classical": sum(o.path == "Classical" for o in outcomes),
        "runTimeMAPE": round(statistics.fmean(apes), 4) if apes else None,
        "energyPerJobJoules": round(statistics.fmean(o.joules for o in outcomes), 1),
        "estimatedEnergyPerJobJoules": round(statistics.fmean(estimated), 1)
        if estimated else None,
        "driftedShotShare": round(sum(o.shots_by_qpu.get(drifted, 0) for o in outcomes)
                              / quantum_shots, 4) if quantum_shots else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Replay, print a table, write the results file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--drifted", choices=[q.name for q in FLEET], default=DEFAULT.qpu,
                        help="the QPU that departs from its QPUNode")
    for flag, what in (("slower", "real time / nominal"), ("noisier", "real / calibrated "
                       "error rates"), ("drift-at", "job from which the later figures hold"),
                       ("later-slower", "time factor after drift-at"),
                       ("later-noisier", "error factor after drift-at"),
                       ("later-wait", "mean queue wait (s) after drift-at")):
        default = getattr(DEFAULT, flag.replace("-", "_"))
        parser.add_argument(f"--{flag}", type=type(default), default=default,
                            help=f"{what} (default {default})")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    scenario = Scenario(args.drifted, args.slower, args.noisier, args.drift_at,
                        args.later_slower, args.later_noisier, args.later_wait)
    started = time.perf_counter()
    cal = calibrate()
    k = (cal["kMedian"], cal["kLogSpread"])
    runs = []
    for seed in range(1, args.seeds + 1):
        jobs = generate(args.jobs, seed)
        for learning in (False, True):
            outcomes, summary = replay(jobs, learning, seed, k, scenario)
            blocks = [figures(outcomes[i:i + BLOCK], scenario.qpu)
                      for i in range(0, len(outcomes), BLOCK)]
            early = [figures(outcomes[i:i + EARLY], scenario.qpu)
                     for i in range(0, min(BLOCK, len(outcomes)), EARLY)]
            runs.append({"seed": seed, "variant": "learning" if learning else "static",
                         "total": figures(outcomes, scenario.qpu), "perBlock": blocks,
                         f"first{BLOCK}Per{EARLY}": early, **summary})
            t = runs[-1]["total"]
            print(f"seed {seed} {runs[-1]['variant']:8s} misses {t['deadlineMisses']:4d} "
                  f"verifyFail {t['verificationFailures']:4d} MAPE {t['runTimeMAPE']} "
                  f"J/job {t['energyPerJobJoules']} {scenario.qpu}Share "
                  f"{t['driftedShotShare']}")
    result = {
        "benchmark": "qip-learning replay (issue 20)",
        "command": "python benchmarks/qip/learning_replay.py"
        + ("" if (args.jobs, args.seeds) == (1000, 3) else f" --jobs {args.jobs} "
           f"--seeds {args.seeds}")
        + ("" if scenario == DEFAULT else " " + " ".join(
            f"--{k} {v}" for k, v in (("drifted", scenario.qpu), ("slower", scenario.slower),
                                      ("noisier", scenario.noisier),
                                      ("drift-at", scenario.drift_at),
                                      ("later-slower", scenario.later_slower),
                                      ("later-noisier", scenario.later_noisier),
                                      ("later-wait", scenario.later_wait)))),
        "model": "outcomes simulated by benchmarks/qip/world.py (not real runs); its noise "
        "scale calibrated on the real simulator runs below",
        "calibration": cal, "scenario": scenario.to_wire(), "blockSize": BLOCK,
        "policyLearning": POLICY.learning.to_wire(),
        "seconds": round(time.perf_counter() - started, 1), "runs": runs,
    }
    if not args.no_write:
        args.output.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
