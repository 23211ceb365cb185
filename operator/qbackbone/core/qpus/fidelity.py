"""Estimated success probability of a transpiled circuit, and a derived maximum depth."""

from __future__ import annotations

import math

from qiskit import QuantumCircuit

from qbackbone.core.qpus.descriptor import Calibration

DEFAULT_SUCCESS_THRESHOLD = 0.5


def _dephasing_rate(t1: float | None, t2: float | None) -> float:
    """1/T_phi from 1/T2 = 1/(2 T1) + 1/T_phi (zero when calibration says it is negligible)."""
    if not t2:
        return 0.0
    rate = 1.0 / t2 - (0.5 / t1 if t1 else 0.0)
    return max(rate, 0.0)


def estimate_success_probability(circuit: QuantumCircuit, cal: Calibration) -> float:
    """Product of gate and readout fidelities times idle decoherence, on the used qubits.

    Gate and readout errors come from the calibration of the exact physical qubits the
    transpiled circuit uses (medians where an entry is missing). Idle time per qubit is the
    circuit's duration minus the time the qubit is busy; it decays as exp(-t/T1 - t/T_phi).
    """
    fallback_err = {k: cal.median_error(k) or 0.0 for k in ("1q", "2q", "readout")}
    fallback_dur = {k: cal.median_duration(k) or 0.0 for k in ("1q", "2q", "readout")}
    clock: dict[int, float] = {}
    busy: dict[int, float] = {}
    log_p = 0.0
    for inst in circuit.data:
        name = inst.operation.name
        if name in ("barrier", "delay"):
            continue
        qargs = tuple(circuit.find_bit(q).index for q in inst.qubits)
        kind = "readout" if name == "measure" else ("2q" if len(qargs) >= 2 else "1q")
        err = cal.gate_errors.get((name, qargs))
        dur = cal.gate_durations.get((name, qargs))
        if name == "rz":  # virtual gate
            err, dur = 0.0, 0.0
        err = fallback_err[kind] if err is None else err
        dur = fallback_dur[kind] if dur is None else dur
        log_p += math.log(max(1.0 - err, 1e-12))
        start = max((clock.get(q, 0.0) for q in qargs), default=0.0)
        for q in qargs:
            clock[q] = start + dur
            busy[q] = busy.get(q, 0.0) + dur
    total = max(clock.values(), default=0.0)
    for q, used in busy.items():
        idle = max(total - used, 0.0)
        t1 = cal.t1[q] if q < len(cal.t1) else None
        t2 = cal.t2[q] if q < len(cal.t2) else None
        log_p -= idle * ((1.0 / t1 if t1 else 0.0) + _dephasing_rate(t1, t2))
    return math.exp(log_p)


def derive_max_depth(cal: Calibration, threshold: float = DEFAULT_SUCCESS_THRESHOLD) -> int | None:
    """Two-qubit depth at which a pair of qubits keeps success probability ``threshold``.

    One layer costs a median two-qubit gate error and, on each of the two qubits, decoherence
    over a median two-qubit gate duration (a conservative, device-level figure).
    """
    err = cal.median_error("2q")
    dur = cal.median_duration("2q") or 0.0
    t1, t2 = cal.median_t1(), cal.median_t2()
    if err is None:
        return None
    per_layer = -math.log(max(1.0 - err, 1e-12))
    per_layer += 2 * dur * ((1.0 / t1 if t1 else 0.0) + _dephasing_rate(t1, t2))
    if not per_layer > 0 or not math.isfinite(per_layer):
        return None
    return max(1, int(-math.log(threshold) / per_layer))
