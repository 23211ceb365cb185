"""The fragments of an uncut (SingleQPU) job: one slot per QPU share, every measured basis in
one backend call; finished from the counts of the QPUs that actually ran each share.

A share of an expectation-value job on a noisy QPU that can estimate
(``estimates_mitigated``) is an Estimator fragment instead, as in ``execute_single_qpu``: its
pod runs the unmeasured circuit compiled for that QPU with the observables laid out on it,
mitigated by the plan that QPU was assessed with, and returns one mitigated value per
observable (``k8s.estimation``).

Pure (no I/O), like ``k8s.fragments``. A share may have been moved off a lost QPU (a new
attempt on another one); its result names the QPU that ran it, and that QPU is what the
result, the noise allowance, the mitigation reports and ``status.plan`` are built from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from qbackbone.api.conditions import Reason
from qbackbone.api.quantumjob import Plan, QuantumJobStatus
from qbackbone.core.cutting import merge_counts
from qbackbone.core.errors import JobFailure
from qbackbone.core.execute.estimates import (
    EstimatorWork,
    estimates_mitigated,
    prepare_estimator_work,
)
from qbackbone.core.execute.shots import ShotShare
from qbackbone.core.mitigation.plan import MitigationPlan
from qbackbone.core.mitigation.uncertainty import MitigatedValue
from qbackbone.core.pipeline import DecidedJob, finish_single_qpu
from qbackbone.core.pipeline.single import ShareOutcomes, mitigation_plans
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.k8s.estimation import estimator_input_data
from qbackbone.k8s.fragments import (
    SINGLE,
    Counts,
    Need,
    Shares,
    Slot,
    SlotResult,
    Work,
    preference,
    retarget,
)


class SingleSource:
    """An uncut job: one slot per QPU share (the QIP's split until the joint plan assigns
    one), every measured basis in one call."""

    def __init__(self, decided: DecidedJob) -> None:
        self.decided = decided
        self._estimator: dict[str, EstimatorWork] = {}  # compiled once per QPU
        self._take_shares()

    def _take_shares(self) -> None:
        self.shares = {s.qpu: s.shots for s in self.decided.qip.shares}
        self.slots = [Slot(s.qpu, SINGLE, s.qpu) for s in self.decided.qip.shares]

    def needs(self) -> list[Need]:
        """The whole circuit: every basis times the shots per basis, on its eligible QPUs,
        each running the shots of its mitigation (``multiplier``); with ``shotSplitting:
        Always`` the decision's split by speed (as ``qbackbone run`` runs it) is fixed."""
        features = self.decided.reduced.features
        qpus = tuple(self.candidates(Slot(SINGLE, SINGLE, "")))
        fixed: tuple[tuple[str, int], ...] = ()
        shares = self.decided.qip.shares
        if self.decided.reduced.policy.spec.scheduler.shot_splitting_mode == "Always" and \
                len(shares) > 1 and all(s.qpu in qpus for s in shares):
            fixed = tuple((s.qpu, s.shots * features.measured_bases) for s in shares)
        return [Need(SINGLE, features.total_shots, features.qubits, qpus,
                     multipliers=tuple((q, self.multiplier(q)) for q in qpus), fixed=fixed)]

    def multiplier(self, qpu: str) -> float:
        """Shots ``qpu`` runs per requested shot: the shot multiplier of the mitigation it was
        assessed with when a share there runs the Estimator (Readout 2x, ZNE 4x), else 1 (a
        share that runs for counts: an ideal QPU, a sampling job)."""
        device = next((q for q in self.decided.fleet if q.name == qpu), None)
        if device is None or not estimates_mitigated(
                device, self.decided.reduced.observables is not None):
            return 1.0
        plan = mitigation_plans(self.decided).get(qpu)
        return 1.0 if plan is None else plan.shot_multiplier

    def assign(self, shares: Shares) -> None:
        """The QIP's shares become the plan's: shots per basis on each QPU (every QPU runs
        every basis), largest remainder so the total is exact."""
        planned = {q: n for q, n in shares[SINGLE].items() if n > 0}
        bases = self.decided.reduced.features.measured_bases
        per_basis = self.decided.reduced.features.shots_per_basis
        total = sum(planned.values())
        rank = preference(self.decided.fleet)
        order = sorted(planned, key=lambda q: rank.get(q, (0.0, q)))
        raw = [per_basis * planned[q] / total for q in order]
        counts = [int(r) for r in raw]
        for i in sorted(range(len(raw)), key=lambda i: raw[i] - counts[i],
                        reverse=True)[:per_basis - sum(counts)]:
            counts[i] += 1
        fleet = {q.name: q.descriptor for q in self.decided.fleet}
        self.decided.qip.shares = [
            ShotShare(q, n, 0.0, fleet[q].setup_time
                      + n * bases * self.multiplier(q) * fleet[q].shot_time)
            for q, n in zip(order, counts, strict=True) if n > 0]
        self._take_shares()

    def slot_shots(self, slot: Slot, qpu: str | None = None) -> int:
        """The slot's shots per basis times the bases, times the mitigation shots of ``qpu``
        (default: its planned QPU): what that QPU runs for it."""
        shots = self.shares[slot.key] * self.decided.reduced.features.measured_bases
        return math.ceil(shots * self.multiplier(qpu or slot.qpu) - 1e-9)

    def work(self, slot: Slot, qpu: str, attempt: int,
             results: Mapping[str, SlotResult]) -> Work | None:
        """The decision's compilation for ``qpu``, the slot's shots per circuit; on a noisy
        QPU, for an expectation-value job, the Estimator's work with ``qpu``'s mitigation."""
        seed = self.decided.seed if attempt == 0 else derive_seed(self.decided.seed, slot.key,
                                                                  attempt)
        shots = self.shares[slot.key]
        estimator = self.estimator_work(qpu)
        if estimator is not None:
            target = self.decided.reduced.policy.spec.mitigation.target_sigma
            return Work([estimator.circuit], shots, seed,
                        estimator_input_data(estimator, self.plan_for(qpu), target))
        return Work(list(self.decided.compiled.circuits[qpu]), shots, seed)

    def estimator_work(self, qpu: str) -> EstimatorWork | None:
        """The unmeasured circuit compiled for ``qpu`` and the observables laid out on it (as
        ``execute_single_qpu`` prepares them); None when the share runs for counts (a
        sampling job, an ideal QPU, or one that cannot estimate)."""
        reduced = self.decided.reduced
        device = next((q for q in self.decided.fleet if q.name == qpu), None)
        if reduced.observables is None or device is None or \
                not estimates_mitigated(device, True):
            return None
        if qpu not in self._estimator:
            self._estimator[qpu] = prepare_estimator_work(device, reduced.circuit,
                                                          reduced.observables)
        return self._estimator[qpu]

    def plan_for(self, qpu: str) -> MitigationPlan:
        """The mitigation ``qpu`` was assessed with for this job (the one the in-process path
        and ``finish_single_qpu``'s reports use for it)."""
        plans = mitigation_plans(self.decided)
        if qpu not in plans:
            raise JobFailure(Reason.EXECUTION_FAILED, f"QPU {qpu} was not assessed for the job")
        return plans[qpu]

    def candidates(self, slot: Slot) -> list[str]:
        """Eligible QPUs the job's circuits were compiled for."""
        rank = preference(self.decided.fleet)
        names = [q for q in self.decided.qip.eligible if q in self.decided.compiled.circuits]
        return sorted(names, key=lambda q: rank.get(q, (0.0, q)))

    def finish(self, results: Mapping[str, SlotResult]) -> QuantumJobStatus:
        """``finish_single_qpu`` with the counts or mitigated values of the QPUs that
        produced them."""
        status = finish_single_qpu(self.decided, self.outcomes_as_ran(results))
        self.plan_as_ran(results)
        return status

    def as_ran(self, results: Mapping[str, SlotResult]) -> dict[str, Counts]:
        """Counts by the QPU that produced them (a sampling job's: no Estimator fragments),
        with the decision's shares moved to those QPUs (``outcomes_as_ran``)."""
        return self.outcomes_as_ran(results).counts

    def outcomes_as_ran(self, results: Mapping[str, SlotResult]) -> ShareOutcomes:
        """Counts or mitigated values by the QPU that produced them, with the decision's
        shares moved to those QPUs (so the result names them, and the noise allowance and
        mitigation report are theirs); shares that ran on one QPU become one stratum."""
        assessed = {a.descriptor.name for a in self.decided.assessments}
        shots: dict[str, int] = {}
        ran: dict[str, list[tuple[int, SlotResult]]] = {}
        spans: dict[str, tuple[float, float]] = {}
        for share in self.decided.qip.shares:
            result = results[share.qpu]  # slot keys are the planned QPUs
            qpu = result.qpu if result.qpu in assessed else share.qpu
            shots[qpu] = shots.get(qpu, 0) + share.shots
            ran.setdefault(qpu, []).append((share.shots, result))
            start, end = spans.get(qpu, (result.started, result.ended))
            spans[qpu] = (min(start, result.started), max(end, result.ended))
        self.decided.qip.shares = [ShotShare(q, n, *spans[q]) for q, n in shots.items()]
        outcomes = ShareOutcomes()
        for qpu, parts in ran.items():
            estimated = [r.estimates for _, r in parts if r.estimates is not None]
            if not estimated:
                try:
                    outcomes.counts[qpu] = merge_counts([r.counts for _, r in parts])
                except ValueError as err:  # shares on one QPU returned different circuits
                    raise JobFailure(Reason.EXECUTION_FAILED,
                                     f"shares on one QPU: {err}") from None
            elif len(estimated) < len(parts):
                raise JobFailure(Reason.EXECUTION_FAILED, f"shares on QPU {qpu} returned "
                                 "counts and expectation values: they cannot be combined")
            else:
                outcomes.estimates[qpu] = self._merged_estimates(
                    qpu, [(n, r.estimates or []) for n, r in parts])
        return outcomes

    def _merged_estimates(self, qpu: str, parts: Sequence[tuple[int, Sequence[MitigatedValue]]]
                          ) -> list[MitigatedValue]:
        """One QPU's mitigated values: its shares' values weighted by their shots, the
        statistical errors in quadrature and the systematic ones linearly (one device's bias
        is shared by its shares)."""
        width = len(self.decided.reduced.observables or [])
        for _, values in parts:
            if len(values) != width:
                raise JobFailure(Reason.EXECUTION_FAILED, f"QPU {qpu} returned {len(values)} "
                                 f"expectation value(s) for {width} observable(s)")
            bad = [v for v in values if not all(math.isfinite(x) and x >= 0.0
                                                for x in (v.std_error, v.systematic_error))]
            if bad:
                raise JobFailure(Reason.EXECUTION_FAILED, f"QPU {qpu} returned an expectation "
                                 f"value with an unusable error: {bad[0]}")
        if len(parts) == 1:
            return list(parts[0][1])
        total = sum(n for n, _ in parts)
        merged = []
        for i in range(width):
            strata = [(n / total, values[i]) for n, values in parts]
            merged.append(MitigatedValue(
                value=sum(w * v.value for w, v in strata),
                std_error=math.sqrt(sum((w * v.std_error) ** 2 for w, v in strata)),
                systematic_error=sum(w * v.systematic_error for w, v in strata),
                method="; ".join(dict.fromkeys(v.method for _, v in strata))))
        return merged

    def plan_as_ran(self, results: Mapping[str, SlotResult]) -> None:
        """status.plan's fragments as they ran: QPU, backend, fidelity and times."""
        plan = self.decided.run.status.plan
        if plan is None or len(plan.fragments) != len(self.slots):
            return
        ran = [results[slot.key] for slot in self.slots]
        self.retarget(plan, {s.key: r.qpu for s, r in zip(self.slots, ran, strict=True)})
        for fragment, result in zip(plan.fragments, ran, strict=True):
            fragment.backend = result.backend or fragment.backend
            fragment.estimated_fidelity = round(result.fidelity, 4)
            fragment.planned_start_seconds = result.started
            fragment.planned_end_seconds = result.ended
        plan.estimated_makespan_seconds = max(r.ended for r in ran)

    def retarget(self, plan: Plan | None, placed: Mapping[str, str]) -> None:
        """The planned fragments of moved slots on their QPUs now."""
        retarget(plan, self.slots, placed, {
            a.descriptor.name: (a.descriptor.backend_name,
                                None if a.estimated_fidelity is None
                                else round(a.estimated_fidelity, 4))
            for a in self.decided.assessments})

