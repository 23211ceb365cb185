"""The fragments of a detect job on the quantum path: its kernel's fidelity circuits, in
batches of ``circuits_per_call``, each batch one fragment pod on the QPU the QIP chose.

A fragment's input is the fidelity template compiled for that QPU and a table of values, one
row per circuit (``core.circuits.bindings``): thousands of compiled circuits would not fit a
ConfigMap, their angles do. Every batch runs on the one QPU the decision chose: the noisy
path's mitigation measures that device's damping on its own k(x, x) probes, so entries from
two devices could not be mixed. Pure (no I/O), like ``k8s.fragments``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from qbackbone.api.conditions import ConditionType, Reason
from qbackbone.api.quantumjob import (
    Plan,
    PlannedFragment,
    PlannedSubcircuit,
    QuantumJobStatus,
)
from qbackbone.core.circuits.bindings import BINDINGS_KEY, bindings_text
from qbackbone.core.detect.kernel import (
    circuits_per_call,
    kernel_from_counts,
    kernel_pairs,
    pair_rows,
)
from qbackbone.core.errors import JobFailure
from qbackbone.core.pipeline.detect import DetectDecision
from qbackbone.core.pipeline.detect_solve import (
    classical_baselines,
    finish_detect,
    kernel_inputs,
)
from qbackbone.core.pipeline.jobrun import JobRun
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.k8s.fragments import Need, Shares, Slot, SlotResult, Work


class KernelSource:
    """A detect job's kernel circuits as fragments on the decision's QPU."""

    def __init__(self, decided: DetectDecision, per_call: int | None = None) -> None:
        assert decided.qpu is not None
        self.decided = decided
        self.qpu = decided.qpu
        self.inputs = kernel_inputs(decided.state, self.qpu)
        self.qubits = self.inputs.train.shape[1]
        self.shots = decided.state.spec.kernel_shots
        self.pairs = kernel_pairs(len(self.inputs.train), len(self.inputs.test),
                                  self.inputs.diagonal)
        self.per_call = per_call or circuits_per_call(self.qubits)
        batches = max(1, math.ceil(len(self.pairs) / self.per_call))
        self.slots = [Slot(f"k{i}", f"kernel-{i}", self.qpu.name) for i in range(batches)]
        self._index = {slot.key: i for i, slot in enumerate(self.slots)}

    def _range(self, slot: Slot) -> tuple[int, int]:
        lo = self._index[slot.key] * self.per_call
        return lo, min(len(self.pairs), lo + self.per_call)

    def circuits(self, slot: Slot) -> int:
        """Fidelity circuits in the slot's batch."""
        lo, hi = self._range(slot)
        return hi - lo

    def needs(self) -> list[Need]:
        """Each batch: its circuits times the kernel shots, on the chosen QPU only."""
        return [Need(slot.subcircuit, self.circuits(slot) * self.shots, self.qubits,
                     (self.qpu.name,)) for slot in self.slots]

    def assign(self, shares: Shares) -> None:
        """Nothing to split: every batch runs whole on the chosen QPU."""
        for slot in self.slots:
            planned = {q for q, n in shares.get(slot.subcircuit, {}).items() if n > 0}
            if planned - {self.qpu.name}:
                raise JobFailure(Reason.EXECUTION_FAILED, f"the plan put kernel batch "
                                 f"{slot.key} on {sorted(planned)}, not {self.qpu.name}")

    def slot_shots(self, slot: Slot, qpu: str | None = None) -> int:
        """Every shot of the batch (no mitigation multiplies kernel shots)."""
        return self.circuits(slot) * self.shots

    def work(self, slot: Slot, qpu: str, attempt: int,
             results: Mapping[str, SlotResult]) -> Work | None:
        """The compiled template and the batch's rows of values."""
        if qpu != self.qpu.name:
            raise JobFailure(Reason.QPU_UNAVAILABLE, f"kernel circuits run on {self.qpu.name} "
                             f"only (its noise probes calibrate them), not {qpu}")
        lo, hi = self._range(slot)
        px, py = self.inputs.params
        names = [p.name for p in (*px, *py)]
        rows = pair_rows(self.inputs.train, self.inputs.test, self.pairs[lo:hi])
        seed = derive_seed(self.decided.state.seed, "kernel", slot.key, attempt)
        return Work([self.inputs.compiled], self.shots, seed,
                    {BINDINGS_KEY: bindings_text(names, rows.tolist())})

    def candidates(self, slot: Slot) -> list[str]:
        """The chosen QPU alone."""
        return [self.qpu.name]

    def plan(self, run: JobRun) -> None:
        """status.plan: one fragment per batch, back to back on the QPU by its time model."""
        d = self.qpu.descriptor
        fragments, at = [], 0.0
        for slot in self.slots:
            took = d.setup_time + self.slot_shots(slot) * d.shot_time
            fragments.append(PlannedFragment(
                name=slot.subcircuit, subcircuit=slot.subcircuit, qpu=self.qpu.name,
                backend=d.backend_name, shots=self.slot_shots(slot),
                planned_start_seconds=round(at, 4), planned_end_seconds=round(at + took, 4)))
            at += took
        run.status.plan = Plan(
            subcircuits=[PlannedSubcircuit(name=slot.subcircuit, qubits=self.qubits,
                                           depth=self.inputs.compiled.depth(),
                                           two_qubit_depth=0, shots=self.slot_shots(slot))
                         for slot in self.slots],
            fragments=fragments, estimated_makespan_seconds=round(at, 4))
        run.condition(ConditionType.SCHEDULED, True, Reason.PLANNED,
                      f"{len(self.pairs)} kernel circuits in {len(self.slots)} fragment(s) "
                      f"on {self.qpu.name}")

    def finish(self, results: Mapping[str, SlotResult]) -> QuantumJobStatus:
        """The kernel from every batch's counts, the baselines, the verified report."""
        counts = [c for slot in self.slots for c in results[slot.key].counts]
        wrong = [r.qpu for r in results.values() if r.qpu != self.qpu.name]
        if wrong:
            raise JobFailure(Reason.EXECUTION_FAILED, f"kernel batches ran on {wrong}, not "
                             f"{self.qpu.name}")
        try:
            estimated = kernel_from_counts(self.pairs, counts, len(self.inputs.train),
                                           len(self.inputs.test), self.qubits, self.shots)
        except ValueError as err:
            raise JobFailure(Reason.EXECUTION_FAILED, f"kernel fragments: {err}") from None
        seconds = sum(max(0.0, r.ended - r.started) for r in results.values())
        return finish_detect(self.decided, classical_baselines(self.decided.state),
                             estimated, seconds)

    def retarget(self, plan: Plan | None, placed: Mapping[str, str]) -> None:
        """Batches never move (``candidates``): nothing to point elsewhere."""
