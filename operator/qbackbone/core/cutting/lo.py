"""Gate cuts and LO wire cuts through qiskit-addon-cutting, with standard errors.

The library generates the subexperiments (all QPD terms, exact weights) and we reconstruct from
counts: per term ``j`` the product of independent per-subcircuit means ``T_j``, the value
``sum_j coef_j T_j`` and variance ``sum_j coef_j^2 Var(T_j)`` with
``Var(prod X_p) = prod(E_p^2 + V_p) - prod E_p^2`` and ``V`` per mean from
:func:`~.readout.parity_estimate` (never 0, even when every shot of a subexperiment agrees).
Counts that carry their QPU's readout model are corrected shot by shot (:mod:`.readout`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import PauliList
from qiskit_addon_cutting import generate_cutting_experiments, partition_problem
from qiskit_addon_cutting.instructions import Move
from qiskit_addon_cutting.qpd import TwoQubitQPDGate
from qiskit_addon_cutting.utils.observable_grouping import ObservableCollection

from qbackbone.core.circuits.serialize import circuits_from_b64

from .errors import CutExecutionError, CutPlanningError
from .models import CutPlan
from .readout import MeasuredCounts, as_measured, parity_estimate
from .structure import components, merge_isolated, segment, two_qubit_depth

MAX_TERMS = 5000


@dataclass
class LoPartition:
    """A cut circuit split by the library: subcircuits keyed ``sub<label>``, subobservables."""

    subcircuits: dict[str, QuantumCircuit]
    subobservables: dict[str, PauliList]
    num_terms: int
    gamma: float


def partition(
    cut_circuit: QuantumCircuit, observables: Sequence[str], capacity: int
) -> LoPartition:
    """Turn wire cuts into Moves and split along cut gates (isolated pieces packed together)."""
    moved, expanded = _moves(cut_circuit, observables)
    links = [
        [moved.find_bit(q).index for q in inst.qubits]
        for inst in moved.data
        if len(inst.qubits) >= 2 and not isinstance(inst.operation, TwoQubitQPDGate)
    ]
    labels = components(moved.num_qubits, links)
    linked: set[int] = set()
    for inst in moved.data:
        if isinstance(inst.operation, TwoQubitQPDGate):
            qs = [labels[moved.find_bit(q).index] for q in inst.qubits]
            if qs[0] != qs[1]:
                linked.update(qs)
    widths: dict[int, int] = {}
    for lab in labels:
        widths[lab] = widths.get(lab, 0) + 1
    labels = merge_isolated(labels, widths, linked, capacity)
    problem = partition_problem(moved, labels, expanded)
    gamma = float(np.prod([np.sum(np.abs(b.coeffs)) for b in problem.bases]))
    terms = int(np.prod([len(b.coeffs) for b in problem.bases]))
    assert problem.subobservables is not None
    return LoPartition(
        {f"sub{k}": c for k, c in problem.subcircuits.items()},
        {f"sub{k}": v for k, v in problem.subobservables.items()},
        terms,
        gamma,
    )


def _moves(cut_circuit: QuantumCircuit, observables: Sequence[str]) -> tuple[
    QuantumCircuit, PauliList
]:
    """One qubit per wire segment, each wire cut a Move marked for cutting; observables moved
    onto each qubit's last segment (the library's ``cut_wires`` miscounts non-adjacent cuts).
    """
    seg = segment(cut_circuit)
    moved = QuantumCircuit(seg.num_segments)
    ops = iter(seg.ops)
    moves = {m.position: m for m in seg.moves}
    for pos, inst in enumerate(cut_circuit.data):
        if pos in moves:
            m = moves[pos]
            moved.append(TwoQubitQPDGate.from_instruction(Move()), [m.src, m.dst])
        elif inst.operation.name != "barrier":
            op, segs = next(ops)
            moved.append(op, list(segs))
    labels = []
    for obs in observables:
        chars = ["I"] * seg.num_segments
        for q, s in enumerate(seg.final_segment):
            chars[s] = obs[len(obs) - 1 - q]
        labels.append("".join(reversed(chars)))
    return moved, PauliList(labels)


def subexperiments(part: LoPartition) -> tuple[dict[str, list[QuantumCircuit]], list[float]]:
    """All subexperiments (exact QPD weights) and their coefficients."""
    if part.num_terms > MAX_TERMS:
        raise CutPlanningError(
            f"{part.num_terms} QPD terms exceed the engine's limit of {MAX_TERMS}; "
            "lower maxSamplingOverhead or use larger QPUs"
        )
    subexp, coefs = generate_cutting_experiments(part.subcircuits, part.subobservables, np.inf)
    assert isinstance(subexp, dict)
    return {str(k): list(v) for k, v in subexp.items()}, [float(c) for c, _ in coefs]


def _register_bits(circuit: QuantumCircuit, name: str) -> list[int]:
    for reg in circuit.cregs:
        if reg.name == name:
            return [circuit.find_bit(b).index for b in reg]
    return []


def _masked(positions: Sequence[int], mask: int) -> list[int]:
    """The clbits of ``positions`` whose bit is set in ``mask`` (bit k: ``positions[k]``)."""
    return [pos for k, pos in enumerate(positions) if (int(mask) >> k) & 1]


def reconstruct(
    plan: CutPlan, counts: Mapping[str, Sequence[Mapping[str, int] | MeasuredCounts]]
) -> tuple[list[float], list[float]]:
    """Values and standard errors per observable from counts per subcircuit (plan order);
    readout-corrected where a circuit's counts carry their QPU's readout model."""
    if plan.lo is None:
        raise ValueError("plan has no LO data (method must be 'lo')")
    coefs = np.asarray(plan.lo.coefficients)
    n_obs = len(plan.observables)
    means = np.ones((len(coefs), n_obs))
    second = np.ones((len(coefs), n_obs))  # E[X^2] = E^2 + V, multiplied over subcircuits
    for sub in plan.subcircuits:
        if sub.subexperiments_qpy is None:
            raise ValueError(f"{sub.name} has no subexperiments")
        circuits = circuits_from_b64(sub.subexperiments_qpy)
        sub_counts = counts.get(sub.name)
        if sub_counts is None or len(sub_counts) != len(circuits):
            got = None if sub_counts is None else len(sub_counts)
            raise CutExecutionError(
                f"{sub.name}: expected counts for {len(circuits)} circuits, got {got}"
            )
        collection = ObservableCollection(PauliList(plan.lo.subobservables[sub.name]))
        n_groups = len(collection.groups)
        if len(circuits) != n_groups * len(coefs):
            raise CutExecutionError(f"{sub.name}: {len(circuits)} subexperiments do not match plan")
        est = np.zeros((len(coefs), n_groups), dtype=object)
        for j in range(len(coefs)):
            for k, cog in enumerate(collection.groups):
                idx = j * n_groups + k
                circ, measured = circuits[idx], as_measured(sub_counts[idx])
                if measured.shots != sub.subexperiment_shots[idx]:
                    raise CutExecutionError(
                        f"{sub.name} subexperiment {idx}: {measured.shots} shots counted, "
                        f"{sub.subexperiment_shots[idx]} planned"
                    )
                signs, weights = measured.signs()
                obs_clbits = _register_bits(circ, "observable_measurements")
                qpd_clbits = _register_bits(circ, "qpd_measurements")
                est[j, k] = [
                    parity_estimate(signs, weights, [*_masked(obs_clbits, mask), *qpd_clbits])
                    for mask in cog.pauli_bitmasks
                ]
        for o, subobs in enumerate(plan.lo.subobservables[sub.name]):
            entries = collection.lookup[PauliList([subobs])[0]]
            for j in range(len(coefs)):
                e = np.mean([est[j, m][n][0] for m, n in entries])
                v = np.sum([est[j, m][n][1] for m, n in entries]) / len(entries) ** 2
                means[j, o] *= e
                second[j, o] *= e * e + v
    values = coefs @ means
    var_terms = np.clip(second - means**2, 0.0, None)
    errors = np.sqrt((coefs**2) @ var_terms)
    return [float(v) for v in values], [float(e) for e in errors]


def depth_and_width(circuit: QuantumCircuit) -> tuple[int, int]:
    """(qubits, two-qubit depth) of a library subcircuit."""
    return circuit.num_qubits, two_qubit_depth(circuit)
