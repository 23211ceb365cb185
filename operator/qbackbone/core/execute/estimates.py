"""Mitigated expectation values on one noisy QPU, and strata combined into one value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qbackbone.api.mitigation import MitigationReport
from qbackbone.api.quantumjob import ExpectationValue, StratumValue
from qbackbone.core.mitigation.plan import MitigationPlan
from qbackbone.core.mitigation.residual import residual_model_text
from qbackbone.core.mitigation.uncertainty import MitigatedValue, mitigated_value
from qbackbone.core.qpus.backends import EstimatingExecutor
from qbackbone.core.qpus.fidelity import estimate_success_probability
from qbackbone.core.qpus.fleet import QPU


def estimates_mitigated(qpu: QPU, has_observables: bool) -> bool:
    """Whether a share of an expectation-value job on this QPU runs through the Estimator."""
    return has_observables and not qpu.descriptor.ideal and isinstance(qpu.executor,
                                                                       EstimatingExecutor)


@dataclass(frozen=True)
class EstimatorWork:
    """The compiled circuit and the observables laid out on it, for one QPU."""

    circuit: QuantumCircuit
    observables: list[SparsePauliOp]
    fidelity: float  # estimated success probability, readout included


def prepare_estimator_work(qpu: QPU, circuit: QuantumCircuit, observables: Sequence[str],
                           seed: int = 7) -> EstimatorWork:
    """Compile the (unmeasured) circuit for the QPU and lay the observables out on it."""
    (isa,) = qpu.transpile([circuit], seed=seed)
    laid = [SparsePauliOp(o).apply_layout(isa.layout, num_qubits=isa.num_qubits)
            for o in observables]
    cal = qpu.descriptor.calibration
    fidelity = 1.0 if cal is None else estimate_success_probability(_measured(isa), cal)
    return EstimatorWork(isa, laid, fidelity)


def _measured(isa: QuantumCircuit) -> QuantumCircuit:
    """The circuit with its active qubits read out: the readout errors the estimate suffers."""
    measured = isa.copy()
    measured.measure_active(inplace=True)
    return measured


def estimate_on_qpu(qpu: QPU, work: EstimatorWork, shots: int, seed: int | None,
                    plan: MitigationPlan, target_sigma: float) -> list[MitigatedValue]:
    """One Estimator call on the QPU; each value with its honest uncertainty."""
    executor = qpu.executor
    if not isinstance(executor, EstimatingExecutor):
        raise TypeError(f"QPU {qpu.name} cannot estimate expectation values")
    raw = executor.estimate(work.circuit, work.observables, shots, seed, plan)
    return [mitigated_value(r, plan, work.fidelity, target_sigma) for r in raw]


def combine_mitigated(observable: str, strata: Sequence[tuple[str, int, MitigatedValue]]
                      ) -> ExpectationValue:
    """Shot-weighted mean of the QPUs' values: statistical errors add in quadrature, the
    systematic ones linearly (the QPUs' biases may share a sign)."""
    total = sum(n for _, n, _ in strata)
    weights = [n / total for _, n, _ in strata]
    value = sum(w * v.value for w, (_, _, v) in zip(weights, strata, strict=True))
    std = math.sqrt(sum((w * v.std_error) ** 2
                        for w, (_, _, v) in zip(weights, strata, strict=True)))
    sys = sum(w * v.systematic_error for w, (_, _, v) in zip(weights, strata, strict=True))
    methods = list(dict.fromkeys(v.method for _, _, v in strata))
    listed = None if len(strata) == 1 else [
        StratumValue(qpu=q, shots=n, value=round(v.value, 6), std_error=round(v.std_error, 6),
                     systematic_error=round(v.systematic_error, 6), method=v.method)
        for q, n, v in strata]
    return ExpectationValue(observable=observable, value=round(value, 6),
                            std_error=round(std, 6), systematic_error=round(sys, 6),
                            method="; ".join(methods), strata=listed)


def mitigation_report(plan: MitigationPlan, qpus: Sequence[str], calibration: str | None
                      ) -> MitigationReport:
    """The result's record of one QPU group's mitigation."""
    if plan.m3:
        model = ("counts: the verification allows only the non-readout error, 1 - F / F_readout "
                 "per QPU, F the estimated success probability, F_readout the calibration's")
    elif plan.zne:
        model = ("ZNE: half the exponential/linear extrapolator spread, 0.01 and the "
                 + residual_model_text("ZNE") + ", in quadrature; a value above the target "
                 "sigma whose noise-factor-1 value is more certain is reported at noise factor 1 "
                 "with the " + residual_model_text("Readout"))
    else:
        model = residual_model_text(plan.level)
    return MitigationReport(level=plan.level, techniques=plan.techniques,
                            shot_multiplier=plan.shot_multiplier,
                            circuit_multiplier=round(plan.circuit_multiplier, 3),
                            systematic_model=model, calibration=calibration, reason=plan.reason,
                            qpus=list(qpus))
