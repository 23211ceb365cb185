"""Exact (no sampling) predicted variance of the LOCC and LO cut estimators.

``distribution(circuit)`` is the exact distribution of a circuit's classical record (branching
statevector simulation over measurements and resets), keyed like runner counts (clbit 0
rightmost). From it:

* ``lo_variance(plan, shots)``: the LO estimator ``sum_j c_j prod_p mean_{j,p}`` with
  independent per-subcircuit means over the plan's shots ``N_j``:
  ``Var = sum_j c_j^2 [prod_p (E_jp^2 + (1 - E_jp^2)/N_j) - prod_p E_jp^2]`` (exact).
* ``locc_variance(plan)``: the LOCC group-mean estimator of ``locc.py`` for a plan of one
  measuring and one preparing subcircuit. Per channel ``c`` the preparing side's state ``k``
  has probability ``pi_k``; the measuring side's parity has mean ``a_k`` given ``k``, the
  preparing side's ``b_k``; ``E_c = sum_k pi_k a_k b_k`` and per sample (delta method,
  exact to ``O(1/N^2)``)
  ``s_c^2 = Var_pi(a b) + sum_k pi_k [b_k^2 (1 - a_k^2) + a_k^2 (1 - b_k^2)]``, so
  ``Var = sum_c c_c^2 s_c^2 / N_c``. ``sum_c c_c E_c`` must equal the exact value (no bias).

The worst-case bound ``Var <= gamma^2 / N`` is what ``(2^(n+1) - 1)^2 / 16^n`` compares; on a
given circuit the per-term spreads ``s^2 <= 1`` are what decide the real ratio.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import Operator, PauliList, Statevector
from qiskit_addon_cutting.utils.observable_grouping import ObservableCollection

from qbackbone.core.circuits.serialize import circuits_from_b64
from qbackbone.core.cutting import CutPlan
from qbackbone.core.cutting.lo import _register_bits
from qbackbone.core.cutting.locc import allocate, build_circuit
from qbackbone.core.cutting.mub import locc_channels
from qbackbone.core.cutting.observables import parity_sign, pauli_char


def _gather(keys: np.ndarray, positions: list[int]) -> np.ndarray:
    """The bits of ``keys`` at ``positions``, packed into integers (positions[0] lowest)."""
    out = np.zeros_like(keys)
    for k, pos in enumerate(positions):
        out |= ((keys >> pos) & 1) << k
    return out


def distribution(circuit: QuantumCircuit) -> dict[int, float]:
    """Exact probabilities of the classical record (integer key, clbit 0 = bit 0)."""
    n = circuit.num_qubits
    branches: list[tuple[np.ndarray, int, float]] = [
        (Statevector.from_int(0, 2**n).data, 0, 1.0)
    ]
    for inst in circuit.data:
        name = inst.operation.name
        qs = [circuit.find_bit(q).index for q in inst.qubits]
        if name == "barrier":
            continue
        if name in ("measure", "reset"):
            q = qs[0]
            out = []
            for vec, key, p in branches:
                idx = np.arange(2**n)
                for bit in (0, 1):
                    keep = ((idx >> q) & 1) == bit
                    sub = np.where(keep, vec, 0)
                    prob = float(np.vdot(sub, sub).real)
                    if prob < 1e-15:
                        continue
                    sub = sub / np.sqrt(prob)
                    if name == "measure":
                        c = circuit.find_bit(inst.clbits[0]).index
                        k = (key & ~(1 << c)) | (bit << c)
                        out.append((sub, k, p * prob))
                    else:
                        if bit:
                            sub = sub[idx ^ (1 << q)]
                        out.append((sub, key, p * prob))
            branches = out
            continue
        op = Operator(inst.operation)
        branches = [
            (Statevector(vec).evolve(op, qs).data, key, p) for vec, key, p in branches
        ]
    dist: dict[int, float] = {}
    for _, key, p in branches:
        dist[key] = dist.get(key, 0.0) + p
    return dist


def lo_terms(plan: CutPlan, observable: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients and exact per-(term, subcircuit) means of an LO plan for one observable."""
    assert plan.lo is not None
    coefs = np.asarray(plan.lo.coefficients)
    means = []
    for sub in plan.subcircuits:
        circuits = circuits_from_b64(sub.subexperiments_qpy or "")
        collection = ObservableCollection(PauliList(plan.lo.subobservables[sub.name]))
        n_groups = len(collection.groups)
        subobs = plan.lo.subobservables[sub.name][observable]
        entries = collection.lookup[PauliList([subobs])[0]]
        col = np.zeros(len(coefs))
        for j in range(len(coefs)):
            vals = []
            for m, k in entries:
                circ = circuits[j * n_groups + m]
                dist = distribution(circ)
                keys = np.array(list(dist), dtype=np.int64)
                probs = np.array(list(dist.values()))
                obs_bits = _gather(keys, _register_bits(circ, "observable_measurements"))
                qpd_bits = _gather(keys, _register_bits(circ, "qpd_measurements"))
                sign = parity_sign(qpd_bits, -1 & ((1 << 62) - 1))
                mask = collection.groups[m].pauli_bitmasks[k]
                vals.append(float(np.dot(probs, sign * parity_sign(obs_bits, mask))))
            col[j] = float(np.mean(vals))
        means.append(col)
    return coefs, np.stack(means, axis=1)


def lo_variance(plan: CutPlan, observable: int = 0) -> dict[str, float]:
    """Exact value and variance of the LO estimator with the plan's own shot allocation."""
    coefs, means = lo_terms(plan, observable)
    shots = np.array(plan.subcircuits[0].subexperiment_shots, dtype=float)
    n_groups = len(shots) // len(coefs)
    shots = shots[::n_groups]
    second = np.prod(means**2 + (1 - means**2) / shots[:, None], axis=1)
    first = np.prod(means, axis=1) ** 2
    var = float(np.sum(coefs**2 * (second - first)))
    gamma = float(np.abs(coefs).sum())
    # Large-sample limit: Var(T_j) -> sum_p (1 - E_p^2) prod_{q != p} E_q^2 / N_j and
    # N_j = N |c_j| / gamma, so N Var -> gamma sum_j |c_j| s_j^2. With few shots per term (the
    # 3-wire plan has 512 terms) the neglected prod_p (1 - E_p^2) / N_j^2 part is not small.
    sq = means**2
    s2 = sum((1 - sq[:, p]) * np.prod(np.delete(sq, p, axis=1), axis=1)
             for p in range(sq.shape[1]))
    return {"value": float(coefs @ np.prod(means, axis=1)), "variance": var,
            "samples": float(shots.sum()), "gamma": gamma,
            "per_sample_variance_limit": float(gamma * np.sum(np.abs(coefs) * s2))}


def _obs_mask(sub: Any, label: str) -> int:
    mask = 0
    for k, (orig, _) in enumerate(sub.observable_qubits):
        if pauli_char(label, orig) != "I":
            mask |= 1 << k
    return mask


def locc_terms(plan: CutPlan, observable: int = 0) -> list[dict[str, Any]]:
    """Per channel: coefficient, exact ``E_c`` and per-sample spread ``s_c^2`` (see module)."""
    assert plan.locc is not None and len(plan.bundles) == 1 and len(plan.subcircuits) == 2
    bundle = plan.bundles[0]
    src, dst = plan.subcircuit(bundle.source), plan.subcircuit(bundle.target)
    body_src = circuits_from_b64(src.body_qpy or "")[0]
    body_dst = circuits_from_b64(dst.body_qpy or "")[0]
    group = plan.locc.group_bases[plan.locc.observable_group[observable]]
    label = plan.observables[observable]
    d = 2**bundle.wires
    mask_a, mask_b = _obs_mask(src, label), _obs_mask(dst, label)
    n_obs_a = len(src.observable_qubits)
    prep: dict[tuple[int, int], float] = {}

    def b_of(basis: int, state: int) -> float:
        if (basis, state) not in prep:
            circ = build_circuit(dst, body_dst, group, [(bundle, basis, state)], [])
            dist = distribution(circ)
            keys = np.array(list(dist), dtype=np.int64)
            prep[(basis, state)] = float(np.dot(list(dist.values()),
                                                parity_sign(keys, mask_b)))
        return prep[(basis, state)]

    out = []
    for ch in locc_channels(bundle.wires):
        circ = build_circuit(src, body_src, group, [], [(bundle, ch.basis)])
        dist = distribution(circ)
        p_m = np.zeros(d)
        fa_m = np.zeros(d)  # E[f_A ; m] (unnormalised)
        for key, p in dist.items():
            m = (key >> n_obs_a) & (d - 1)
            f = float(parity_sign(np.array([key & ((1 << n_obs_a) - 1)]), mask_a)[0])
            p_m[m] += p
            fa_m[m] += p * f
        if ch.flip:
            pi = np.array([(p_m.sum() - p_m[s]) / (d - 1) for s in range(d)])
            fa = np.array([(fa_m.sum() - fa_m[s]) / (d - 1) for s in range(d)])
            b = np.array([b_of(0, s) for s in range(d)])
        else:
            pi, fa = p_m, fa_m
            b = np.array([b_of(ch.basis, s) for s in range(d)])
        a = np.divide(fa, pi, out=np.zeros(d), where=pi > 1e-15)
        e = float(np.sum(pi * a * b))
        s2 = float(np.sum(pi * (a * b) ** 2) - e**2
                   + np.sum(pi * (b**2 * (1 - a**2) + a**2 * (1 - b**2))))
        out.append({"coefficient": ch.coefficient, "E": e, "s2": s2, "raw_s2": 1 - e**2})
    return out


def locc_variance(plan: CutPlan, observable: int = 0) -> dict[str, float]:
    """Exact value and (delta-method) variance of the LOCC estimator with the plan's shots."""
    assert plan.locc is not None
    terms = locc_terms(plan, observable)
    coefs = [t["coefficient"] for t in terms]
    n_c = allocate(plan.locc.samples_per_group, [abs(c) for c in coefs])
    var = sum(t["coefficient"] ** 2 * t["s2"] / n for t, n in zip(terms, n_c, strict=True))
    raw = sum(t["coefficient"] ** 2 * t["raw_s2"] / n for t, n in zip(terms, n_c, strict=True))
    gamma = float(sum(abs(c) for c in coefs))
    return {"value": float(sum(t["coefficient"] * t["E"] for t in terms)), "variance": var,
            "raw_variance": raw, "samples": float(sum(n_c)), "gamma": gamma,
            "per_sample_variance_limit": gamma * sum(abs(t["coefficient"]) * t["s2"]
                                                     for t in terms)}


def worst_case(gamma: float, samples: float) -> float:
    """The bound ``gamma^2 / N`` on the variance of a +-1 QPD estimator."""
    return gamma**2 / samples

