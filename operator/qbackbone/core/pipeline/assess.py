"""Assess each QPU for one job: selection, readiness, compiled depth, estimated fidelity."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from qiskit import QuantumCircuit

from qbackbone.api.quantumjob import QPUSelector
from qbackbone.core.circuits.features import two_qubit_depth
from qbackbone.core.mitigation.plan import NO_MITIGATION_IDEAL, MitigationPlan
from qbackbone.core.qip.inputs import QPUAssessment
from qbackbone.core.qpus.descriptor import QPUDescriptor
from qbackbone.core.qpus.fidelity import estimate_success_probability
from qbackbone.core.qpus.fleet import QPU


@dataclass
class CompiledJob:
    """Per-QPU compiled circuits, kept for execution so each QPU compiles once."""

    circuits: dict[str, list[QuantumCircuit]] = field(default_factory=dict)


def selected(qpu: QPU, selector: QPUSelector | None) -> bool:
    """Whether the job's QPU selector admits the QPU."""
    if selector is None:
        return True
    d = qpu.descriptor
    if selector.names is not None and d.name not in selector.names:
        return False
    labels = selector.match_labels or {}
    return all(d.labels.get(k) == v for k, v in labels.items())


def assess_fleet(circuits: Sequence[QuantumCircuit], qubits: int, fleet: Sequence[QPU],
                 selector: QPUSelector | None, now: datetime, compiled: CompiledJob,
                 mitigation: Callable[[QPUDescriptor, Sequence[QuantumCircuit]],
                                      MitigationPlan] | None = None,
                 ) -> list[QPUAssessment]:
    """Compile the job's circuits for every QPU that could take them, estimate fidelity and
    choose the mitigation a share on it would run with."""
    out = []
    for qpu in fleet:
        d = qpu.descriptor
        chosen = selected(qpu, selector)
        age = None
        if d.calibration is not None and d.calibration.taken_at is not None:
            age = (now - d.calibration.taken_at).total_seconds()
        if not chosen or qubits > d.qubits:
            out.append(QPUAssessment(d, chosen, True, None, None, calibration_age_seconds=age))
            continue
        try:
            transpiled = qpu.transpile(circuits)
        except Exception as err:  # the transpiler raises many types; the QPU is then ineligible
            out.append(QPUAssessment(d, chosen, True, None, None,
                                     compile_error=f"{type(err).__name__}: {err}"[:300],
                                     calibration_age_seconds=age))
            continue
        compiled.circuits[d.name] = transpiled
        depth = max(two_qubit_depth(c) for c in transpiled)
        fidelity = 1.0 if d.calibration is None else min(
            estimate_success_probability(c, d.calibration) for c in transpiled)
        plan = mitigation(d, transpiled) if mitigation is not None else NO_MITIGATION_IDEAL
        out.append(QPUAssessment(d, chosen, True, depth, fidelity, calibration_age_seconds=age,
                                 mitigation=plan))
    return out
