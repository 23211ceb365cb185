"""Problem jobs decomposed by region in the cluster: each round's regional sub-QUBOs that
the QIP sends to QPUs run as fragment pods; the coordinator runs in the operator.

The coordinator (``decompose_and_solve``) is deterministic given its blocks' results, so
the operator *replays* it: every reconcile that moves the job runs it from the start with
the results recorded so far. A block whose result is recorded is answered from its record;
a block the QIP sends classical is solved there and then (exactly, within seconds); a block
the QIP sends to a QPU has no answer yet, so the replay stops (``RoundPending``) once every
block of that round was asked (the coordinator asks a round's blocks together, in threads).
Those blocks become one round of fragment pods (``RoundSource``), admitted by the joint L3
plan as one job's parallel parts. When every fragment has its counts, the blocks' results
are written to a ``<job>-round-<r>`` ConfigMap and the replay goes on to the next round, or
to the final repair and verification. A restarted operator replays from the records and
resumes the round in flight (its pods and admission are found by name).

Block k of round r is identified by its seed (the coordinator seeds it ``seed + 1000 r + k``);
each record also keeps the block's units, and a replay that asks a different block under a
recorded key fails the job rather than apply an answer to the wrong question.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from qbackbone.api.conditions import ConditionType, Reason
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.quantumjob import Plan, PlannedFragment, PlannedSubcircuit, QuantumJobStatus
from qbackbone.core.errors import JobFailure
from qbackbone.core.learning import LearnedModel
from qbackbone.core.optimize.decompose import (
    BlockResult,
    Region,
    Settings,
    SubProblem,
    decompose_and_solve,
)
from qbackbone.core.optimize.problem import ReducedProblem
from qbackbone.core.optimize.qubo import bits_from_key, key_from_bits
from qbackbone.core.pipeline.decide import DecidedJob
from qbackbone.core.pipeline.jobrun import JobRun
from qbackbone.core.pipeline.optimize import region_decider
from qbackbone.core.pipeline.reduce import resolve_policy
from qbackbone.core.pipeline.regions import (
    DecompositionPlan,
    QipBlockSolver,
    RegionDecision,
    classical_block,
    decide_decomposed,
    executed,
    plan_decomposition,
    sampled_block,
    verify_decomposition,
)
from qbackbone.core.qpus.fleet import QPU
from qbackbone.k8s.fragments import SINGLE, Need, Shares, Slot, SlotResult, Work
from qbackbone.k8s.single import SingleSource

ROUND_ROLE = "round"
BLOCK_STRIDE = 1000  # seeds of one round's blocks: seed + 1000 r + k (core coordinator)
PARALLEL_BLOCKS = 8  # blocks of a round asked at once (threads): every one is asked


class RoundPending(Exception):
    """Blocks of the current round wait for their QPU samples."""


@dataclass(frozen=True)
class Wanted:
    """A block the QIP sent to a QPU: its sub-problem and the QAOA decision."""

    key: str
    round: int
    units: tuple[int, ...]
    problem: ReducedProblem
    decided: RegionDecision

    @property
    def circuit_job(self) -> DecidedJob:
        """The QAOA sampling job."""
        job = self.decided.circuit_job
        assert job is not None
        return job


def round_name(job: str, index: int) -> str:
    """The ConfigMap recording round ``index``'s block results."""
    return f"{job[:200]}-round-{index}"


def _result_data(result: BlockResult, units: Sequence[int]) -> dict[str, Any]:
    return {"x": key_from_bits(result.x), "solver": result.solver, "path": result.path,
            "qpu": result.qpu, "backend": result.backend, "method": result.method,
            "shots": result.shots, "noisy": result.noisy, "mitigation": result.mitigation,
            "feasibleBeforeRepair": result.feasible_before_repair, "note": result.note,
            "units": list(units)}


def _result(raw: Mapping[str, Any]) -> tuple[BlockResult, tuple[int, ...]]:
    x = str(raw["x"])
    return BlockResult(
        bits_from_key(x, len(x)) if x else np.zeros(0, dtype=np.int8), str(raw["solver"]),
        str(raw["path"]), raw.get("qpu"), raw.get("backend"), str(raw.get("method") or ""),
        int(raw.get("shots") or 0), bool(raw.get("noisy")), raw.get("mitigation"),
        raw.get("feasibleBeforeRepair"), str(raw.get("note") or "")), tuple(raw["units"])


class RecordedSolver(QipBlockSolver):
    """Answers recorded blocks from their records, classical ones at once, and stops the
    replay at the first round with a block sent to a QPU (``wanted``)."""

    def __init__(self, run: JobRun, fleet: Sequence[QPU], policy: InvocationPolicy,
                 base_seed: int, known: dict[str, tuple[BlockResult, tuple[int, ...]]],
                 learned: LearnedModel | None = None) -> None:
        super().__init__(run, fleet, region_decider(run, policy, learned),
                         policy.spec.hardware.ideal_simulators == "Fallback")
        self.base_seed = base_seed
        self.known = known
        self.fresh: dict[int, set[str]] = {}  # round -> keys solved in this replay
        self.wanted: dict[str, Wanted] = {}
        self._lock = threading.Lock()

    def key(self, seed: int) -> tuple[int, str]:
        """(round, key) of the block the coordinator seeded with ``seed``."""
        index, k = divmod(seed - self.base_seed, BLOCK_STRIDE)
        return index, f"r{index}-b{k}"

    def __call__(self, sub: SubProblem, region: Region, seed: int) -> BlockResult:
        index, key = self.key(seed)
        with self._lock:
            found = self.known.get(key)
        if found is not None:
            result, units = found
            if units != tuple(sub.demands) or len(result.x) != sub.variables:
                raise JobFailure(Reason.INTERNAL_ERROR, f"the recorded block {key} answered "
                                 f"units {list(units)}; the replay asks {list(sub.demands)}")
            return result
        child, decided = self.decide_block(sub, region, seed)
        with self._lock:
            self.fresh.setdefault(index, set()).add(key)
        if decided.circuit_job is None:
            result = classical_block(child, sub.problem, seed)
            with self._lock:
                self.known[key] = (result, tuple(sub.demands))
            return result
        with self._lock:
            self.wanted[key] = Wanted(key, index, tuple(sub.demands), sub.problem, decided)
        raise RoundPending(key)


@dataclass
class RegionFlow:
    """A decomposed problem job in the operator: its plan, and the rounds recorded so far."""

    run: JobRun
    plan: DecompositionPlan
    fleet: list[QPU]
    policy: InvocationPolicy
    settings: Settings
    remaining: float | None
    started: float  # Unix seconds of the decision: the time budget counts from it
    learned: LearnedModel | None = None  # what the policy learned (decision record)
    known: dict[str, tuple[BlockResult, tuple[int, ...]]] = field(default_factory=dict)
    recorded: set[int] = field(default_factory=set)  # rounds with a record
    unrecorded: dict[int, list[str]] = field(default_factory=dict)  # rounds to record now

    def load(self, records: Mapping[str, Mapping[str, str]]) -> None:
        """Take the round records (ConfigMap data by name) of this job."""
        for name, data in records.items():
            index = int(name.rsplit("-", 1)[1])
            for key, raw in json.loads(data["blocks.json"]).items():
                self.known[key] = _result(raw)
            self.recorded.add(index)

    def step(self, now: float) -> RoundSource | QuantumJobStatus:
        """Replay the coordinator: the next round's fragments, or the verified status."""
        settings = self.settings
        if now - self.started > settings.time_budget:  # spent: no new round
            settings = replace(settings, iterations=len(self.recorded))
        solver = RecordedSolver(self.run, self.fleet, self.policy, settings.seed, self.known,
                                self.learned)
        settings = replace(settings, parallel=PARALLEL_BLOCKS)
        try:
            outcome = decompose_and_solve(self.plan.whole, self.plan.regions, solver, settings)
        except RoundPending:
            pending = min(w.round for w in solver.wanted.values())
            self._to_record(solver, below=pending)
            return RoundSource(pending, list(solver.wanted.values()), self.fleet)
        self._to_record(solver, below=None)
        if settings.iterations < self.settings.iterations and outcome.stop == "iterations":
            outcome.stop = "timeBudget"
        outcome.seconds = round(min(now - self.started, self.settings.time_budget), 4)
        executed(self.run, outcome)
        return verify_decomposition(self.run, self.plan, outcome, self.policy, self.remaining)

    def _to_record(self, solver: RecordedSolver, below: int | None) -> None:
        """Rounds the replay completed without a record (classical blocks only): to record,
        so a later replay cannot solve them differently."""
        for index, keys in solver.fresh.items():
            if index not in self.recorded and (below is None or index < below):
                self.unrecorded[index] = sorted(keys)

    def complete(self, source: RoundSource, results: Mapping[str, SlotResult]) -> None:
        """Every fragment of the round has its counts: the blocks' results, known now."""
        for wanted in source.blocks:
            outcomes = source.parts[wanted.key].outcomes_as_ran(
                {inner: results[outer] for outer, (key, inner) in source.index.items()
                 if key == wanted.key})
            self.known[wanted.key] = (sampled_block(wanted.problem, wanted.decided, outcomes),
                                      wanted.units)
        keys = {k for k in self.known if k.startswith(f"r{source.round}-")}
        self.unrecorded[source.round] = sorted(keys)

    def records(self) -> dict[int, dict[str, str]]:
        """Round records to write now (ConfigMap data by round), marked recorded."""
        out = {}
        for index, keys in sorted(self.unrecorded.items()):
            blocks = {k: _result_data(*self.known[k]) for k in keys}
            out[index] = {"blocks.json": json.dumps(blocks, sort_keys=True)}
            self.recorded.add(index)
        self.unrecorded.clear()
        return out


def plan_regions(run: JobRun, fleet: list[QPU], policies: Mapping[str, InvocationPolicy],
                 seed: int | None, decided_at: float,
                 learned: LearnedModel | None = None) -> RegionFlow | None:
    """The flow of a problem job that goes decomposed (its decision in the status); None when
    it does not (``plan_decomposition``)."""
    policy = resolve_policy(run.job, policies)
    plan = plan_decomposition(run.job, policy, fleet, None, seed or 0)
    if plan is None:
        return None
    settings, remaining = decide_decomposed(run, plan, policy, seed)
    return RegionFlow(run, plan, fleet, policy, settings, remaining, decided_at,
                      learned=learned)


class RoundSource:
    """One round's sub-QUBOs sent to QPUs: each block's QAOA circuit as the fragments of a
    sampling job (``SingleSource``), every block a subcircuit of the joint plan."""

    def __init__(self, index: int, blocks: list[Wanted], fleet: Sequence[QPU]) -> None:
        self.round = index
        self.blocks = sorted(blocks, key=lambda w: int(w.key.rsplit("b", 1)[1]))
        self.parts = {w.key: SingleSource(w.circuit_job) for w in self.blocks}
        self.fleet = list(fleet)
        self._index()

    def _index(self) -> None:
        self.index: dict[str, tuple[str, str]] = {}  # slot key -> (block, its inner slot)
        self.slots: list[Slot] = []
        for key, part in self.parts.items():
            for inner in part.slots:
                outer = Slot(f"{key}-{inner.key}", key, inner.qpu)
                self.index[outer.key] = (key, inner.key)
                self.slots.append(outer)

    @property
    def representative(self) -> DecidedJob:
        """A block's decision over the whole fleet (what the joint plan reads the QPUs'
        models and the policy from)."""
        return replace(self.blocks[0].circuit_job, fleet=self.fleet)

    def _inner(self, slot: Slot) -> tuple[SingleSource, Slot]:
        key, inner = self.index[slot.key]
        part = self.parts[key]
        return part, next(s for s in part.slots if s.key == inner)

    def needs(self) -> list[Need]:
        """Each block's sampling job, as its own subcircuit."""
        return [replace(need, subcircuit=key) for key, part in self.parts.items()
                for need in part.needs()]

    def assign(self, shares: Shares) -> None:
        """The joint plan's split, block by block."""
        for key, part in self.parts.items():
            part.assign({SINGLE: shares[key]})
        self._index()

    def slot_shots(self, slot: Slot, qpu: str | None = None) -> int:
        part, inner = self._inner(slot)
        return part.slot_shots(inner, qpu)

    def work(self, slot: Slot, qpu: str, attempt: int,
             results: Mapping[str, SlotResult]) -> Work | None:
        part, inner = self._inner(slot)
        return part.work(inner, qpu, attempt, {})

    def candidates(self, slot: Slot) -> list[str]:
        part, inner = self._inner(slot)
        return part.candidates(inner)

    def finish(self, results: Mapping[str, SlotResult]) -> QuantumJobStatus:
        """A round does not finish the job (``RegionFlow.complete``)."""
        raise JobFailure(Reason.INTERNAL_ERROR, "a round of regional sub-QUBOs has no status")

    def retarget(self, plan: Plan | None, placed: Mapping[str, str]) -> None:
        """status.plan shows the round as planned."""

    def plan(self, run: JobRun) -> None:
        """status.plan: this round's fragments, one per block and QPU share."""
        fragments = []
        for slot in self.slots:
            descriptor = next(q.descriptor for q in self.fleet if q.name == slot.qpu)
            took = descriptor.setup_time + self.slot_shots(slot) * descriptor.shot_time
            fragments.append(PlannedFragment(
                name=slot.key, subcircuit=slot.subcircuit, qpu=slot.qpu,
                backend=descriptor.backend_name, shots=self.slot_shots(slot),
                planned_start_seconds=0.0, planned_end_seconds=round(took, 4)))
        subcircuits = [PlannedSubcircuit(
            name=w.key, qubits=w.problem.qubo.size,
            depth=w.circuit_job.reduced.features.depth,
            two_qubit_depth=w.circuit_job.reduced.features.two_qubit_depth,
            shots=w.circuit_job.reduced.shots) for w in self.blocks]
        run.status.plan = Plan(subcircuits=subcircuits, fragments=fragments,
                               estimated_makespan_seconds=max(
                                   (f.planned_end_seconds for f in fragments), default=0.0))
        run.condition(ConditionType.SCHEDULED, True, Reason.PLANNED,
                      f"round {self.round + 1}: {len(self.blocks)} regional sub-QUBO(s) on "
                      f"{', '.join(sorted({s.qpu for s in self.slots}))}")

