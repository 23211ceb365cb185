"""Circuit structure after cutting: wire segments, partitions and the precedence DAG."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from qiskit import QuantumCircuit
from qiskit.circuit import CircuitInstruction, Instruction


def two_qubit_depth(circuit: QuantumCircuit) -> int:
    """Depth counting only operations on two or more qubits (QPD placeholders excluded)."""
    def counts(inst: CircuitInstruction) -> bool:
        return inst.operation.num_qubits >= 2 and not inst.operation.name.startswith("qpd")

    return int(circuit.depth(counts))


@dataclass(frozen=True)
class Move:
    """A wire cut: the state of segment ``src`` continues on segment ``dst``."""

    src: int
    dst: int
    qubit: int  # original qubit
    position: int  # index of the cut_wire instruction in the cut circuit


@dataclass
class Segmented:
    """A circuit whose wires are split into segments at every ``cut_wire``."""

    num_qubits: int
    segment_qubit: list[int] = field(default_factory=list)  # original qubit of each segment
    ops: list[tuple[Instruction, tuple[int, ...]]] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    final_segment: list[int] = field(default_factory=list)  # per original qubit

    @property
    def num_segments(self) -> int:
        return len(self.segment_qubit)


def segment(circuit: QuantumCircuit) -> Segmented:
    """Split wires at ``cut_wire`` instructions; other instructions keep their order."""
    seg = Segmented(num_qubits=circuit.num_qubits, segment_qubit=list(range(circuit.num_qubits)))
    current = list(range(circuit.num_qubits))
    for pos, inst in enumerate(circuit.data):
        qubits = [circuit.find_bit(q).index for q in inst.qubits]
        name = inst.operation.name
        if name == "cut_wire":
            q = qubits[0]
            new = seg.num_segments
            seg.segment_qubit.append(q)
            seg.moves.append(Move(current[q], new, q, pos))
            current[q] = new
        elif name == "barrier":
            continue
        else:
            seg.ops.append((inst.operation, tuple(current[q] for q in qubits)))
    seg.final_segment = current
    return seg


def components(num_nodes: int, links: Iterable[Sequence[int]]) -> list[int]:
    """Connected-component label (0, 1, ... in order of first node) of each node."""
    parent = list(range(num_nodes))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for group in links:
        for other in group[1:]:
            ra, rb = find(group[0]), find(other)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    relabel: dict[int, int] = {}
    return [relabel.setdefault(find(i), len(relabel)) for i in range(num_nodes)]


def merge_isolated(
    labels: Sequence[int], widths: dict[int, int], linked: set[int], capacity: int
) -> list[int]:
    """Pack components that share no cut with any other into others (first fit, widest first).

    Merging an isolated component never creates a cycle in the precedence DAG and never turns a
    cut into an internal operation; it only avoids needless tiny subcircuits. Labels are then
    renumbered 0.. in order of first appearance.
    """
    load = dict(widths)
    target = {lab: lab for lab in widths}
    hosted: set[int] = set()
    for lab in sorted((lab for lab in widths if lab not in linked), key=lambda x: (-widths[x], x)):
        if lab in hosted:
            continue
        hosts = sorted(
            (h for h in widths if h != lab and target[h] == h), key=lambda h: (-load[h], h)
        )
        for host in hosts:
            if load[host] + load[lab] <= capacity:
                target[lab] = host
                load[host] += load[lab]
                hosted.add(host)
                break
    relabel: dict[int, int] = {}
    return [relabel.setdefault(target[lab], len(relabel)) for lab in labels]


def topological_order(nodes: Sequence[Hashable], edges: Iterable[tuple[Hashable, Hashable]]) -> (
    list[Hashable] | None
):
    """Kahn's order (stable in ``nodes`` order), or ``None`` when the graph has a cycle."""
    succ: dict[Hashable, set[Hashable]] = {n: set() for n in nodes}
    indeg = dict.fromkeys(nodes, 0)
    for a, b in set(edges):
        if b not in succ[a]:
            succ[a].add(b)
            indeg[b] += 1
    order: list[Hashable] = []
    ready = [n for n in nodes if indeg[n] == 0]
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in sorted(succ[n], key=list(nodes).index):
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
    return order if len(order) == len(nodes) else None
