"""What each fragment pod of a quantum job runs: slots (a share of one subcircuit's shots,
placed on a QPU by the plan) and, per attempt, the circuits compiled for the QPU it runs on.

Pure (no I/O): ``k8s.dispatch`` turns slots into pods. Two sources: the uncut SingleQPU job
(``k8s.single``: one slot per QPU share) and the cut job (one slot per (subcircuit, QPU)
share, the shots of each circuit split as ``FleetRunner`` splits them). For LOCC plans a
preparation subcircuit's circuits depend on its predecessors' measured outcomes, so its
slots are *gated* until every predecessor slot has its result. The staged LOCC state is
replayed from the stored results: every ``circuits``/``submit`` step draws from a generator
seeded by (seed, subcircuit, step), so the replay gives the same circuits and estimate
whatever order results arrived in and whether or not the operator restarted in between.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from qiskit import QuantumCircuit

from qbackbone.api.conditions import ConditionType, Reason
from qbackbone.api.quantumjob import Plan, QuantumJobStatus
from qbackbone.core.circuits.serialize import circuits_from_b64, circuits_to_b64
from qbackbone.core.cutting import CutPlan, CutPlanningError, LoccExecution, reconstruct_lo
from qbackbone.core.cutting.readout import ClbitReadout, MeasuredCounts
from qbackbone.core.errors import JobFailure
from qbackbone.core.execute.cut_readout import CutReadout
from qbackbone.core.mitigation.uncertainty import MitigatedValue
from qbackbone.core.pipeline import DecidedJob
from qbackbone.core.pipeline.distributed import (
    classical_instead,
    cut_plan_for,
    finish_distributed,
)
from qbackbone.core.pipeline.fleet_runner import (
    FragmentRecord,
    fitting_qpus,
    split_circuit_shots,
    subcircuit_shares,
)
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.core.qpus.fleet import QPU
from qbackbone.k8s.builders import JobRef, fragment_input_data
from qbackbone.k8s.results import MeasuredQubits

Counts = list[dict[str, int]]
SINGLE = "main"


@dataclass(frozen=True)
class Slot:
    """One fragment of the plan: a share of a subcircuit's shots, first placed on ``qpu``."""

    key: str  # unique in the job; the pod and result names derive from it
    subcircuit: str
    qpu: str
    gated: bool = False  # an LOCC preparation: waits for its predecessors' results


@dataclass(frozen=True)
class Need:
    """One subcircuit's demand on QPU time, for the joint plan of the waiting jobs.

    ``shots`` are the shots the job asks for; a QPU runs ``multiplier(qpu)`` shots for each
    (a mitigated Estimator share: the shot multiplier of the plan that QPU was assessed with),
    so its QPU time there is ``qpu_shots(qpu, shots)`` shot times. ``fixed``: the split the
    policy fixes (``shotSplitting: Always``: by speed over every QPU it may use, as
    ``qbackbone run`` splits), shots per QPU summing to ``shots``; empty: the plan splits.
    """

    subcircuit: str
    shots: int  # every shot of every circuit it runs, as requested (before mitigation)
    qubits: int
    qpus: tuple[str, ...]  # the QPUs that may run it, preferred first
    after: tuple[str, ...] = ()  # subcircuits whose results it needs first (LOCC)
    multipliers: tuple[tuple[str, float], ...] = ()  # (QPU, shots run per shot); 1 unlisted
    fixed: tuple[tuple[str, int], ...] = ()  # (QPU, shots) of a split the policy fixes

    def multiplier(self, qpu: str) -> float:
        """Shots ``qpu`` runs per shot of this subcircuit (mitigation; 1 without)."""
        return dict(self.multipliers).get(qpu, 1.0)

    def qpu_shots(self, qpu: str, shots: int) -> int:
        """The shots ``qpu`` runs for ``shots`` of this subcircuit (its QPU time)."""
        return math.ceil(shots * self.multiplier(qpu) - 1e-9)


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` in integers proportional to ``weights`` (largest remainder; exact sum)."""
    whole = sum(weights)
    if total <= 0 or whole <= 0:
        return [0] * len(weights)
    raw = [total * w / whole for w in weights]
    out = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: (out[i] - raw[i], i))[:total - sum(out)]:
        out[i] += 1
    return out


#: Shots per subcircuit name and QPU, as the joint plan admitted the job.
Shares = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class Work:
    """What one attempt of a slot runs: circuits compiled for its QPU, shots per circuit, and
    any further input entries (an Estimator fragment's ``estimator.json``)."""

    circuits: list[QuantumCircuit]
    shots: int | list[int]
    seed: int | None
    extra: Mapping[str, str] = field(default_factory=dict)

    def input_data(self, job: JobRef, name: str, qpunode: Mapping[str, Any],
                   result: str | None = None) -> dict[str, str]:
        """The input ConfigMap data of attempt (pod) ``name`` on ``qpunode``."""
        return {**fragment_input_data(job, name, qpunode, self.shots, self.seed,
                                      circuits_to_b64(self.circuits), result), **self.extra}


@dataclass(frozen=True)
class SlotResult:
    """A slot's stored result: counts per circuit it ran (or, an Estimator fragment, its
    mitigated value per observable), and how it ran."""

    counts: Counts
    qpu: str
    backend: str
    fidelity: float
    started: float  # seconds after the decision
    ended: float
    estimates: list[MitigatedValue] | None = None
    measured: list[MeasuredQubits] | None = None  # per circuit: clbits, clbit -> qubit read


class FragmentSource(Protocol):
    """The fragments of a decided quantum job."""

    slots: list[Slot]

    def needs(self) -> list[Need]:
        """What the job asks of the QPUs, for the joint plan."""
        ...

    def assign(self, shares: Shares) -> None:
        """Take the joint plan's shot split: the slots become one per (subcircuit, QPU)."""
        ...

    def slot_shots(self, slot: Slot, qpu: str | None = None) -> int:
        """Every shot the slot runs on ``qpu`` (default: its planned QPU), mitigation's
        shots included: the QPU time it still needs there."""
        ...

    def work(self, slot: Slot, qpu: str, attempt: int,
             results: Mapping[str, SlotResult]) -> Work | None:
        """The attempt's work on ``qpu``; None while a predecessor has no result yet."""
        ...

    def candidates(self, slot: Slot) -> list[str]:
        """QPUs (of the decision's fleet) that could run the slot, preferred first."""
        ...

    def finish(self, results: Mapping[str, SlotResult]) -> QuantumJobStatus:
        """Reconstruct and verify from every slot's result."""
        ...

    def retarget(self, plan: Plan | None, placed: Mapping[str, str]) -> None:
        """Point status.plan's fragments at the QPUs they run on now (``placed``, by slot key):
        a fragment moved off a lost QPU is shown where it moved."""
        ...


def preference(fleet: Sequence[QPU]) -> dict[str, tuple[float, str]]:
    """Sort key of each QPU: fastest shots first, then by name."""
    return {q.name: (q.descriptor.shot_time, q.name) for q in fleet}


@dataclass
class _SubShares:
    """A subcircuit's QPU shares: slot keys and fractions in fleet order."""

    keys: list[str]
    fractions: list[float]


def replay_seed(seed: int | None, stamp: str) -> int:
    """A seed for the LOCC replay: the job's, else one fixed by the decision's stamp."""
    if seed is not None:
        return seed
    return int.from_bytes(hashlib.sha256(stamp.encode()).digest()[:4], "little")


@dataclass
class _Staged:
    """LOCC circuits and submissions, replayed per subcircuit from the stored results."""

    execution: LoccExecution
    seed: int
    generated: dict[str, tuple[list[QuantumCircuit], list[int]]] = field(default_factory=dict)
    submitted: set[str] = field(default_factory=set)

    def _reseed(self, name: str, step: str) -> None:
        self.execution.rng = np.random.default_rng(derive_seed(self.seed, name, step))

    def circuits(self, name: str) -> tuple[list[QuantumCircuit], list[int]] | None:
        ex = self.execution
        if name not in self.generated:
            if any(b.source not in self.submitted for b in ex.incoming[name]):
                return None
            self._reseed(name, "circuits")
            self.generated[name] = ex.circuits(name)
        return self.generated[name]

    def submit(self, name: str, counts: list[MeasuredCounts]) -> None:
        if name not in self.submitted:
            self._reseed(name, "submit")
            self.execution.submit(name, counts)
            self.submitted.add(name)


class CutSource:
    """A cut job: one slot per (subcircuit, QPU share); LOCC preparations gated."""

    def __init__(self, decided: DecidedJob, plan: CutPlan, stamp: str) -> None:
        self.decided, self.plan = decided, plan
        policy = decided.reduced.policy.spec
        self.usable = list(decided.qip.eligible)
        self.staged = (None if plan.method == "lo"
                       else _Staged(LoccExecution(plan), replay_seed(decided.seed, stamp)))
        self.fleet = {q.name: q for q in decided.fleet}
        self.readout = CutReadout(policy.mitigation, decided.run.now, decided.seed)
        self.simulators = policy.hardware.ideal_simulators
        self.always = policy.scheduler.shot_splitting_mode == "Always"
        self.fits: dict[str, list[str]] = {}
        fractions: dict[str, list[tuple[str, float]]] = {}
        for sub in plan.subcircuits:
            fitting = [q for q, _ in fitting_qpus(decided.fleet, self.usable, sub.name,
                                                  self._fit_circuits(sub.name), self.simulators,
                                                  policy.scheduler.split_fidelity_gap)]
            self.fits[sub.name] = [q.name for q in fitting]
            # Until admission (the joint plan's split replaces it): by speed unless Never.
            fractions[sub.name] = subcircuit_shares(self._total_shots(sub.name), fitting,
                                                    policy.scheduler.shot_splitting)
        self.by_speed = fractions  # the split shotSplitting Always keeps through admission
        self._take_fractions(fractions)

    def _take_fractions(self, fractions: Mapping[str, Sequence[tuple[str, float]]]) -> None:
        """One slot per (subcircuit, QPU) with its fraction of the subcircuit's shots."""
        self.shares: dict[str, _SubShares] = {}
        self.slots: list[Slot] = []
        self.of_slot: dict[str, Slot] = {}
        for sub in self.plan.subcircuits:
            gated = bool(self.staged and self.staged.execution.incoming[sub.name])
            keys = []
            for qpu, _ in fractions[sub.name]:
                slot = Slot(f"{sub.name}-{qpu}", sub.name, qpu, gated)
                self.slots.append(slot)
                self.of_slot[slot.key] = slot
                keys.append(slot.key)
            self.shares[sub.name] = _SubShares(keys, [f for _, f in fractions[sub.name]])

    # -- the joint plan ------------------------------------------------------------------------

    def needs(self) -> list[Need]:
        """Each subcircuit's shots on the QPUs it fits; LOCC preparations after their
        measurements."""
        locc = self.staged is not None
        return [Need(sub.name, self._total_shots(sub.name), sub.qubits,
                     tuple(self.candidates(Slot(sub.name, sub.name, ""))),
                     tuple(sub.depends_on) if locc else (), fixed=self._fixed(sub.name))
                for sub in self.plan.subcircuits]

    def _fixed(self, name: str) -> tuple[tuple[str, int], ...]:
        """The subcircuit's split by speed when the policy says ``shotSplitting: Always``."""
        fractions = self.by_speed[name]
        if not self.always or len(fractions) < 2:
            return ()
        shots = apportion(self._total_shots(name), [f for _, f in fractions])
        return tuple((q, n) for (q, _), n in zip(fractions, shots, strict=True) if n > 0)

    def assign(self, shares: Shares) -> None:
        """The plan's shots per (subcircuit, QPU) become the slots' fractions."""
        rank = preference(self.decided.fleet)
        fractions = {}
        for name, per_qpu in shares.items():
            total = sum(per_qpu.values())
            fractions[name] = [(q, per_qpu[q] / total)
                               for q in sorted(per_qpu, key=lambda q: rank[q]) if per_qpu[q] > 0]
        self._take_fractions(fractions)

    def slot_shots(self, slot: Slot, qpu: str | None = None) -> int:
        """The slot's fraction of its subcircuit's shots (cut fragments run as counts, with no
        mitigation shots, on any QPU)."""
        shares = self.shares[slot.subcircuit]
        return round(self._total_shots(slot.subcircuit)
                     * shares.fractions[shares.keys.index(slot.key)])

    # -- planning --------------------------------------------------------------------------------

    def _fit_circuits(self, name: str) -> list[QuantumCircuit]:
        """What decides where a subcircuit fits: its subexperiments, or its LOCC body."""
        sub = self.plan.subcircuit(name)
        if self.staged is None:
            assert sub.subexperiments_qpy is not None
            return circuits_from_b64(sub.subexperiments_qpy)
        body = self.staged.execution.bodies[name].copy()
        body.measure_all()
        return [body]

    def _total_shots(self, name: str) -> int:
        if self.staged is None:
            return sum(self.plan.subcircuit(name).subexperiment_shots)
        return self.staged.execution.shots_per_subcircuit()

    def _logical(self, name: str) -> tuple[list[QuantumCircuit], list[int]] | None:
        if self.staged is None:
            sub = self.plan.subcircuit(name)
            assert sub.subexperiments_qpy is not None
            return circuits_from_b64(sub.subexperiments_qpy), list(sub.subexperiment_shots)
        return self.staged.circuits(name)

    def _assignment(self, slot: Slot) -> tuple[list[QuantumCircuit], list[int], list[int]] | None:
        """(circuits, shots, indices) of the slot's share; None while predecessors run."""
        logical = self._logical(slot.subcircuit)
        if logical is None:
            return None
        circuits, shots = logical
        shares = self.shares[slot.subcircuit]
        mine = split_circuit_shots(shots, shares.fractions)[shares.keys.index(slot.key)]
        picked = [i for i, n in enumerate(mine) if n > 0]
        return [circuits[i] for i in picked], [mine[i] for i in picked], picked

    def _collect(self, results: Mapping[str, SlotResult]) -> None:
        """Submit (LOCC) every subcircuit all of whose slots have results, in order."""
        if self.staged is None:
            return
        for name in self.staged.execution.order:
            keys = self.shares[name].keys
            if name in self.staged.submitted or any(k not in results for k in keys):
                continue
            merged = self._merged(name, results)
            if merged is not None:
                self.staged.submit(name, merged)

    def _merged(self, name: str, results: Mapping[str, SlotResult]
                ) -> list[MeasuredCounts] | None:
        """The subcircuit's counts per circuit, a part per slot with its QPU's readout model."""
        logical = self._logical(name)
        if logical is None:
            return None
        merged = [MeasuredCounts() for _ in logical[0]]
        for key in self.shares[name].keys:
            assignment = self._assignment(self.of_slot[key])
            assert assignment is not None
            result = results[key]
            counts = result.counts
            if len(counts) != len(assignment[2]):
                raise JobFailure(Reason.EXECUTION_FAILED,
                                 f"fragment {key}: {len(counts)} counts for "
                                 f"{len(assignment[2])} circuits")
            for i, c, model in zip(assignment[2], counts, self._models(result), strict=True):
                merged[i].parts.append((c, model))
        return merged

    def _models(self, result: SlotResult) -> list[ClbitReadout | None]:
        """The readout model of each circuit a slot ran (none when its worker did not say
        which qubits it read, or its QPU is gone from the fleet)."""
        qpu = self.fleet.get(result.qpu)
        if qpu is None or result.measured is None or len(result.measured) != len(
                result.counts):
            return [None] * len(result.counts)
        return self.readout.models_of(qpu, result.measured)

    # -- the FragmentSource protocol ---------------------------------------------------------

    def work(self, slot: Slot, qpu: str, attempt: int,
             results: Mapping[str, SlotResult]) -> Work | None:
        """The slot's circuits compiled for ``qpu``; None while a predecessor has no result."""
        self._collect(results)
        assignment = self._assignment(slot)
        if assignment is None:
            return None
        circuits, shots, _ = assignment
        compiled = (self.fleet[qpu].transpile(circuits) if circuits else [])
        if compiled:
            fitting_qpus([self.fleet[qpu]], [qpu], slot.subcircuit, compiled, self.simulators)
        return Work(compiled, shots, derive_seed(self.decided.seed, slot.key, attempt))

    def candidates(self, slot: Slot) -> list[str]:
        """The usable QPUs the subcircuit fits, fastest first."""
        rank = preference(self.decided.fleet)
        return sorted(self.fits[slot.subcircuit], key=lambda q: rank[q])

    def finish(self, results: Mapping[str, SlotResult]) -> QuantumJobStatus:
        """Reconstruct (LO library or LOCC estimate), then ``finish_distributed``."""
        if self.staged is None:
            counts = {}
            for sub in self.plan.subcircuits:
                merged = self._merged(sub.name, results)
                assert merged is not None
                counts[sub.name] = merged
            values, errors = reconstruct_lo(self.plan, counts)
        else:
            self._collect(results)
            values, errors = self.staged.execution.estimate()
        records = [self.record(slot, results[slot.key]) for slot in self.slots]
        return finish_distributed(self.decided, self.plan, values, errors, records,
                                  self.readout)

    def record(self, slot: Slot, result: SlotResult | None) -> FragmentRecord:
        """The fragment as planned (no result yet) or as it ran."""
        shots = (sum(self.assigned_shots(slot)) if result is not None
                 else round(self._total_shots(slot.subcircuit)
                            * self.shares[slot.subcircuit].fractions[
                                self.shares[slot.subcircuit].keys.index(slot.key)]))
        if result is None:
            return FragmentRecord(slot.subcircuit, slot.qpu,
                                  self.fleet[slot.qpu].descriptor.backend_name, shots,
                                  1.0, 0.0, 0.0)
        ran_on = self.fleet.get(result.qpu)
        read = (self.readout.readout_fidelity(ran_on, result.measured)
                if ran_on is not None and result.measured else 1.0)
        return FragmentRecord(slot.subcircuit, result.qpu, result.backend, shots,
                              result.fidelity, result.started, result.ended, read)

    def assigned_shots(self, slot: Slot) -> list[int]:
        """The slot's shots per circuit (its predecessors must have results)."""
        assignment = self._assignment(slot)
        return [] if assignment is None else assignment[1]

    def retarget(self, plan: Plan | None, placed: Mapping[str, str]) -> None:
        """The planned fragments of moved slots on their QPUs now."""
        retarget(plan, self.slots, placed,
                 {q: (f.descriptor.backend_name, None) for q, f in self.fleet.items()})


def retarget(plan: Plan | None, slots: Sequence[Slot], placed: Mapping[str, str],
             described: Mapping[str, tuple[str, float | None]]) -> None:
    """Move the planned fragments (listed in slot order) of slots placed on another QPU known
    to ``described`` (QPU -> backend, estimated fidelity or None to keep): QPU, backend,
    fidelity, and the QPU in the fragment's name (kept unique)."""
    if plan is None or len(plan.fragments) != len(slots):
        return
    for i, (fragment, slot) in enumerate(zip(plan.fragments, slots, strict=True)):
        qpu = placed.get(slot.key, fragment.qpu)
        if qpu == fragment.qpu or qpu not in described:
            continue
        name = fragment.name.replace(fragment.qpu, qpu, 1)
        if any(f.name == name for f in plan.fragments):
            name = f"{name}-{i}"
        backend, fidelity = described[qpu]
        fragment.name, fragment.qpu, fragment.backend = name, qpu, backend
        if fidelity is not None:
            fragment.estimated_fidelity = fidelity


def cut_plan(decided: DecidedJob, stored: Mapping[str, str] | None
             ) -> tuple[CutPlan | None, dict[str, str]]:
    """A Distributed job's cut plan and its record (``plan.json``); the stored record when
    there is one. None (record: ``classical``) when the job runs the classical fallback
    instead (sampling jobs, no plan within the policy); JobFailure when it cannot."""
    run, reduced, qip = decided.run, decided.reduced, decided.qip
    why = stored.get("classical") if stored is not None else None
    if stored is not None and why is None:
        plan = CutPlan.model_validate_json(stored["plan.json"])
    elif stored is None and reduced.observables is None:
        why = ("a sampling job cannot be cut (cut reconstruction gives expectation values): "
               "give observables")
    elif stored is None:
        assert reduced.observables is not None
        policy = reduced.policy.spec
        with run.phase("cut_seconds"):
            try:
                plan = cut_plan_for(reduced.circuit, reduced.observables, decided.fleet,
                                    qip.eligible, policy.cutting, reduced.shots, decided.seed,
                                    policy.hardware.ideal_simulators,
                                    policy.scheduler.split_fidelity_gap)
            except CutPlanningError as err:
                why = f"no cut plan fits: {err}"
    if why is not None:
        classical_instead(decided, why)
        return None, {"classical": why}
    for line in plan.explanation:
        run.progress.step("cut", line)
    run.condition(ConditionType.SCHEDULED, True, Reason.PLANNED,
                  f"{len(plan.subcircuits)} subcircuits, sampling overhead {plan.overhead:.1f}")
    return plan, {"plan.json": plan.model_dump_json()}
