"""Cut planning against the QPU fleet: search, check every limit, explain the choice."""

from __future__ import annotations

import math
from collections.abc import Sequence

from qiskit import QuantumCircuit

from qbackbone.core.circuits.observables import group_into_bases, validate_observables
from qbackbone.core.circuits.serialize import circuits_to_b64
from qbackbone.core.errors import JobFailure

from .candidates import KINDS, Candidate, Limits, find_candidates
from .capacity import QPUCapacity, SimulatorUse, allowed_qpus
from .errors import CutPlanningError
from .lo import subexperiments
from .locc import allocate
from .models import CutPlan, LoccData, LoData, Role, SubcircuitSpec
from .structure import two_qubit_depth


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


def plan_cuts(
    circuit: QuantumCircuit,
    observables: Sequence[str],
    qpus: Sequence[QPUCapacity],
    allowed_kinds: Sequence[str],
    max_overhead: float,
    max_subcircuits: int,
    shots: int,
    seed: int | None = None,
    simulators: SimulatorUse = "Allowed",
    fidelity_gap: float = 1.0,
) -> CutPlan:
    """Choose cuts so every subcircuit fits a QPU, minimising the effective sampling overhead
    (gamma^2 over the squared estimated fidelity of the most faithful placement).

    ``shots`` is what an uncut run would use per measurement basis; subcircuits get
    ``shots * overhead`` samples so the precision matches. ``simulators`` says when ideal
    simulators may run a subcircuit (``allowed_qpus``); each subcircuit's ``eligible_qpus``
    are then the most faithful one's noise class (estimated fidelities within
    ``fidelity_gap``, ideal or noisy alike), most faithful first. Raises
    :class:`CutPlanningError`
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
    fitting = [q.name for q in allowed_qpus(qpus, n, depth, simulators)]
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
    limits = Limits(max_overhead, max_subcircuits)
    candidates = find_candidates(circuit, obs, qpus, allowed_kinds, limits, seed, simulators)
    for cand in sorted((c for c in candidates if not c.problems), key=Candidate.rank):
        try:
            plan = _materialise(cand, circuit, obs, groups, member, shots, qpus, simulators,
                                fidelity_gap)
        except CutPlanningError as err:  # a limit only building can show
            cand.problems.append(str(err))
            continue
        plan.explanation = explanation + _explain(cand, candidates) + plan.explanation
        plan.candidates = [c.summary(c is cand) for c in sorted(candidates, key=Candidate.rank)]
        return plan
    if not candidates:
        raise CutPlanningError(explanation[0] + "; the searches found no cut plan")
    best = min(candidates, key=Candidate.rank)
    raise CutPlanningError(
        f"no cut plan within the limits: cheapest found ({best.method}, {len(best.cuts)} cuts, "
        f"subcircuits of <= {best.width} qubits) {'; '.join(best.problems)}. "
        + " | ".join(f"{c.method}@{c.width}q: {'; '.join(c.problems)}" for c in candidates)
    )


def _explain(chosen: Candidate, candidates: Sequence[Candidate]) -> list[str]:
    """Why this plan: the chosen candidate, then every other one with its verdict."""
    lines = [f"chosen: {chosen.describe()}, gamma {chosen.gamma:.4g} ({chosen.note})"]
    for c in sorted(candidates, key=Candidate.rank):
        if c is not chosen:
            verdict = c.summary().verdict
            lines.append(f"{'rejected' if c.problems else 'not chosen'}: {c.describe()}: "
                         f"{verdict}")
    return lines


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


def _materialise(c: Candidate, circuit: QuantumCircuit, obs: list[str], groups: list[str],
                 member: list[int], shots: int, qpus: Sequence[QPUCapacity],
                 simulators: SimulatorUse, gap: float) -> CutPlan:
    def eligible(name: str) -> list[str]:
        q, d = c.parts[name]
        one, two = c.gates.get(name, (0, 0))
        rated = sorted(((qpu.fidelity(q, one, two), qpu) for qpu in
                        allowed_qpus(qpus, q, d, simulators)), key=lambda r: (-r[0], r[1].name))
        best, first = rated[0]
        return [qpu.name for f, qpu in rated if qpu.ideal == first.ideal and best - f <= gap]

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
                       subcircuits=subs, gamma=c.gamma, overhead=c.overhead,
                       qpd_terms=len(coefs), base_shots=shots, explanation=notes, lo=lo)
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
                   overhead=c.overhead, qpd_terms=c.terms, base_shots=shots, explanation=notes,
                   locc=LoccData(group_bases=groups, observable_group=member,
                                 samples_per_group=samples))
