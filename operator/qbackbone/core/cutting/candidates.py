"""Cut candidates: each find_cuts result built as an LO or LOCC plan, every limit checked.

A candidate is *buildable* when its sampling overhead, subcircuit count and QPD term count
are within the limits and every subcircuit fits some QPU. The planner chooses only among
buildable candidates and reports why the others were rejected. Noise counts: each
subcircuit's estimated fidelity on the most faithful QPU that may run it damps the
reconstructed value, and undoing a damping F costs 1/F^2 in shots, so candidates are ranked
by their *effective* overhead, gamma^2 / F^2 (F the product over subcircuits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from qiskit import QuantumCircuit
from qiskit_addon_cutting import DeviceConstraints, OptimizationParameters, find_cuts

from .capacity import QPUCapacity, SimulatorUse, allowed_qpus
from .lo import MAX_TERMS, LoPartition, partition
from .locc import Layout, build_layout
from .models import BundleSpec, CandidateSummary, CutKind, CutSpec, Method
from .mub import MAX_WIRES
from .structure import components, merge_isolated, segment, topological_order, two_qubit_depth

KINDS = ("gate", "loWire", "loccWire")
_KIND_ORDER = {k: i for i, k in enumerate(KINDS)}


@dataclass(frozen=True)
class Limits:
    """What a plan may cost: the policy's limits and the engine's QPD term limit."""

    max_overhead: float
    max_subcircuits: int
    max_terms: int = MAX_TERMS


@dataclass
class Candidate:
    """One way to cut the circuit, with what it costs and what stops it being built."""

    method: Method
    width: int
    cut_circuit: QuantumCircuit
    cuts: list[CutSpec]
    gamma: float
    parts: dict[str, tuple[int, int]]  # name -> (qubits, two-qubit depth)
    terms: int  # QPD terms (LO) or channel combinations (LOCC) the estimate sums over
    gates: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (1q, 2q) gates
    fidelity: float = 1.0  # product over subcircuits of the best QPU's estimate (placement)
    placement: dict[str, str] = field(default_factory=dict)  # name -> most faithful QPU
    edges: list[tuple[str, str]] = field(default_factory=list)
    bundles: list[BundleSpec] = field(default_factory=list)
    lo_part: LoPartition | None = None
    layout: Layout | None = None
    note: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def overhead(self) -> float:
        """Sampling overhead gamma^2."""
        return self.gamma**2

    @property
    def kinds(self) -> list[CutKind]:
        """The cut kinds used, in a fixed order."""
        return sorted({c.kind for c in self.cuts}, key=_KIND_ORDER.__getitem__)

    @property
    def effective_overhead(self) -> float:
        """gamma^2 / F^2: the shots the plan needs per uncut shot once the noise of the QPUs
        it runs on is paid for."""
        return self.overhead / self.fidelity**2 if self.fidelity > 0 else math.inf

    def rank(self) -> tuple[float, int, int, int]:
        """Lower is better: effective overhead, then fewer subcircuits, QPD terms and cuts."""
        return (self.effective_overhead, len(self.parts), self.terms, len(self.cuts))

    def describe(self) -> str:
        """One line: method, kinds, size and cost (and the noise, when there is any)."""
        kinds = "+".join(self.kinds) or "no cuts"
        overhead = f"{self.overhead:.4g}" if math.isfinite(self.overhead) else "unbounded"
        line = (f"{self.method} ({kinds}) at <= {self.width} qubits: {len(self.cuts)} cut(s), "
                f"{len(self.parts)} subcircuit(s), overhead {overhead}, {self.terms} QPD term(s)")
        if self.fidelity < 1.0:
            on = ", ".join(f"{n} on {q}" for n, q in sorted(self.placement.items()))
            line += (f", estimated fidelity {self.fidelity:.3g} ({on}), effective overhead "
                     f"{self.effective_overhead:.4g}")
        return line

    def summary(self, chosen: bool = False) -> CandidateSummary:
        """The serialisable record of this candidate and its verdict."""
        verdict = "chosen" if chosen else ("; ".join(self.problems) or (
            "buildable but not cheaper" if self.fidelity >= 1.0 else
            "buildable but not cheaper once noise is counted (overhead / fidelity^2)"))
        return CandidateSummary(
            method=self.method, width=self.width, cuts=len(self.cuts),
            overhead=self.overhead if math.isfinite(self.overhead) else -1.0,
            subcircuits=len(self.parts), kinds=self.kinds, qpd_terms=self.terms,
            estimated_fidelity=round(self.fidelity, 4), verdict=verdict)

    def place(self, qpus: Sequence[QPUCapacity], simulators: SimulatorUse) -> None:
        """Set ``fidelity`` and ``placement``: each subcircuit on the most faithful QPU that
        may run it (ideal simulators as ``simulators`` allows)."""
        self.fidelity, self.placement = 1.0, {}
        for name, (qubits, depth) in self.parts.items():
            one, two = self.gates.get(name, (0, 0))
            allowed = allowed_qpus(qpus, qubits, depth, simulators)
            if not allowed:
                continue  # check() reports it
            best = max(allowed, key=lambda q: (q.fidelity(qubits, one, two), q.name))
            self.fidelity *= best.fidelity(qubits, one, two)
            self.placement[name] = best.name

    def key(self) -> tuple[object, ...]:
        """Identity of the plan: the same cuts into the same parts (for de-duplication)."""
        return (self.method, tuple((c.kind, tuple(c.qubits), c.position) for c in self.cuts),
                tuple(sorted(self.parts.values())), len(self.cut_circuit.data))


def search(circuit: QuantumCircuit, width: int, gate: bool, wire: bool, max_gamma: float,
           seed: int | None) -> tuple[QuantumCircuit, bool]:
    """find_cuts for subcircuits of ``width`` qubits: (cut circuit, minimum reached)."""
    params = OptimizationParameters(seed=seed, max_gamma=max_gamma, gate_lo=gate, wire_lo=wire)
    cut, meta = find_cuts(circuit, params, DeviceConstraints(qubits_per_subcircuit=width))
    return cut, bool(meta["minimum_reached"])


def cut_specs(cut: QuantumCircuit, wire_kind: CutKind) -> list[CutSpec]:
    """The cuts of a find_cuts result, wire cuts labelled ``wire_kind``."""
    specs = []
    for pos, inst in enumerate(cut.data):
        if inst.operation.name == "qpd_2q":
            g = float(sum(abs(c) for c in inst.operation.basis.coeffs))
            qs = [cut.find_bit(q).index for q in inst.qubits]
            specs.append(CutSpec(kind="gate", qubits=qs, position=pos, gamma=g))
        elif inst.operation.name == "cut_wire":
            qs = [cut.find_bit(q).index for q in inst.qubits]
            specs.append(CutSpec(kind=wire_kind, qubits=qs, position=pos,
                                 gamma=4.0 if wire_kind == "loWire" else 3.0))
    return specs


def lo_candidate(cut: QuantumCircuit, obs: list[str], width: int, cap: int,
                 note: str) -> Candidate:
    """The cut circuit as a library (gate / LO wire) plan."""
    part = partition(cut, obs, cap)
    parts = {n: (c.num_qubits, two_qubit_depth(c)) for n, c in part.subcircuits.items()}
    return Candidate("lo", width, cut, cut_specs(cut, "loWire"), part.gamma, parts,
                     part.num_terms, gate_counts(part.subcircuits), lo_part=part, note=note)


def gate_counts(bodies: dict[str, QuantumCircuit]) -> dict[str, tuple[int, int]]:
    """One- and two-qubit gates of each subcircuit (what its fidelity estimate counts)."""
    out = {}
    for name, body in bodies.items():
        ops = [len(i.qubits) for i in body.data
               if i.operation.name not in ("barrier", "delay", "rz")]
        out[name] = (ops.count(1), sum(1 for n in ops if n >= 2))
    return out


def locc_candidate(cut: QuantumCircuit, obs: list[str], width: int, cap: int,
                   allow_lo: bool) -> Candidate:
    """The wire cuts as LOCC bundles; LO when the precedence would be cyclic and allowed."""
    seg = segment(cut)
    links = [list(segs) for op, segs in seg.ops if len(segs) >= 2]
    labels = components(seg.num_segments, links)
    linked = {labels[m.src] for m in seg.moves if labels[m.src] != labels[m.dst]}
    linked |= {labels[m.dst] for m in seg.moves if labels[m.src] != labels[m.dst]}
    widths: dict[int, int] = {}
    for lab in labels:
        widths[lab] = widths.get(lab, 0) + 1
    labels = merge_isolated(labels, widths, linked, cap)
    layout = build_layout(seg, labels, MAX_WIRES)
    edges = sorted({(b.source, b.target) for b in layout.bundles})
    if topological_order(layout.names, edges) is None:
        if not allow_lo:
            cand = Candidate("locc", width, cut, cut_specs(cut, "loccWire"), math.inf, {}, 0)
            cand.problems.append("LOCC precedence would be cyclic and the policy forbids the LO "
                                 "fallback (loWire not allowed)")
            return cand
        return lo_candidate(cut, obs, width, cap,
                            "LOCC precedence would be cyclic: these wire cuts fall back to LO")
    specs = cut_specs(cut, "loccWire")
    for s in specs:
        s.bundle = layout.bundle_of_cut.get(s.position)
        if s.bundle is not None:
            n = next(b.wires for b in layout.bundles if b.name == s.bundle)
            s.gamma = float(2 ** (n + 1) - 1) ** (1.0 / n)  # per-wire share of the bundle
    gamma = math.prod(b.gamma for b in layout.bundles)
    terms = math.prod(2**b.wires + 1 for b in layout.bundles)  # channel combinations
    parts = {n: (layout.bodies[n].num_qubits, two_qubit_depth(layout.bodies[n]))
             for n in layout.names}
    return Candidate("locc", width, cut, specs, gamma, parts, terms,
                     gate_counts({n: layout.bodies[n] for n in layout.names}), edges=edges,
                     bundles=layout.bundles, layout=layout)


def check(cand: Candidate, qpus: Sequence[QPUCapacity], limits: Limits,
          simulators: SimulatorUse = "Allowed") -> None:
    """Record in ``cand.problems`` every limit the candidate breaks (buildable when none),
    and place it (``Candidate.place``)."""
    if cand.overhead > limits.max_overhead:
        cand.problems.append(f"needs gamma^2 = {cand.overhead:.4g} > maxSamplingOverhead "
                             f"{limits.max_overhead:.4g}")
    if cand.terms > limits.max_terms:
        cand.problems.append(f"{cand.terms} QPD terms > the engine's limit of "
                             f"{limits.max_terms}")
    if len(cand.parts) > limits.max_subcircuits:
        cand.problems.append(f"{len(cand.parts)} subcircuits > maxSubcircuits "
                             f"{limits.max_subcircuits}")
    for name, (q, d) in cand.parts.items():
        if not allowed_qpus(qpus, q, d, simulators):
            cand.problems.append(f"{name} ({q} qubits, two-qubit depth {d}) fits no QPU")
    cand.place(qpus, simulators)


def find_candidates(circuit: QuantumCircuit, obs: list[str], qpus: Sequence[QPUCapacity],
                    allowed_kinds: Sequence[str], limits: Limits,
                    seed: int | None, simulators: SimulatorUse = "Allowed") -> list[Candidate]:
    """Every plan the searches find, per subcircuit width (one per QPU size) and kind: LOCC
    bundles of the wire-cut search (also as LO wires when loWire is allowed) and the library
    search with the allowed gate / LO wire cuts; each checked against ``limits`` and placed
    on the QPUs (ideal simulators as ``simulators`` allows)."""
    n = circuit.num_qubits
    cap = max(q.qubits for q in qpus)
    widths = sorted({min(q.qubits, n - 1) for q in qpus if q.qubits >= 2}, reverse=True)
    gate, lo_wire, locc = (k in allowed_kinds for k in KINDS)
    max_gamma = max(math.sqrt(limits.max_overhead), 2.0) * 4
    found: dict[tuple[object, ...], Candidate] = {}

    def add(cand: Candidate) -> None:
        found.setdefault(cand.key(), cand)

    for width in widths:
        if locc:
            cut, minimum = search(circuit, width, False, True, max_gamma * 2, seed)
            note = f"find_cuts minimum_reached={minimum}"
            cand = locc_candidate(cut, obs, width, cap, lo_wire)
            cand.note = f"{cand.note}; {note}" if cand.note else note
            add(cand)
            if lo_wire and cand.method == "locc" and cand.cuts:
                add(lo_candidate(cut, obs, width, cap, f"the LOCC search's wires as LO; {note}"))
        if gate or lo_wire:
            cut, minimum = search(circuit, width, gate, lo_wire, max_gamma, seed)
            add(lo_candidate(cut, obs, width, cap, f"find_cuts minimum_reached={minimum}"))
    candidates = list(found.values())
    for cand in candidates:
        if not cand.problems:
            check(cand, qpus, limits, simulators)
    return candidates
