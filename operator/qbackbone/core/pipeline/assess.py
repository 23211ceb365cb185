"""Assess each QPU for one job: selection (names, labels, CEL), readiness, compiled depth
and estimated fidelity."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from qiskit import QuantumCircuit

from qbackbone.api.qpunode import QPUSelector
from qbackbone.core.circuits.features import two_qubit_depth
from qbackbone.core.mitigation.plan import NO_MITIGATION_IDEAL, MitigationPlan
from qbackbone.core.qip.inputs import QPUAssessment
from qbackbone.core.qpus.descriptor import QPUDescriptor
from qbackbone.core.qpus.fidelity import estimate_success_probability
from qbackbone.core.qpus.fleet import QPU
from qbackbone.core.qpus.selector import QPUDeviceSelector, compile_selector


@dataclass
class CompiledJob:
    """Per-QPU compiled circuits, kept for execution so each QPU compiles once."""

    circuits: dict[str, list[QuantumCircuit]] = field(default_factory=dict)


@dataclass(frozen=True)
class Selection:
    """Which QPUs a job may use: its own selector and its policy's (every one must admit)."""

    selectors: tuple[QPUSelector, ...] = ()
    cel: tuple[QPUDeviceSelector, ...] = ()

    @classmethod
    def of(cls, job: QPUSelector | None, policy: QPUSelector | None = None) -> Selection:
        """Compile the CEL expressions first: JobFailure(InvalidQPUSelector) before any work."""
        named = (("spec.execution.qpuSelector.cel", job),
                 ("the policy's spec.hardware.qpuSelector.cel", policy))
        return cls(tuple(s for s in (job, policy) if s is not None),
                   tuple(compile_selector(s.cel, source) for source, s in named
                         if s is not None and s.cel is not None))

    def admits(self, qpu: QPU) -> bool:
        """Names, labels and CEL of every selector hold for the QPU."""
        d = qpu.descriptor
        for selector in self.selectors:
            if selector.names is not None and d.name not in selector.names:
                return False
            labels = selector.match_labels or {}
            if not all(d.labels.get(k) == v for k, v in labels.items()):
                return False
        return all(cel.matches(qpu) for cel in self.cel)


def assess_fleet(circuits: Sequence[QuantumCircuit], qubits: int, fleet: Sequence[QPU],
                 selection: Selection, now: datetime, compiled: CompiledJob,
                 mitigation: Callable[[QPUDescriptor, Sequence[QuantumCircuit]],
                                      MitigationPlan] | None = None,
                 ) -> list[QPUAssessment]:
    """Compile the job's circuits for every QPU that could take them, estimate fidelity and
    choose the mitigation a share on it would run with."""
    out = []
    for qpu in fleet:
        d = qpu.descriptor
        chosen = selection.admits(qpu)
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
