"""Named instance classes for the scheduler's quality benchmark, so it is not tuned to one shape.

:data:`INSTANCE_CLASSES` maps a class name to a function ``seed -> Problem``. Every class keeps
its data on the exact model's time grid (arrivals, deadlines, setups and availability in whole
microseconds, shot times in 0.1 us), so CP-SAT (:func:`.exact.solve_exact`) solves the same
problem the heuristics see, and every class is small enough (5-8 jobs, 2-4 QPUs) for CP-SAT to
prove the optimum in seconds on most seeds. Classes (``N`` = ``5x3`` or ``8x4``, jobs x QPUs):

* ``N-moderate`` / ``N-tight``: :func:`.generator.generate` as the case study uses it (chain
  cut plans, one setup time for every QPU, every QPU free at time 0, critical-path deadlines)
  at load 2; moderate: deadline coefficient 1.5 (the optimum serves all or nearly all jobs,
  greedy EDF often not); tight: coefficient 1 (the optimum serves 60-80%).
* ``N-availability``: the tight class with ``availability_spread`` 1: each QPU is busy with
  earlier work until a random time, up to one mean job's work.
* ``N-hetero-setup``: the tight class with each QPU's setup time drawn from 0.2-3 s instead of
  1 s for all (splitting over a QPU with a long setup rarely pays).
* ``N-dense-locc``: jobs of 2-4 parts cut along random DAGs (``dag_density`` 0.6, at most 3
  wires: fan-outs, joins, parallel branches), a fifth of them LO-cut (no precedence), small
  base shots (a wire multiplies every part's shots by 9), load 1.5; deadlines from the sum of
  the subcircuits' times (``deadline_basis="total"``), coefficient 1.25.
* ``N-critical-path``: the same jobs and arrivals as ``N-dense-locc`` with the same seed, and
  the same coefficient over the critical path of the LOCC precedence: every deadline is at
  most the ``N-dense-locc`` one, tighter where a job has parallel branches (or is LO-cut),
  whose parts then must run on different QPUs at the same time.
* ``milq-5x2``: :func:`milq_like` (below) on MILQ's setting ``{5, 5}`` with circuits up to 10
  qubits (those above 5 cut in two, as MILQ's heuristic benchmark does); ``milq-5x3`` and
  ``milq-8x3``: on ``{5, 6, 20}``, circuits up to 20 qubits, uncut (its MILP benchmark). All
  with horizon coefficient 1: the optimum serves about half to four fifths of the jobs.

MILQ-like instances
-------------------
The public benchmark generator of MILQ (github.com/qc-tum/milq, ``data/benchmark/``; Seitz,
Geiger, Mendl, "Multithreaded parallelism for heterogeneous clusters of QPUs",
arXiv:2311.17490) draws, per setting of machines with qubit capacities (``{A: 5, B: 5}`` and
``{A: 5, B: 6, C: 20}``), batches of 5 circuits released together, sizes uniform in
``2..max capacity`` (its MILP benchmark; its heuristic benchmark goes up to the sum of the
capacities and cuts a larger circuit into parts filling the machines, largest first); a
processing time per circuit and machine ``U(0, 10) + qubits / 5`` time units, drawn
independently per machine; a sequence-dependent setup time ``U(0, 10) + (q_i + q_j) / 10``
between consecutive circuits on a machine and ``32`` before the first; and it minimises the
makespan. What maps onto our model, and how :func:`milq_like` maps it (our code, not theirs):

* machines -> QPUs with those qubit counts and no depth limit that binds (``max_depth``
  10 000); one MILQ time unit is one second;
* circuit sizes: uniform in ``2..max_qubits`` (default the largest capacity, as its MILP
  benchmark); a larger circuit is cut into parts filling the QPUs largest first, never
  leaving a 1-qubit part (as its heuristic benchmark), as a chain of single-wire LOCC cuts
  (a GHZ circuit), so its parts run with the 9x-per-wire shot overhead and in order;
* processing time ``U(0, 10) + qubits / 5`` s per circuit on a reference QPU of 1 ms per shot
  (its shots), times each QPU's own shot time, ``1 ms * U(0.5, 1.5)``. Does not map: MILQ
  draws the time per (circuit, machine) independently (unrelated machines); ours are
  related (a circuit's shots times a QPU's speed);
* setup: per QPU, ``U(0, 10) + capacity / 10`` s (its random part drawn once per QPU, its size
  part with the QPU's capacity as the typical pair of sizes). Does not map: MILQ's setup
  depends on which circuit follows which; ours is the QPU's;
* the initial setup of 32: each QPU is available at ``32 - setup``, so its first fragment,
  with its setup, starts processing at 32;
* jobs are not split over QPUs (``splittable=False``), as in MILQ;
* makespan -> deadlines: every job arrives at 0 and has the same deadline, ``horizon_coef``
  times a lower bound on the makespan of serving all (the larger of the fleet's total
  minimum work spread over the QPUs and the longest job alone); maximising the jobs served
  by that horizon is the decision form of MILQ's objective;
* does not map: MILQ runs several circuits on one machine at once when their qubits fit (its
  "multithreading"); one of our QPUs runs one fragment at a time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from .generator import InstanceParams, generate, reference_time
from .model import QPU, CutPlan, Job, Problem, job_from_cut_plan

#: MILQ-like instances: the reference shot time (s) that turns a processing time into shots,
#: MILQ's setup before the first circuit on a machine (s), and the QPUs' depth limit.
MILQ_SHOT_TIME = 1e-3
MILQ_FIRST_SETUP = 32.0
MILQ_MAX_DEPTH = 10_000


@dataclass(frozen=True, slots=True)
class MilqParams:
    """Parameters of one MILQ-like instance (module docstring)."""

    n_jobs: int = 5
    capacities: tuple[int, ...] = (5, 6, 20)
    max_qubits: int | None = None  # None: the largest capacity (no cuts)
    horizon_coef: float = 1.0
    splittable: bool = False
    seed: int = 0


def milq_partition(size: int, capacities: tuple[int, ...]) -> list[int]:
    """Part sizes of a ``size``-qubit circuit on QPUs of ``capacities``: uncut when it fits
    the largest; else parts filling the QPUs largest first, never a 1-qubit part."""
    if size <= max(capacities):
        return [size]
    parts: list[int] = []
    left = size
    for cap in sorted(capacities, reverse=True):
        take = min(left, cap)
        if left - take == 1:
            take -= 1
        parts.append(take)
        left -= take
        if left == 0:
            return parts
    raise ValueError(f"a {size}-qubit circuit does not fit QPUs of {capacities}")


def milq_like(p: MilqParams) -> Problem:
    """One MILQ-like instance (module docstring)."""
    rng = random.Random(p.seed)
    qpus = []
    for k, cap in enumerate(p.capacities):
        shot = round(MILQ_SHOT_TIME * rng.uniform(0.5, 1.5), 7)
        setup = round(rng.uniform(0.0, 10.0) + cap / 10, 6)
        qpus.append(QPU(f"m{k}", cap, MILQ_MAX_DEPTH, shot, setup,
                        round(max(0.0, MILQ_FIRST_SETUP - setup), 6)))
    top = p.max_qubits or max(p.capacities)
    plans = []
    for _ in range(p.n_jobs):
        size = rng.randint(2, top)
        parts = milq_partition(size, p.capacities)
        seconds = rng.uniform(0.0, 10.0) + size / 5
        wires = tuple((i, i + 1, 1) for i in range(len(parts) - 1))
        plans.append(CutPlan(tuple((q, 2 * q) for q in parts), wires,
                             max(1, round(seconds / MILQ_SHOT_TIME))))
    shapes = [job_from_cut_plan(f"c{i}", 0.0, 0.0, plan) for i, plan in enumerate(plans)]
    horizon = round(p.horizon_coef * _makespan_bound(shapes, qpus), 6)
    jobs = [job_from_cut_plan(s.name, 0.0, horizon, plan) for s, plan in zip(shapes, plans,
                                                                           strict=True)]
    if not p.splittable:
        jobs = [replace(j, splittable=False) for j in jobs]
    return Problem(tuple(qpus), tuple(jobs))


def _makespan_bound(jobs: list[Job], qpus: list[QPU]) -> float:
    """A lower bound on the makespan of running every job: the larger of the total minimum
    work (with each QPU's idle start) spread over the QPUs and the longest job alone."""
    work = sum(min(q.duration(s.shots) for q in qpus if q.can_run(s))
               for j in jobs for s in j.subcircuits)
    start = min(q.available_at for q in qpus)
    spread = (work + sum(q.available_at for q in qpus)) / len(qpus)
    longest = max(reference_time(j, qpus) for j in jobs) + start
    return max(spread, longest)


def _generated(**kw: object) -> Callable[[int], Problem]:
    def make(seed: int) -> Problem:
        return generate(InstanceParams(seed=seed, **kw))  # type: ignore[arg-type]
    return make


def _milq(**kw: object) -> Callable[[int], Problem]:
    def make(seed: int) -> Problem:
        return milq_like(MilqParams(seed=seed, **kw))  # type: ignore[arg-type]
    return make


_MODERATE: dict[str, object] = {"load": 2.0, "deadline_coef": 1.5}
_TIGHT: dict[str, object] = {"load": 2.0, "deadline_coef": 1.0}
_DAG: dict[str, object] = {
    "load": 1.5, "dag_density": 0.6, "max_wires": 3, "parts_weights": (0.0, 0.3, 0.4, 0.3),
    "base_shots": (10, 20, 50), "no_precedence_share": 0.2, "deadline_coef": 1.25,
}


def _sizes(n_jobs: int, n_qpus: int) -> dict[str, Callable[[int], Problem]]:
    size = {"n_jobs": n_jobs, "n_qpus": n_qpus}
    tag = f"{n_jobs}x{n_qpus}"
    return {
        f"{tag}-moderate": _generated(**size, **_MODERATE),
        f"{tag}-tight": _generated(**size, **_TIGHT),
        f"{tag}-availability": _generated(**size, **_TIGHT, availability_spread=1.0),
        f"{tag}-hetero-setup": _generated(**size, **_TIGHT, setup_range=(0.2, 3.0)),
        f"{tag}-dense-locc": _generated(**size, **_DAG, deadline_basis="total"),
        f"{tag}-critical-path": _generated(**size, **_DAG, deadline_basis="critical_path"),
    }


#: The benchmark's instance classes: name -> (seed -> Problem); see the module docstring.
INSTANCE_CLASSES: dict[str, Callable[[int], Problem]] = {
    **_sizes(5, 3),
    **_sizes(8, 4),
    "milq-5x2": _milq(n_jobs=5, capacities=(5, 5), max_qubits=10),
    "milq-5x3": _milq(n_jobs=5, capacities=(5, 6, 20)),
    "milq-8x3": _milq(n_jobs=8, capacities=(5, 6, 20)),
}


def on_grid(problem: Problem) -> bool:
    """Every time of ``problem`` on the exact model's grid: arrivals, deadlines, setups and
    availability in whole microseconds, shot times in 0.1 us."""
    def whole(t: float, unit: float) -> bool:
        return math.isclose(t / unit, round(t / unit), rel_tol=0.0, abs_tol=1e-6)
    return (all(whole(q.setup_time, 1e-6) and whole(q.available_at, 1e-6)
                and whole(q.shot_time, 1e-7) for q in problem.qpus)
            and all(whole(j.arrival, 1e-6) and whole(j.deadline, 1e-6) for j in problem.jobs))
