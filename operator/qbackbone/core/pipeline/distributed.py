"""The Distributed path: cut the circuit, run subcircuits on the QPUs that fit, reconstruct."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from qiskit import QuantumCircuit

from qbackbone.api.conditions import Reason
from qbackbone.api.policy import CuttingOptions
from qbackbone.api.quantumjob import Plan, PlannedFragment, PlannedSubcircuit
from qbackbone.core.circuits.features import two_qubit_depth
from qbackbone.core.cutting import CutPlan, QPUCapacity, plan_cuts
from qbackbone.core.cutting import unitary_part as cut_ready
from qbackbone.core.errors import JobFailure
from qbackbone.core.execute.shots import split_shots
from qbackbone.core.pipeline.progress import Progress
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.core.qpus.fidelity import estimate_success_probability
from qbackbone.core.qpus.fleet import QPU


def capacities(fleet: Sequence[QPU], usable: Sequence[str]) -> list[QPUCapacity]:
    """What the cut planner may target: the usable QPUs' width and feasible depth."""
    names = set(usable)
    return [QPUCapacity(q.name, q.descriptor.qubits, q.descriptor.max_depth)
            for q in fleet if q.name in names]


def cut_plan_for(circuit: QuantumCircuit, observables: Sequence[str], fleet: Sequence[QPU],
                 usable: Sequence[str], cutting: CuttingOptions, shots: int,
                 seed: int | None) -> CutPlan:
    """The cheapest cut plan within the policy's limits; CutPlanningError when none fits."""
    return plan_cuts(cut_ready(circuit), observables, capacities(fleet, usable),
                     cutting.allowed_cut_kinds, cutting.max_sampling_overhead,
                     cutting.max_subcircuits, shots, seed=seed)


@dataclass
class FragmentRecord:
    """One backend call: part of one subcircuit's circuits on one QPU."""

    subcircuit: str
    qpu: str
    backend: str
    shots: int
    fidelity: float
    started: float
    ended: float


@dataclass
class FleetRunner:
    """Runs a subcircuit's circuits on every QPU that fits it, shots split by speed."""

    fleet: Sequence[QPU]
    usable: Sequence[str]
    splitting: bool
    progress: Progress
    seed: int | None = None
    clock_zero: float = field(default_factory=time.perf_counter)
    records: list[FragmentRecord] = field(default_factory=list)

    def _fitting(self, subcircuit: str, circuits: Sequence[QuantumCircuit]
                 ) -> list[tuple[QPU, list[QuantumCircuit]]]:
        width = max(c.num_qubits for c in circuits)
        out, too_deep = [], []
        for qpu in self.fleet:
            d = qpu.descriptor
            if qpu.name not in self.usable or width > d.qubits:
                continue
            compiled = qpu.transpile(circuits)
            depth = max(two_qubit_depth(c) for c in compiled)
            if d.max_depth is None or depth <= d.max_depth:
                out.append((qpu, compiled))
            else:
                too_deep.append(f"{qpu.name} compiles it to two-qubit depth {depth} "
                                f"(max {d.max_depth})")
        if not out:
            raise JobFailure(
                Reason.CUT_INFEASIBLE,
                f"subcircuit {subcircuit} ({width} qubits) fits no usable QPU after routing: "
                + ("; ".join(too_deep) or "none is wide enough")
                + "; the plan's logical depth fit, so allow deeper QPUs (spec.maxDepth) or "
                "more of them")
        return out

    def run(self, subcircuit: str, circuits: Sequence[QuantumCircuit],
            shots: Sequence[int]) -> list[dict[str, int]]:
        """Counts per circuit, merged over the QPUs that ran a share of its shots."""
        fitting = self._fitting(subcircuit, circuits)
        total = sum(shots)
        shares = split_shots(total, [q.descriptor for q, _ in fitting], self.splitting)
        fraction = {s.qpu: s.shots / total for s in shares}
        merged: list[dict[str, int]] = [{} for _ in circuits]
        remaining = list(shots)
        ordered = [(q, c) for q, c in fitting if q.name in fraction]
        for index, (qpu, compiled) in enumerate(ordered):
            last = index == len(ordered) - 1
            mine = [r if last else min(r, round(n * fraction[qpu.name]))
                    for n, r in zip(shots, remaining, strict=True)]
            remaining = [r - m for r, m in zip(remaining, mine, strict=True)]
            picked = [i for i, m in enumerate(mine) if m > 0]
            if not picked:
                continue
            self.progress.step("execute", f"{subcircuit} on {qpu.name}: {len(picked)} "
                               f"circuit(s), {sum(mine)} shots")
            start = time.perf_counter() - self.clock_zero
            counts = qpu.executor.run([compiled[i] for i in picked], [mine[i] for i in picked],
                                      derive_seed(self.seed, subcircuit, qpu.name,
                                                  len(self.records)))
            end = time.perf_counter() - self.clock_zero
            for i, c in zip(picked, counts, strict=True):
                for key, n in c.items():
                    merged[i][key] = merged[i].get(key, 0) + n
            fidelity = 1.0 if qpu.descriptor.calibration is None else min(
                estimate_success_probability(compiled[i], qpu.descriptor.calibration)
                for i in picked)
            self.records.append(FragmentRecord(subcircuit, qpu.name,
                                               qpu.descriptor.backend_name, sum(mine),
                                               fidelity, start, end))
        return merged


def plan_status(plan: CutPlan, records: Sequence[FragmentRecord]) -> Plan:
    """status.plan for a cut job: subcircuits with precedence, fragments as they ran."""
    return Plan(
        subcircuits=[PlannedSubcircuit(name=s.name, qubits=s.qubits, depth=s.two_qubit_depth,
                                       two_qubit_depth=s.two_qubit_depth, shots=s.shots,
                                       depends_on=list(s.depends_on))
                     for s in plan.subcircuits],
        fragments=[PlannedFragment(name=f"{r.subcircuit}-{r.qpu}-{i}", subcircuit=r.subcircuit,
                                   qpu=r.qpu, backend=r.backend, shots=r.shots,
                                   estimated_fidelity=round(r.fidelity, 4),
                                   planned_start_seconds=round(r.started, 4),
                                   planned_end_seconds=round(r.ended, 4))
                   for i, r in enumerate(records)],
        estimated_makespan_seconds=round(max((r.ended for r in records), default=0.0), 4),
    )
