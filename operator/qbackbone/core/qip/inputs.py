"""What the QIP reads: job features, operational context, and each QPU's assessment."""

from __future__ import annotations

from dataclasses import dataclass

from qbackbone.core.circuits.features import CircuitFeatures
from qbackbone.core.energy.model import PowerModel
from qbackbone.core.mitigation.plan import NO_MITIGATION_IDEAL, MitigationPlan
from qbackbone.core.qpus.descriptor import QPUDescriptor


@dataclass(frozen=True)
class OperationalContext:
    """The job's situation beyond its circuit."""

    mode: str  # Auto | SingleQPU | Distributed | Classical
    deadline_remaining: float | None  # seconds left until the deadline; None: no deadline
    classical_seconds: float | None  # estimated fallback run time; None: fallback infeasible
    classical_method: str | None
    needs_control_flow: bool = False
    classical_joules: float | None = None  # estimated energy of the fallback
    quantum_pays: bool | None = None  # learned for the job's problem class; None: no view
    quantum_pays_why: str = ""


@dataclass(frozen=True)
class QPUAssessment:
    """One QPU as seen by one job: its state and how the job's circuit compiles onto it."""

    descriptor: QPUDescriptor
    selected: bool  # passes the job's QPU selector
    ready: bool
    two_qubit_depth: int | None  # of the transpiled circuit; None when it did not compile
    estimated_fidelity: float | None
    compile_error: str | None = None
    calibration_age_seconds: float | None = None
    mitigation: MitigationPlan = NO_MITIGATION_IDEAL  # what a share of the job would run with
    power: PowerModel | None = None  # the QPU's power model (core/energy)


@dataclass(frozen=True)
class JobInputs:
    """Everything the QIP decides from."""

    features: CircuitFeatures
    context: OperationalContext
    qpus: tuple[QPUAssessment, ...]
