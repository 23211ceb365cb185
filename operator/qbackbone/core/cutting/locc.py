"""LOCC wire cuts: subcircuit bodies, adaptive measure-then-prepare execution, estimation.

Each bundle of ``n`` parallel wires uses the MUB decomposition of :mod:`.mub`. Per channel
combination ``c`` (one channel per bundle) every subcircuit runs ``N_c`` shots in precedence
order; a preparing subcircuit's shots are grouped by the state chosen from its predecessors'
(channel, outcome), so each sample is one shot of every subcircuit. The estimate per ``c`` is
the product of group means (nested along trees of in-degree-1 subcircuits), the value is
``sum_c coef_c E_c`` and ``SE^2 = sum_c coef_c^2 SE_c^2`` with ``SE_c`` the standard error of
a mean of ``N_c`` products (:func:`~.readout.parity_estimate`, never 0; an upper bound for the
group-mean estimator). Observable outcomes that carry their QPU's readout model are corrected
shot by shot (:mod:`.readout`); cut outcomes choose preparations and are taken as read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from itertools import product

import numpy as np
from qiskit import ClassicalRegister, QuantumCircuit

from qbackbone.core.circuits.serialize import circuits_from_b64

from .errors import CutExecutionError
from .models import BundleSpec, CutPlan, SubcircuitSpec
from .mub import Channel, clifford, locc_channels
from .observables import pauli_char
from .readout import MeasuredCounts, as_measured, parity_estimate
from .structure import Segmented, topological_order


@dataclass
class Layout:
    """Subcircuit bodies on local qubits and the bundles between them."""

    names: list[str]
    bodies: dict[str, QuantumCircuit]
    observable_qubits: dict[str, list[tuple[int, int]]]
    original_qubits: dict[str, list[int]]
    bundles: list[BundleSpec]
    bundle_of_cut: dict[int, str]  # cut_wire position -> bundle name


def build_layout(seg: Segmented, labels: Sequence[int], max_wires: int = 3) -> Layout:
    """Local circuits per partition label; cross-partition moves become LOCC bundles."""
    parts = sorted(set(labels), key=list(labels).index)
    names = [f"sub{p}" for p in parts]
    local: dict[int, int] = {}
    width = dict.fromkeys(parts, 0)
    alias = {m.dst: m.src for m in seg.moves if labels[m.src] == labels[m.dst]}
    for s in range(seg.num_segments):
        if s in alias:
            continue
        local[s] = width[labels[s]]
        width[labels[s]] += 1
    for s in range(seg.num_segments):
        root = s
        while root in alias:
            root = alias[root]
        local[s] = local[root]
    bodies = {f"sub{p}": QuantumCircuit(width[p], name=f"sub{p}") for p in parts}
    for op, segs in seg.ops:
        part = labels[segs[0]]
        if any(labels[s] != part for s in segs):
            raise ValueError("a multi-qubit operation spans two partitions without a cut")
        bodies[f"sub{part}"].append(op, [local[s] for s in segs])
    obs: dict[str, list[tuple[int, int]]] = {n: [] for n in names}
    orig: dict[str, set[int]] = {n: set() for n in names}
    for q, s in enumerate(seg.final_segment):
        obs[f"sub{labels[s]}"].append((q, local[s]))
    for s, q in enumerate(seg.segment_qubit):
        orig[f"sub{labels[s]}"].add(q)
    grouped: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
    for m in seg.moves:
        if labels[m.src] != labels[m.dst]:
            grouped.setdefault((labels[m.src], labels[m.dst]), []).append(
                (m.src, m.dst, m.qubit, m.position)
            )
    bundles: list[BundleSpec] = []
    bundle_of: dict[int, str] = {}
    for (a, b), wires in grouped.items():
        for start in range(0, len(wires), max_wires):
            chunk = wires[start : start + max_wires]
            n = len(chunk)
            bundle_of.update({pos: f"b{len(bundles)}" for *_, pos in chunk})
            bundles.append(
                BundleSpec(
                    name=f"b{len(bundles)}",
                    source=f"sub{a}",
                    target=f"sub{b}",
                    wires=n,
                    gamma=float(2 ** (n + 1) - 1),
                    source_qubits=[local[c[0]] for c in chunk],
                    target_qubits=[local[c[1]] for c in chunk],
                    original_qubits=[c[2] for c in chunk],
                )
            )
    return Layout(
        names, bodies, obs, {n: sorted(v) for n, v in orig.items()}, bundles, bundle_of
    )


@cache
def _clifford_circuit(n: int, basis: int) -> QuantumCircuit:
    return clifford(n, basis).to_circuit()


def build_circuit(
    sub: SubcircuitSpec,
    body: QuantumCircuit,
    group_basis: str,
    preps: Sequence[tuple[BundleSpec, int, int]],
    measures: Sequence[tuple[BundleSpec, int]],
) -> QuantumCircuit:
    """Prepare incoming bundles (basis, state), run the body, measure cuts and observables.

    Clbits: the observed qubits first (in ``sub.observable_qubits`` order), then each outgoing
    bundle's wires in order.
    """
    qc = QuantumCircuit(body.num_qubits, name=sub.name)
    obs_reg = ClassicalRegister(len(sub.observable_qubits), "obs")
    if sub.observable_qubits:
        qc.add_register(obs_reg)
    cut_regs = [ClassicalRegister(b.wires, f"cut_{b.name}") for b, _ in measures]
    for reg in cut_regs:
        qc.add_register(reg)
    for bundle, basis, state in preps:
        for i, q in enumerate(bundle.target_qubits):
            if (state >> i) & 1:
                qc.x(q)
        if basis:
            qc.compose(_clifford_circuit(bundle.wires, basis), bundle.target_qubits, inplace=True)
    qc.compose(body, inplace=True)
    for (bundle, basis), reg in zip(measures, cut_regs, strict=True):
        if basis:
            qc.compose(
                _clifford_circuit(bundle.wires, basis).inverse(), bundle.source_qubits, inplace=True
            )
        qc.measure(bundle.source_qubits, list(reg))
    for k, (orig, loc) in enumerate(sub.observable_qubits):
        pauli = pauli_char(group_basis, orig)
        if pauli == "X":
            qc.h(loc)
        elif pauli == "Y":
            qc.sdg(loc)
            qc.h(loc)
        qc.measure(loc, obs_reg[k])
    return qc


def allocate(total: int, weights: Sequence[float]) -> list[int]:
    """Largest-remainder split of ``total`` proportional to ``weights``, at least 1 each."""
    w = np.asarray(weights, dtype=float)
    total = max(total, len(w))
    spare = total - len(w)
    raw = spare * w / w.sum()
    base = np.floor(raw).astype(int)
    order = np.argsort(-(raw - base), kind="stable")
    base[order[: spare - int(base.sum())]] += 1
    return [int(b) + 1 for b in base]


@dataclass
class _Block:
    group: int
    combo: tuple[Channel, ...]
    coefficient: float
    samples: int
    obs: dict[str, np.ndarray] = field(default_factory=dict)  # estimated signs (sample, bit)
    cut: dict[str, np.ndarray] = field(default_factory=dict)  # bundle -> outcome per sample
    config: dict[str, np.ndarray] = field(default_factory=dict)  # subcircuit -> prep config id


@dataclass
class _Request:
    block: _Block
    circuit: int
    samples: np.ndarray


class LoccExecution:
    """Step through an LOCC (or uncut) plan: ``circuits(name)`` then ``submit(name, counts)``."""

    def __init__(self, plan: CutPlan, seed: int | None = None) -> None:
        if plan.locc is None:
            raise ValueError("plan has no LOCC data (method must be 'locc' or 'none')")
        self.plan = plan
        self.rng = np.random.default_rng(seed)
        names = [s.name for s in plan.subcircuits]
        order = topological_order(names, [(a, b) for a, b in plan.edges])
        if order is None:
            raise ValueError("LOCC precedence graph has a cycle")
        self.order: list[str] = [str(n) for n in order]
        self.bodies = {
            s.name: circuits_from_b64(s.body_qpy)[0] for s in plan.subcircuits if s.body_qpy
        }
        self.incoming = {n: [b for b in plan.bundles if b.target == n] for n in names}
        self.outgoing = {n: [b for b in plan.bundles if b.source == n] for n in names}
        channel_sets = [locc_channels(b.wires) for b in plan.bundles]
        combos = list(product(*channel_sets))
        coefs = [float(np.prod([c.coefficient for c in combo])) for combo in combos]
        n_per = allocate(plan.locc.samples_per_group, [abs(c) for c in coefs])
        self.blocks = [
            _Block(g, combo, coef, n)
            for g in range(len(plan.locc.group_bases))
            for combo, coef, n in zip(combos, coefs, n_per, strict=True)
        ]
        self.bundle_index = {b.name: i for i, b in enumerate(plan.bundles)}
        self._pending: dict[str, tuple[list[QuantumCircuit], list[int], list[_Request]]] = {}
        self.done: list[str] = []

    def shots_per_subcircuit(self) -> int:
        """Every subcircuit runs one shot per sample."""
        return sum(b.samples for b in self.blocks)

    def circuits(self, name: str) -> tuple[list[QuantumCircuit], list[int]]:
        """The circuits and shots of ``name``; its predecessors must have been submitted."""
        missing = [b.source for b in self.incoming[name] if b.source not in self.done]
        if missing:
            raise CutExecutionError(
                f"{name} prepares states measured by {missing}: run those first"
            )
        sub = self.plan.subcircuit(name)
        keys: dict[tuple[int, tuple[int, ...], tuple[tuple[int, int], ...]], int] = {}
        specs: list[tuple[int, tuple[int, ...], tuple[tuple[int, int], ...]]] = []
        shots: list[int] = []
        requests: list[_Request] = []
        for block in self.blocks:
            codes = np.zeros((len(self.incoming[name]), block.samples), dtype=np.int64)
            for k, bundle in enumerate(self.incoming[name]):
                d = 2**bundle.wires
                ch = block.combo[self.bundle_index[bundle.name]]
                m = block.cut[bundle.name]
                state = (m + self.rng.integers(1, d, size=m.shape)) % d if ch.flip else m
                codes[k] = ch.basis * d + state
            radix = [(2**b.wires + 1) * 2**b.wires for b in self.incoming[name]]
            config = np.zeros(block.samples, dtype=np.int64)
            for k, r in enumerate(radix):
                config = config * r + codes[k]
            block.config[name] = config
            outs = tuple(block.combo[self.bundle_index[b.name]].basis for b in self.outgoing[name])
            uniq, inverse = np.unique(config, return_inverse=True)
            for u_idx in range(len(uniq)):
                sel = np.flatnonzero(inverse == u_idx)
                prep_codes = tuple(
                    (int(c) // 2**b.wires, int(c) % 2**b.wires)
                    for b, c in zip(self.incoming[name], codes[:, sel[0]], strict=True)
                )
                key = (block.group, outs, prep_codes)
                if key not in keys:
                    keys[key] = len(specs)
                    specs.append(key)
                    shots.append(0)
                shots[keys[key]] += len(sel)
                requests.append(_Request(block, keys[key], sel))
        assert self.plan.locc is not None
        body = self.bodies[name]
        circuits = [
            build_circuit(
                sub,
                body,
                self.plan.locc.group_bases[g],
                [(b, bs, st) for b, (bs, st) in zip(self.incoming[name], preps, strict=True)],
                list(zip(self.outgoing[name], outs, strict=True)),
            )
            for g, outs, preps in specs
        ]
        self._pending[name] = (circuits, shots, requests)
        return circuits, shots

    def submit(self, name: str, counts: Sequence[dict[str, int] | MeasuredCounts]) -> None:
        """Hand back the counts for the circuits of ``circuits(name)``, in the same order.

        Observable clbits of counts that carry a readout model are corrected shot by shot;
        the cut outcomes choose the successors' preparations and are taken as read."""
        if name not in self._pending:
            raise CutExecutionError(f"counts for {name} were not asked for")
        circuits, shots, requests = self._pending.pop(name)
        if len(counts) != len(circuits):
            raise CutExecutionError(f"{name}: {len(counts)} counts for {len(circuits)} circuits")
        outcomes: list[tuple[np.ndarray, np.ndarray]] = []
        for i, c in enumerate(counts):
            measured = as_measured(c)
            if measured.shots != shots[i]:
                raise CutExecutionError(
                    f"{name} circuit {i}: {measured.shots} shots counted, {shots[i]} run")
            outcomes.append(measured.per_shot(self.rng))
        cursor = [0] * len(circuits)
        n_obs = len(self.plan.subcircuit(name).observable_qubits)
        for req in requests:
            start = cursor[req.circuit]
            picked = slice(start, start + len(req.samples))
            vals = outcomes[req.circuit][0][picked]
            cursor[req.circuit] = start + len(req.samples)
            block = req.block
            block.obs.setdefault(name, np.ones((block.samples, n_obs)))[req.samples] = (
                outcomes[req.circuit][1][picked, :n_obs]
            )
            offset = n_obs
            for bundle in self.outgoing[name]:
                arr = block.cut.setdefault(bundle.name, np.zeros(block.samples, dtype=np.int64))
                arr[req.samples] = (vals >> offset) & ((1 << bundle.wires) - 1)
                offset += bundle.wires
        self.done.append(name)

    def estimate(self) -> tuple[list[float], list[float]]:
        """Values and standard errors per observable."""
        assert self.plan.locc is not None
        if set(self.done) != set(self.order):
            missing = sorted(set(self.order) - set(self.done))
            raise CutExecutionError(f"not all subcircuits ran: missing {missing}")
        values, errors = [], []
        for o, label in enumerate(self.plan.observables):
            group = self.plan.locc.observable_group[o]
            val, var = 0.0, 0.0
            for block in self.blocks:
                if block.group != group:
                    continue
                raw, rb = self._block_products(block, label)
                _, raw_var = parity_estimate(raw[:, None], np.ones(len(raw)), [0])
                val += block.coefficient * float(rb)
                var += block.coefficient**2 * raw_var
            values.append(val)
            errors.append(float(np.sqrt(var)))
        return values, errors

    def _block_products(self, block: _Block, label: str) -> tuple[np.ndarray, float]:
        f: dict[str, np.ndarray] = {}
        for sub in self.plan.subcircuits:
            bits = [k for k, (orig, _) in enumerate(sub.observable_qubits)
                    if pauli_char(label, orig) != "I"]
            obs = block.obs.get(sub.name, np.ones((block.samples, len(sub.observable_qubits))))
            f[sub.name] = np.prod(obs[:, bits], axis=1)
        raw = np.prod(np.stack(list(f.values())), axis=0)
        preds = {n: {b.source for b in self.incoming[n]} for n in self.order}
        succs = {n: {b.target for b in self.outgoing[n]} for n in self.order}

        def tree(n: str) -> bool:
            return len(preds[n]) == 1 and all(tree(s) for s in succs[n])

        def h(n: str) -> np.ndarray:
            val = f[n].copy()
            for s in sorted(succs[n]):
                if tree(s):
                    hs = h(s)
                    gid = np.unique(block.config[s], return_inverse=True)[1]
                    means = np.bincount(gid, weights=hs) / np.bincount(gid)
                    val *= means[gid]
            return val

        rb = np.ones(block.samples)
        for n in self.order:
            if not tree(n):
                rb *= h(n)
        return raw, float(rb.mean())
