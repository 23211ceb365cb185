"""Instances for the case-study benchmark: a fleet modelled on real devices and a stream of
cut jobs at a given load and deadline tightness.

Device figures are medians of the offline calibration that qiskit-ibm-runtime's fake backends
carry (``benchmarks/scheduler/derive_fleet.py`` prints them again). Derived per device:

* ``max_depth = floor(ln 2 / (e_2q + t_2q / T2))``: two-qubit layers before a qubit's
  estimated fidelity (gate error plus dephasing during the gate) falls below 1/2;
* ``shot_time = rep_delay + t_readout + max_depth * t_2q`` (repetition delay, readout and the
  deepest admissible circuit: an upper bound per shot);
* ``setup_time``: the fake backends carry no per-job overhead; it is a generator parameter
  (default 1 s for compile, load and submission).

Jobs: a cut plan with 1-3 parts in a chain (part i's measured wire prepares part i+1), 1 wire
per cut, part sizes and depths uniform in the given ranges, base shots from a list; each part
runs ``base_shots * 9**wires`` shots with LOCC cuts (``16**wires`` with LO cuts). Arrivals are
Poisson with rate ``load * n_qpus / mean_work`` (mean_work: a job's QPU-seconds on an average
eligible QPU), so load 1 offers the fleet as much work as it can do. Deadline:
``arrival + deadline_coef * t_ref`` where ``t_ref`` is the job's critical path with each
subcircuit alone on its fastest eligible QPU (no splitting, no contention). Arrivals and
deadlines are rounded to whole microseconds, shot times up to 0.1 us: the data then sit on the
exact model's time grid, so CP-SAT solves the same problem the heuristics see.

Options that widen the instance shapes (each defaults to the behaviour above, so an instance
with the defaults is the same as before the options existed). Each option that draws random
numbers draws them from its own stream derived from ``seed``
(``random.Random(f"{seed}/<name>")``), so switching one on changes only what it claims: the
same seed gives the same jobs with and without it (except ``dag_density``, which draws other
cut plans).

* ``availability_spread``: QPU ``k`` becomes available at ``U(0, spread * w)`` (whole
  microseconds), ``w`` the mean work of a job (QPU-seconds on an average eligible QPU):
  work admitted earlier or a calibration still holds it. 0: every QPU free at time 0.
* ``setup_range``: each QPU's setup time uniform in ``(lo, hi)`` seconds (whole microseconds)
  instead of one ``setup_time`` for all: per-device compile, load and submission overheads.
* ``deadline_basis``: ``"critical_path"`` (the default above: the longest path over the
  LOCC precedence) or ``"total"``: ``t_ref`` is the sum of the subcircuits' times, as if the
  job ran its subcircuits one after another. Equal for chains and single parts; with DAGs
  (``dag_density``) or LO-cut jobs the critical path is shorter, so its deadlines are tighter
  and meeting them needs parallel branches on different QPUs at once.
* ``dag_density``: 0 keeps the chain cut plans. Above 0, a job's parts (count from
  ``parts_weights``) are cut along a random DAG: each pair ``a < b`` gets one wire ``a -> b``
  with probability ``dag_density``, at most ``max_wires`` wires per job (a random subset
  when more were drawn), so jobs get fan-outs, joins, parallel branches and parts without
  any precedence. Every wire multiplies every part's shots (``9**wires``): pick small
  ``base_shots`` with dense DAGs.
* ``no_precedence_share``: the probability that a job is LO-cut (its parts run ``16**wires``
  shots each, with no precedence between them); a LOCC-aware scheduler may re-cut it to LOCC.
  Arrivals stay those of the LOCC-cut jobs (the load counts every job's LOCC work); the
  deadline is the LO job's own.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from .model import QPU, CutPlan, Job, Problem, flip_cut, job_from_cut_plan


@dataclass(frozen=True, slots=True)
class DeviceProfile:
    """Median calibration of one device (seconds; errors as probabilities)."""

    name: str
    qubits: int
    error_2q: float
    time_2q: float
    time_readout: float
    t1: float
    t2: float
    rep_delay: float

    @property
    def max_depth(self) -> int:
        return math.floor(math.log(2) / (self.error_2q + self.time_2q / self.t2))

    @property
    def shot_time(self) -> float:
        """Rounded up to 0.1 us, so that times are exact on the exact model's grid."""
        t = self.rep_delay + self.time_readout + self.max_depth * self.time_2q
        return math.ceil(t * 1e7 - 1e-6) / 1e7


#: From qiskit-ibm-runtime 0.51 fake backends (FakeManilaV2, ..., FakeBrisbane).
DEVICES: dict[str, DeviceProfile] = {
    d.name: d
    for d in (
        DeviceProfile("manila", 5, 1.009e-2, 344.9e-9, 5.351e-6, 144.7e-6, 54.4e-6, 250e-6),
        DeviceProfile("jakarta", 7, 9.003e-3, 337.8e-9, 5.518e-6, 117.5e-6, 34.2e-6, 250e-6),
        DeviceProfile("guadalupe", 16, 1.014e-2, 380.4e-9, 5.351e-6, 71.9e-6, 88.3e-6, 250e-6),
        DeviceProfile("kolkata", 27, 7.542e-3, 380.4e-9, 0.676e-6, 111.5e-6, 82.7e-6, 100e-6),
        DeviceProfile("sherbrooke", 127, 7.788e-3, 533.3e-9, 1.216e-6, 278.4e-6, 170.0e-6, 250e-6),
        DeviceProfile("torino", 133, 4.190e-3, 68.0e-9, 1.560e-6, 185.0e-6, 140.9e-6, 250e-6),
        DeviceProfile("kyiv", 127, 1.172e-2, 561.8e-9, 1.244e-6, 287.1e-6, 118.1e-6, 250e-6),
        DeviceProfile("brisbane", 127, 7.719e-3, 660.0e-9, 1.300e-6, 232.0e-6, 150.0e-6, 250e-6),
    )
}

#: Fleet order: small PoP-sized devices first, so a small fleet is heterogeneous.
FLEET_MIX: tuple[str, ...] = (
    "kolkata", "guadalupe", "sherbrooke", "jakarta", "torino", "manila", "kyiv", "brisbane",
)


def make_fleet(
    n_qpus: int, setup_time: float = 1.0, mix: Sequence[str] = FLEET_MIX
) -> tuple[QPU, ...]:
    """``n_qpus`` QPUs cycling through ``mix`` (names ``<device>-<k>``)."""
    fleet = []
    for i in range(n_qpus):
        d = DEVICES[mix[i % len(mix)]]
        fleet.append(QPU(f"{d.name}-{i // len(mix)}", d.qubits, d.max_depth, d.shot_time,
                         setup_time))
    return tuple(fleet)


@dataclass(frozen=True, slots=True)
class InstanceParams:
    """Parameters of one generated instance (documented in the module docstring)."""

    n_jobs: int = 20
    n_qpus: int = 8
    load: float = 1.0
    deadline_coef: float = 1.5
    seed: int = 0
    setup_time: float = 1.0
    base_shots: tuple[int, ...] = (250, 500, 1000)
    parts_weights: tuple[float, ...] = (0.2, 0.5, 0.3)  # P(1 part), P(2), P(3)
    qubits_range: tuple[int, int] = (3, 24)
    depth_range: tuple[int, int] = (10, 80)
    mix: tuple[str, ...] = FLEET_MIX
    availability_spread: float = 0.0
    setup_range: tuple[float, float] | None = None
    deadline_basis: Literal["critical_path", "total"] = "critical_path"
    dag_density: float = 0.0
    max_wires: int = 3
    no_precedence_share: float = 0.0

    def __post_init__(self) -> None:
        if self.availability_spread < 0:
            raise ValueError("availability_spread must be >= 0")
        if self.setup_range is not None and not 0 <= self.setup_range[0] <= self.setup_range[1]:
            raise ValueError("setup_range must be (lo, hi) with 0 <= lo <= hi")
        if self.deadline_basis not in ("critical_path", "total"):
            raise ValueError("deadline_basis must be 'critical_path' or 'total'")
        if not 0 <= self.dag_density <= 1 or not 0 <= self.no_precedence_share <= 1:
            raise ValueError("dag_density and no_precedence_share must be in [0, 1]")
        if self.max_wires < 0:
            raise ValueError("max_wires must be >= 0")


def _stream(p: InstanceParams, name: str) -> random.Random:
    """The random stream of one option, derived from the instance seed."""
    return random.Random(f"{p.seed}/{name}")


def random_plan(rng: random.Random, p: InstanceParams, fleet: Sequence[QPU]) -> CutPlan:
    """A cut plan whose every part fits at least one QPU of ``fleet``: a chain, or a random
    DAG with ``p.dag_density`` > 0 (module docstring)."""
    k = rng.choices(range(1, len(p.parts_weights) + 1), weights=p.parts_weights)[0]
    parts: list[tuple[int, int]] = []
    while len(parts) < k:
        q = rng.randint(*p.qubits_range)
        d = rng.randint(*p.depth_range)
        if any(qpu.qubits >= q and qpu.max_depth >= d for qpu in fleet):
            parts.append((q, d))
    if p.dag_density <= 0:
        wires = tuple((i, i + 1, 1) for i in range(k - 1))
    else:
        pairs = [(a, b) for a in range(k) for b in range(a + 1, k) if rng.random() < p.dag_density]
        if len(pairs) > p.max_wires:
            pairs = sorted(rng.sample(pairs, p.max_wires))
        wires = tuple((a, b, 1) for a, b in pairs)
    return CutPlan(tuple(parts), wires, rng.choice(p.base_shots))


def reference_time(
    job: Job, fleet: Sequence[QPU], basis: Literal["critical_path", "total"] = "critical_path"
) -> float:
    """Critical path (or, with ``basis="total"``, the sum of the subcircuits' times) with
    every subcircuit alone on its fastest eligible QPU."""
    best = [
        min((q.duration(s.shots) for q in fleet if q.can_run(s)), default=math.inf)
        for s in job.subcircuits
    ]
    if basis == "total":
        return sum(best)
    finish = [0.0] * len(best)
    preds = job.predecessors()
    for i in job.topological_order():
        finish[i] = max((finish[p] for p in preds[i]), default=0.0) + best[i]
    return max(finish)


def mean_work(job: Job, fleet: Sequence[QPU]) -> float:
    """QPU-seconds of a job on an average eligible QPU."""
    total = 0.0
    for s in job.subcircuits:
        elig = [q.duration(s.shots) for q in fleet if q.can_run(s)]
        total += sum(elig) / len(elig)
    return total


def generate(
    p: InstanceParams, plans: Sequence[CutPlan] | None = None
) -> Problem:
    """One instance; with ``plans`` (e.g. from the cutting engine) jobs reuse those plans."""
    rng = random.Random(p.seed)
    fleet = make_fleet(p.n_qpus, p.setup_time, p.mix)
    if p.setup_range is not None:
        srng = _stream(p, "setup")
        fleet = tuple(replace(q, setup_time=round(srng.uniform(*p.setup_range), 6))
                      for q in fleet)
    if plans:
        chosen = [plans[rng.randrange(len(plans))] for _ in range(p.n_jobs)]
    else:
        chosen = [random_plan(rng, p, fleet) for _ in range(p.n_jobs)]
    shapes = [job_from_cut_plan(f"j{i:03d}", 0.0, 0.0, plan) for i, plan in enumerate(chosen)]
    work = sum(mean_work(j, fleet) for j in shapes) / max(1, len(shapes))
    if p.no_precedence_share > 0:  # after the rate: arrivals as with every job LOCC-cut
        krng = _stream(p, "cut-kind")
        shapes = [flip_cut(j) if krng.random() < p.no_precedence_share else j for j in shapes]
    rate = p.load * p.n_qpus / work
    t = 0.0
    jobs = []
    for shape in shapes:
        t = round(t + rng.expovariate(rate), 6)  # whole microseconds
        ref = reference_time(shape, fleet, p.deadline_basis)
        deadline = round(t + p.deadline_coef * ref, 6)
        assert shape.plan is not None
        jobs.append(job_from_cut_plan(shape.name, t, deadline, shape.plan, shape.cut_kind))
    if p.availability_spread > 0:
        arng = _stream(p, "availability")
        fleet = tuple(
            replace(q, available_at=round(arng.uniform(0.0, p.availability_spread * work), 6))
            for q in fleet)
    return Problem(fleet, tuple(jobs))
