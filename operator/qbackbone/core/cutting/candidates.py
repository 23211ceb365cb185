"""Cut candidates: each find_cuts result built as an LO or LOCC plan, every limit checked.

A candidate is *buildable* when its sampling overhead, subcircuit count and QPD term count
are within the limits and every subcircuit fits some QPU. The planner chooses only among
buildable candidates and reports why the others were rejected.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from qiskit import QuantumCircuit
from qiskit_addon_cutting import DeviceConstraints, OptimizationParameters, find_cuts

from .capacity import QPUCapacity
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

    def rank(self) -> tuple[float, int, int, int]:
        """Lower is better: overhead, then fewer subcircuits, QPD terms and cuts."""
        return (self.overhead, len(self.parts), self.terms, len(self.cuts))

    def describe(self) -> str:
        """One line: method, kinds, size and cost."""
        kinds = "+".join(self.kinds) or "no cuts"
        overhead = f"{self.overhead:.4g}" if math.isfinite(self.overhead) else "unbounded"
        return (f"{self.method} ({kinds}) at <= {self.width} qubits: {len(self.cuts)} cut(s), "
                f"{len(self.parts)} subcircuit(s), overhead {overhead}, {self.terms} QPD term(s)")

    def summary(self, chosen: bool = False) -> CandidateSummary:
        """The serialisable record of this candidate and its verdict."""
        verdict = "chosen" if chosen else ("; ".join(self.problems) or "buildable but not cheaper")
        return CandidateSummary(
            method=self.method, width=self.width, cuts=len(self.cuts),
            overhead=self.overhead if math.isfinite(self.overhead) else -1.0,
            subcircuits=len(self.parts), kinds=self.kinds, qpd_terms=self.terms,
            verdict=verdict)

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
                     part.num_terms, lo_part=part, note=note)


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
    return Candidate("locc", width, cut, specs, gamma, parts, terms, edges, layout.bundles,
                     layout=layout)


def check(cand: Candidate, qpus: Sequence[QPUCapacity], limits: Limits) -> None:
    """Record in ``cand.problems`` every limit the candidate breaks (buildable when none)."""
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
        if not any(qpu.fits(q, d) for qpu in qpus):
            cand.problems.append(f"{name} ({q} qubits, two-qubit depth {d}) fits no QPU")


def find_candidates(circuit: QuantumCircuit, obs: list[str], qpus: Sequence[QPUCapacity],
                    allowed_kinds: Sequence[str], limits: Limits,
                    seed: int | None) -> list[Candidate]:
    """Every plan the searches find, per subcircuit width (one per QPU size) and kind: LOCC
    bundles of the wire-cut search (also as LO wires when loWire is allowed) and the library
    search with the allowed gate / LO wire cuts; each checked against ``limits``."""
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
            check(cand, qpus, limits)
    return candidates
