"""Cut planning against the QPU fleet: search, check every limit, explain the choice."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from qiskit import QuantumCircuit
from qiskit_addon_cutting import DeviceConstraints, OptimizationParameters, find_cuts

from qbackbone.core.circuits.observables import group_into_bases, validate_observables
from qbackbone.core.circuits.serialize import circuits_to_b64
from qbackbone.core.errors import JobFailure

from .capacity import QPUCapacity
from .errors import CutPlanningError
from .lo import LoPartition, partition, subexperiments
from .locc import Layout, allocate, build_layout
from .models import (
    BundleSpec,
    CandidateSummary,
    CutKind,
    CutPlan,
    CutSpec,
    LoccData,
    LoData,
    Method,
    Role,
    SubcircuitSpec,
)
from .mub import MAX_WIRES
from .structure import components, merge_isolated, segment, topological_order, two_qubit_depth

KINDS = ("gate", "loWire", "loccWire")


def unitary_part(circuit: QuantumCircuit) -> QuantumCircuit:
    """The circuit without its final measurements and barriers; refuses anything non-unitary.

    Raises :class:`CutPlanningError` for mid-circuit measurements, resets or classical control.
    """
    out = QuantumCircuit(circuit.num_qubits, name=circuit.name)
    measured: set[int] = set()
    for inst in circuit.data:
        name = inst.operation.name
        qubits = [circuit.find_bit(q).index for q in inst.qubits]
        if name == "barrier":
            continue
        if name == "measure":
            measured.update(qubits)
            continue
        if getattr(inst.operation, "condition", None) is not None or inst.operation.name in (
            "if_else", "while_loop", "for_loop", "switch_case", "reset", "delay"
        ) or inst.clbits:
            raise CutPlanningError(
                f"circuit {circuit.name!r} uses {name!r} (mid-circuit measurement, reset or "
                "classical control): only unitary circuits can be cut"
            )
        if measured & set(qubits):
            raise CutPlanningError(
                f"circuit {circuit.name!r} acts on qubit(s) {sorted(measured & set(qubits))} "
                "after measuring them: mid-circuit measurement cannot be cut"
            )
        out.append(inst.operation, qubits)
    return out


def _two_local(circuit: QuantumCircuit) -> QuantumCircuit:
    """Decompose gates on more than two qubits (find_cuts takes at most two-qubit gates)."""
    for _ in range(6):
        if all(inst.operation.num_qubits <= 2 for inst in circuit.data):
            return circuit
        circuit = circuit.decompose(
            gates_to_decompose=[
                i.operation.name for i in circuit.data if i.operation.num_qubits > 2
            ]
        )
    raise CutPlanningError("circuit keeps gates on more than two qubits after decomposition")


@dataclass
class _Candidate:
    method: Method
    width: int
    cut_circuit: QuantumCircuit
    cuts: list[CutSpec]
    gamma: float
    parts: dict[str, tuple[int, int]]  # name -> (qubits, two-qubit depth)
    edges: list[tuple[str, str]] = field(default_factory=list)
    bundles: list[BundleSpec] = field(default_factory=list)
    lo_part: LoPartition | None = None
    layout: Layout | None = None
    note: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def overhead(self) -> float:
        return self.gamma**2


def _search(circuit: QuantumCircuit, width: int, gate: bool, wire: bool, max_gamma: float,
            seed: int | None) -> tuple[QuantumCircuit, bool]:
    params = OptimizationParameters(seed=seed, max_gamma=max_gamma, gate_lo=gate, wire_lo=wire)
    cut, meta = find_cuts(circuit, params, DeviceConstraints(qubits_per_subcircuit=width))
    return cut, bool(meta["minimum_reached"])


def _cut_specs(cut: QuantumCircuit, wire_kind: CutKind) -> list[CutSpec]:
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


def _lo_candidate(
    cut: QuantumCircuit, obs: list[str], width: int, cap: int, note: str
) -> _Candidate:
    part = partition(cut, obs, cap)
    parts = {n: (c.num_qubits, two_qubit_depth(c)) for n, c in part.subcircuits.items()}
    return _Candidate("lo", width, cut, _cut_specs(cut, "loWire"), part.gamma, parts,
                      lo_part=part, note=note)


def _locc_candidate(cut: QuantumCircuit, obs: list[str], width: int, cap: int,
                    allow_lo: bool) -> _Candidate:
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
            cand = _Candidate("locc", width, cut, _cut_specs(cut, "loccWire"), math.inf, {})
            cand.problems.append("LOCC precedence would be cyclic and the policy forbids the LO "
                                 "fallback (loWire not allowed)")
            return cand
        return _lo_candidate(cut, obs, width, cap,
                             "LOCC precedence would be cyclic: these wire cuts fall back to LO")
    specs = _cut_specs(cut, "loccWire")
    for s in specs:
        s.bundle = layout.bundle_of_cut.get(s.position)
        if s.bundle is not None:
            n = next(b.wires for b in layout.bundles if b.name == s.bundle)
            s.gamma = float(2 ** (n + 1) - 1) ** (1.0 / n)  # per-wire share of the bundle
    gamma = math.prod(b.gamma for b in layout.bundles)
    parts = {n: (layout.bodies[n].num_qubits, two_qubit_depth(layout.bodies[n]))
             for n in layout.names}
    return _Candidate("locc", width, cut, specs, gamma, parts, edges, layout.bundles, layout=layout)


def _check(cand: _Candidate, qpus: Sequence[QPUCapacity], max_overhead: float,
           max_subcircuits: int) -> None:
    if cand.overhead > max_overhead:
        cand.problems.append(f"needs gamma^2 = {cand.overhead:.4g} > maxSamplingOverhead "
                             f"{max_overhead:.4g}")
    if len(cand.parts) > max_subcircuits:
        cand.problems.append(f"{len(cand.parts)} subcircuits > maxSubcircuits {max_subcircuits}")
    for name, (q, d) in cand.parts.items():
        if not any(qpu.fits(q, d) for qpu in qpus):
            cand.problems.append(f"{name} ({q} qubits, two-qubit depth {d}) fits no QPU")


def plan_cuts(
    circuit: QuantumCircuit,
    observables: Sequence[str],
    qpus: Sequence[QPUCapacity],
    allowed_kinds: Sequence[str],
    max_overhead: float,
    max_subcircuits: int,
    shots: int,
    seed: int | None = None,
) -> CutPlan:
    """Choose cuts so every subcircuit fits a QPU, minimising the sampling overhead.

    ``shots`` is what an uncut run would use per measurement basis; subcircuits get
    ``shots * overhead`` samples so the precision matches. Raises :class:`CutPlanningError`
    when no plan within the limits exists, naming the limit and the cheapest plan found.
    """
    if not qpus:
        raise CutPlanningError("no eligible QPUs to plan against")
    unknown = set(allowed_kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown cut kinds {sorted(unknown)}; allowed are {list(KINDS)}")
    if max_overhead < 1 or max_subcircuits < 1 or shots < 1:
        raise ValueError("max_overhead, max_subcircuits and shots must be >= 1")
    if any(inst.operation.name in ("measure", "reset") or inst.clbits for inst in circuit.data):
        raise CutPlanningError("circuit has measurements or classical bits: pass its unitary "
                               "part (see unitary_part)")
    try:
        obs = validate_observables(observables, circuit.num_qubits)
    except JobFailure as err:
        raise ValueError(err.message) from None
    circuit = _two_local(circuit)
    n, depth = circuit.num_qubits, two_qubit_depth(circuit)
    bases, member = group_into_bases(obs)
    groups = [basis.letters for basis in bases]
    biggest = max(qpus, key=lambda q: q.qubits)
    fitting = [q.name for q in qpus if q.fits(n, depth)]
    if fitting:
        return _uncut_plan(circuit, obs, groups, member, shots, fitting, depth)
    explanation = [
        f"circuit: {n} qubits, two-qubit depth {depth}; largest QPU {biggest.name} has "
        f"{biggest.qubits} qubits"
        + ("" if biggest.max_two_qubit_depth is None
           else f" and depth limit {biggest.max_two_qubit_depth}")
        + ": no QPU runs it whole, so it must be cut"
    ]
    if not allowed_kinds:
        raise CutPlanningError(explanation[0] + "; the policy allows no cut kinds")
    cap = biggest.qubits
    widths = sorted({min(q.qubits, n - 1) for q in qpus if q.qubits >= 2}, reverse=True)
    gate, lo_wire, locc = ("gate" in allowed_kinds, "loWire" in allowed_kinds,
                           "loccWire" in allowed_kinds)
    max_gamma = max(math.sqrt(max_overhead), 2.0) * 4
    candidates: list[_Candidate] = []
    for width in widths:
        if locc:
            cut, minimum = _search(circuit, width, False, True, max_gamma * 2, seed)
            cand = _locc_candidate(cut, obs, width, cap, lo_wire)
            found = f"find_cuts minimum_reached={minimum}"
            cand.note = f"{cand.note}; {found}" if cand.note else found
            candidates.append(cand)
        if gate or lo_wire:
            cut, minimum = _search(circuit, width, gate, lo_wire, max_gamma, seed)
            if gate and not lo_wire and any(i.operation.name == "cut_wire" for i in cut.data):
                continue
            candidates.append(_lo_candidate(cut, obs, width, cap,
                                            f"find_cuts minimum_reached={minimum}"))
    for cand in candidates:
        if not cand.problems:
            _check(cand, qpus, max_overhead, max_subcircuits)
    summaries = [
        CandidateSummary(method=c.method, width=c.width, cuts=len(c.cuts),
                         overhead=c.overhead if math.isfinite(c.overhead) else -1.0,
                         subcircuits=len(c.parts),
                         verdict="; ".join(c.problems) or "fits")
        for c in candidates
    ]
    feasible = [c for c in candidates if not c.problems]
    if not feasible:
        best = min(candidates, key=lambda c: (c.overhead, len(c.cuts)))
        raise CutPlanningError(
            f"no cut plan within the limits: cheapest found ({best.method}, {len(best.cuts)} cuts, "
            f"subcircuits of <= {best.width} qubits) {'; '.join(best.problems)}. "
            + " | ".join(f"{s.method}@{s.width}q: {s.verdict}" for s in summaries)
        )
    chosen = min(feasible, key=lambda c: (c.overhead, len(c.parts), len(c.cuts)))
    explanation.append(
        f"chosen: {chosen.method} plan with {len(chosen.cuts)} cut(s) into {len(chosen.parts)} "
        f"subcircuits of <= {chosen.width} qubits, gamma {chosen.gamma:.4g}, sampling overhead "
        f"{chosen.overhead:.4g} ({chosen.note})"
    )
    for c in sorted(candidates, key=lambda c: c.overhead):
        if c is chosen:
            continue
        if c.overhead < chosen.overhead or (c.overhead == chosen.overhead and c.problems):
            explanation.append(
                f"not chosen: {c.method} plan at width {c.width} with {len(c.cuts)} cut(s), "
                f"overhead {c.overhead:.4g}: {'; '.join(c.problems) or 'no cheaper'}"
            )
    plan = _materialise(chosen, circuit, obs, groups, member, shots, qpus)
    plan.explanation = explanation + plan.explanation
    plan.candidates = summaries
    return plan


def _uncut_plan(circuit: QuantumCircuit, obs: list[str], groups: list[str], member: list[int],
                shots: int, fitting: list[str], depth: int) -> CutPlan:
    sub = SubcircuitSpec(
        name="sub0", qubits=circuit.num_qubits, two_qubit_depth=depth, shots=shots * len(groups),
        role="independent", eligible_qpus=fitting, original_qubits=list(range(circuit.num_qubits)),
        body_qpy=circuits_to_b64([circuit]),
        observable_qubits=[(q, q) for q in range(circuit.num_qubits)],
    )
    return CutPlan(
        method="none", num_qubits=circuit.num_qubits, observables=obs, cuts=[], subcircuits=[sub],
        gamma=1.0, overhead=1.0, base_shots=shots,
        explanation=[f"fits {', '.join(fitting)} whole: no cuts, overhead 1; "
                     f"{len(groups)} measurement basis/bases x {shots} shots"],
        locc=LoccData(group_bases=groups, observable_group=member, samples_per_group=shots),
    )


def _materialise(c: _Candidate, circuit: QuantumCircuit, obs: list[str], groups: list[str],
                 member: list[int], shots: int, qpus: Sequence[QPUCapacity]) -> CutPlan:
    def eligible(name: str) -> list[str]:
        q, d = c.parts[name]
        return [qpu.name for qpu in qpus if qpu.fits(q, d)]

    samples = math.ceil(shots * c.overhead)
    notes: list[str] = []
    subs: list[SubcircuitSpec] = []
    if c.method == "lo":
        assert c.lo_part is not None
        subexp, coefs = subexperiments(c.lo_part)
        term_shots = allocate(samples, [abs(x) for x in coefs])
        for name, sub_circ in c.lo_part.subcircuits.items():
            n_groups = len(subexp[name]) // len(coefs)
            per = [s for s in term_shots for _ in range(n_groups)]
            subs.append(SubcircuitSpec(
                name=name, qubits=sub_circ.num_qubits, two_qubit_depth=c.parts[name][1],
                shots=sum(per), role="independent", eligible_qpus=eligible(name),
                subexperiments_qpy=circuits_to_b64(subexp[name]), subexperiment_shots=per))
        notes.append(f"{len(coefs)} QPD terms; {samples} samples (= {shots} x overhead) split "
                     "over terms in proportion to |coefficient|; all subcircuits independent")
        lo = LoData(coefficients=coefs, subobservables={
            k: [p.to_label() for p in v] for k, v in c.lo_part.subobservables.items()})
        return CutPlan(method="lo", num_qubits=circuit.num_qubits, observables=obs, cuts=c.cuts,
                       subcircuits=subs, gamma=c.gamma, overhead=c.overhead, base_shots=shots,
                       explanation=notes, lo=lo)
    layout = c.layout
    assert layout is not None
    for name in layout.names:
        deps = sorted({b.source for b in layout.bundles if b.target == name})
        measures = any(b.source == name for b in layout.bundles)
        role: Role = "prepare" if deps else ("measure" if measures else "independent")
        subs.append(SubcircuitSpec(
            name=name, qubits=c.parts[name][0], two_qubit_depth=c.parts[name][1],
            shots=samples * len(groups), role=role, depends_on=deps, eligible_qpus=eligible(name),
            original_qubits=layout.original_qubits[name],
            body_qpy=circuits_to_b64([layout.bodies[name]]),
            observable_qubits=layout.observable_qubits[name]))
    for b in layout.bundles:
        notes.append(f"bundle {b.name}: {b.wires} wire(s) on qubits {b.original_qubits}, "
                     f"{b.source} measures -> {b.target} prepares, gamma {b.gamma:g} "
                     f"({2 ** b.wires + 1} channels)")
    notes.append(f"every subcircuit runs {samples} shots per measurement basis "
                 f"(= {shots} x overhead {c.overhead:.4g}), {len(groups)} basis/bases")
    return CutPlan(method="locc", num_qubits=circuit.num_qubits, observables=obs, cuts=c.cuts,
                   subcircuits=subs, bundles=layout.bundles, edges=c.edges, gamma=c.gamma,
                   overhead=c.overhead, base_shots=shots, explanation=notes,
                   locc=LoccData(group_bases=groups, observable_group=member,
                                 samples_per_group=samples))
