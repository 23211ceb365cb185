"""Running a cut plan's subcircuits on the fleet: which QPUs fit each subcircuit after routing,
which of them run it (the most faithful noise class; shot splits only as the policy says),
and the counts they return, each QPU's with its readout model (``execute/cut_readout.py``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from qiskit import QuantumCircuit

from qbackbone.api.conditions import Reason
from qbackbone.api.policy import IdealSimulators, ShotSplitting
from qbackbone.api.quantumjob import RuleOutcome
from qbackbone.core.circuits.features import two_qubit_depth
from qbackbone.core.cutting.readout import MeasuredCounts
from qbackbone.core.errors import JobFailure
from qbackbone.core.execute.cut_readout import CutReadout
from qbackbone.core.execute.shots import finish_time, split_shots
from qbackbone.core.mitigation.readout import measured_qubits
from qbackbone.core.pipeline.progress import Progress
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.core.qpus.fidelity import estimate_success_probability
from qbackbone.core.qpus.fleet import QPU

DEFAULT_FIDELITY_GAP = 0.1  # the policy's default scheduler.splitFidelityGap


@dataclass(frozen=True)
class Fitting:
    """A QPU that fits a subcircuit after routing, its compilation and estimated fidelity."""

    qpu: QPU
    compiled: list[QuantumCircuit]
    fidelity: float


def _fidelity(qpu: QPU, compiled: Sequence[QuantumCircuit]) -> float:
    cal = qpu.descriptor.calibration
    if cal is None or qpu.descriptor.ideal:
        return 1.0
    return min(estimate_success_probability(c, cal) for c in compiled)


def fitting_candidates(fleet: Sequence[QPU], usable: Sequence[str], subcircuit: str,
                       circuits: Sequence[QuantumCircuit]) -> list[Fitting]:
    """Every usable QPU wide and deep enough for the circuits, in fleet order; JobFailure
    (CutInfeasible) when none fits after routing."""
    width = max(c.num_qubits for c in circuits)
    out, too_deep = [], []
    for qpu in fleet:
        d = qpu.descriptor
        if qpu.name not in usable or width > d.qubits:
            continue
        compiled = qpu.transpile(circuits)
        depth = max(two_qubit_depth(c) for c in compiled)
        if d.max_depth is None or depth <= d.max_depth:
            out.append(Fitting(qpu, compiled, _fidelity(qpu, compiled)))
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


def preferred(fitting: Sequence[Fitting], simulators: IdealSimulators = "Fallback",
              gap: float = DEFAULT_FIDELITY_GAP) -> list[Fitting]:
    """The QPUs a subcircuit should run on: ideal simulators only as ``simulators`` allows,
    then the most faithful QPU's noise class (both ideal or both noisy, fidelity within
    ``gap``), most faithful first; JobFailure(CutInfeasible) when only forbidden simulators
    fit."""
    noisy = [f for f in fitting if not f.qpu.descriptor.ideal]
    pool = noisy if simulators == "Forbidden" or (simulators == "Fallback" and noisy) \
        else list(fitting)
    if not pool:
        raise JobFailure(Reason.CUT_INFEASIBLE, "only ideal simulators fit the subcircuit and "
                         "the policy forbids them (hardware.idealSimulators Forbidden)")
    order = sorted(pool, key=lambda f: (-f.fidelity, f.qpu.descriptor.shot_time, f.qpu.name))
    best = order[0]
    return [f for f in order if f.qpu.descriptor.ideal == best.qpu.descriptor.ideal
            and best.fidelity - f.fidelity <= gap + 1e-12]


def fitting_qpus(fleet: Sequence[QPU], usable: Sequence[str], subcircuit: str,
                 circuits: Sequence[QuantumCircuit], simulators: IdealSimulators = "Fallback",
                 gap: float = DEFAULT_FIDELITY_GAP) -> list[tuple[QPU, list[QuantumCircuit]]]:
    """The usable QPUs a subcircuit should run on (``preferred``), each with its
    compilation, most faithful first; JobFailure(CutInfeasible) when none fits after
    routing."""
    chosen = preferred(fitting_candidates(fleet, usable, subcircuit, circuits), simulators, gap)
    return [(f.qpu, f.compiled) for f in chosen]


def split_circuit_shots(shots: Sequence[int], fractions: Sequence[float]) -> list[list[int]]:
    """Each circuit's shots over QPUs by their fraction of the subcircuit (the last QPU takes
    what rounding left), as :class:`FleetRunner` runs them; one list per QPU."""
    remaining = list(shots)
    out = []
    for index, fraction in enumerate(fractions):
        last = index == len(fractions) - 1
        mine = [r if last else min(r, round(n * fraction))
                for n, r in zip(shots, remaining, strict=True)]
        remaining = [r - m for r, m in zip(remaining, mine, strict=True)]
        out.append(mine)
    return out


def subcircuit_shares(total: int, fitting: Sequence[QPU],
                      splitting: bool) -> list[tuple[str, float]]:
    """(QPU, fraction of the subcircuit's shots) in the order of ``fitting`` (preferred
    first): the first QPU takes every shot without splitting, else shots split by speed."""
    if not splitting:
        return [(fitting[0].name, 1.0)]
    shares = split_shots(total, [q.descriptor for q in fitting], splitting)
    fraction = {s.qpu: s.shots / total for s in shares}
    return [(q.name, fraction[q.name]) for q in fitting if q.name in fraction]


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
    readout_fidelity: float = 1.0  # the part of ``fidelity`` readout correction takes back

    @property
    def residual_fidelity(self) -> float:
        """The estimated fidelity of what mitigation left (all of it when uncorrected)."""
        return min(1.0, self.fidelity / max(self.readout_fidelity, 1e-9))


@dataclass
class FleetRunner:
    """Runs each subcircuit on its preferred QPUs (``preferred``): the most faithful one
    takes every shot unless the policy splits them (``Always``, or ``WhenDeadlineNeeds``
    when the subcircuit's share of the deadline is too short for one QPU), then by speed over
    one noise class. ``rules`` say why each fitting QPU was or was not used; ``readout``
    gives noisy QPUs' counts their readout models (None: counts as read)."""

    fleet: Sequence[QPU]
    usable: Sequence[str]
    splitting: ShotSplitting
    progress: Progress
    seed: int | None = None
    simulators: IdealSimulators = "Fallback"
    gap: float = DEFAULT_FIDELITY_GAP
    budget: float | None = None  # QPU seconds the deadline leaves for every subcircuit
    planned: dict[str, int] = field(default_factory=dict)  # subcircuit -> shots, for budget
    clock_zero: float = field(default_factory=time.perf_counter)
    records: list[FragmentRecord] = field(default_factory=list)
    rules: list[RuleOutcome] = field(default_factory=list)
    spent: float = 0.0  # QPU seconds (time model) of the subcircuits run so far
    done: set[str] = field(default_factory=set)
    readout: CutReadout | None = None

    def _split(self, subcircuit: str, total: int, first: QPU) -> bool:
        """Whether this subcircuit's shots are split (over its preferred QPUs)."""
        if self.splitting != "WhenDeadlineNeeds":
            return self.splitting == "Always"
        if self.budget is None:
            return False
        left = total + sum(n for s, n in self.planned.items()
                           if s not in self.done and s != subcircuit)
        allotted = (self.budget - self.spent) * total / max(left, 1)
        return finish_time(first.descriptor, total) > allotted

    def _record(self, subcircuit: str, everyone: Sequence[Fitting], chosen: Sequence[Fitting],
                used: set[str], splits: bool) -> None:
        """One ``subcircuitPlacement`` rule per QPU that fits the subcircuit."""
        names = {f.qpu.name for f in chosen}
        noisy = any(not f.qpu.descriptor.ideal for f in everyone)
        threshold = (f"most faithful noise class (fidelity gap {self.gap:g}); "
                     f"idealSimulators {self.simulators}; shotSplitting {self.splitting}")
        for f in everyone:
            kind = ("ideal simulator" if f.qpu.descriptor.ideal
                    else f"estimated fidelity {f.fidelity:.3g}")
            why = ("runs " + ("a share" if splits else "every shot") if f.qpu.name in used
                   else "same noise class, not needed" if f.qpu.name in names
                   else "held back: a noisy QPU fits" if f.qpu.descriptor.ideal and noisy
                   and self.simulators == "Fallback"
                   else "forbidden" if f.qpu.descriptor.ideal and self.simulators == "Forbidden"
                   else "less faithful than the chosen noise class")
            self.rules.append(RuleOutcome(
                name="subcircuitPlacement", value=f"{subcircuit}: {kind}, {why}",
                threshold=threshold, passed=f.qpu.name in used, qpu=f.qpu.name))

    def run(self, subcircuit: str, circuits: Sequence[QuantumCircuit],
            shots: Sequence[int]) -> list[MeasuredCounts]:
        """Counts per circuit, one part per QPU that ran a share of its shots."""
        everyone = fitting_candidates(self.fleet, self.usable, subcircuit, circuits)
        chosen = preferred(everyone, self.simulators, self.gap)
        fitting = [(f.qpu, f.compiled) for f in chosen]
        compiled_by = {q.name: c for q, c in fitting}
        splits = self._split(subcircuit, sum(shots), chosen[0].qpu)
        shares = subcircuit_shares(sum(shots), [q for q, _ in fitting], splits)
        self._record(subcircuit, everyone, chosen, {n for n, _ in shares}, splits)
        by_name = {q.name: q for q, _ in fitting}
        self.done.add(subcircuit)
        self.spent += max(finish_time(by_name[n].descriptor, round(sum(shots) * f))
                          for n, f in shares)
        merged = [MeasuredCounts() for _ in circuits]
        split = split_circuit_shots(shots, [f for _, f in shares])
        for (name, _), mine in zip(shares, split, strict=True):
            qpu, compiled = by_name[name], compiled_by[name]
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
            ran = [compiled[i] for i in picked]
            measured = [(c.num_clbits, measured_qubits(c)) for c in ran]
            models = (self.readout.models_of(qpu, measured) if self.readout is not None
                      else [None] * len(picked))
            for i, c, model in zip(picked, counts, models, strict=True):
                merged[i].parts.append((c, model))
            fidelity = 1.0 if qpu.descriptor.calibration is None else min(
                estimate_success_probability(c, qpu.descriptor.calibration) for c in ran)
            read = (self.readout.readout_fidelity(qpu, measured)
                    if self.readout is not None else 1.0)
            self.records.append(FragmentRecord(subcircuit, qpu.name,
                                               qpu.descriptor.backend_name, sum(mine),
                                               fidelity, start, end, read))
        return merged
