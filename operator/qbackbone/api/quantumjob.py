"""QuantumJob: one unit of work from a network controller."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from qbackbone.api.common import ApiModel, Condition, Duration, ObjectMeta
from qbackbone.api.conditions import Phase
from qbackbone.api.decomposition import DecompositionReport
from qbackbone.api.mitigation import MitigationReport
from qbackbone.api.policy import CutKind
from qbackbone.api.problem import ProblemSolution, ProblemSpec
from qbackbone.api.qpunode import QPUSelector

ExecutionMode = Literal["Auto", "SingleQPU", "Distributed", "Classical"]
Path = Literal["SingleQPU", "Distributed", "Classical"]


class CircuitSpec(ApiModel):
    """The circuit and what to measure."""

    qasm: str = Field(min_length=1, description="OpenQASM 2 or 3 source.")
    observables: list[str] | None = Field(
        default=None,
        description="Pauli strings (IXYZ), one character per qubit, Qiskit order: qubit 0 is the "
        "rightmost character. Gives expectation values.",
        json_schema_extra={"items": {"type": "string", "pattern": "^[IXYZ]+$"}},
    )
    sampling: bool = Field(default=False, description="Return counts instead of expectations.")


class PolicyRef(ApiModel):
    """Reference to an InvocationPolicy in the job's namespace."""

    name: str = Field(min_length=1)


class ExecutionHints(ApiModel):
    """How the job would like to run; the QIP still decides."""

    mode: ExecutionMode = Field(default="Auto", description="Auto lets the QIP choose.")
    qpu_selector: QPUSelector | None = None


class QuantumJobSpec(ApiModel):
    """What to compute, how precisely, and by when."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "has(self.circuit) != has(self.problem)",
         "message": "give exactly one of spec.circuit or spec.problem"}]})

    circuit: CircuitSpec | None = Field(
        default=None, description="The circuit to run (or give spec.problem instead)."
    )
    problem: ProblemSpec | None = Field(
        default=None,
        description="An optimisation problem to reduce to a QUBO and solve (instead of a "
        "circuit): the result is a decision in network terms.",
    )
    observables: list[str] | None = Field(
        default=None, description="Same as circuit.observables (either place; not both)."
    )
    sampling: bool | None = Field(default=None, description="Same as circuit.sampling.")
    # Bounds below are schema-only: the API server rejects them early, while the pipeline checks
    # them itself so `qbackbone run` reports InvalidShots rather than a generic manifest error.
    shots: int | None = Field(
        default=None,
        description="Shots per measured basis. Default 4000 unless precision is set.",
        json_schema_extra={"minimum": 1},
    )
    precision: float | None = Field(
        default=None,
        description="Target standard error of each expectation value (sets the shots).",
        json_schema_extra={"exclusiveMinimum": 0},
    )
    deadline: Duration | None = Field(
        default=None, description="Time from creation by which the result is needed ('30s')."
    )
    policy_ref: PolicyRef | None = Field(
        default=None, description="InvocationPolicy to use; 'default' when absent."
    )
    execution: ExecutionHints = Field(default_factory=ExecutionHints)

    @field_validator("policy_ref", mode="before")
    @classmethod
    def _policy_name_as_string(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_place_for_observables(self) -> QuantumJobSpec:
        if (self.circuit is None) == (self.problem is None):
            raise ValueError("give exactly one of spec.circuit or spec.problem")
        if self.circuit is None:
            if self.observables is not None or self.sampling is not None:
                raise ValueError("observables and sampling belong to circuit jobs, not "
                                 "spec.problem")
            return self
        if self.observables is not None:
            if self.circuit.observables is not None:
                raise ValueError("give observables in spec.circuit.observables or "
                                 "spec.observables, not both")
            self.circuit.observables = self.observables
            self.observables = None
        if self.sampling is not None:
            self.circuit.sampling = self.circuit.sampling or self.sampling
            self.sampling = None
        return self


class RuleOutcome(ApiModel):
    """One QIP rule as evaluated."""

    name: str
    value: bool | int | float | str | None = Field(default=None, description="Measured value.")
    threshold: bool | int | float | str | None = Field(default=None, description="The bound.")
    passed: bool
    qpu: str | None = Field(default=None, description="The QPU the rule was evaluated for.")


class Decision(ApiModel):
    """Which path the QIP chose, and why."""

    path: Path | None = Field(default=None, description="Absent when the job was refused.")
    policy: str
    policy_generation: int
    reason: str
    message: str = ""
    eligible_qpus: list[str] = Field(default_factory=list)
    features: dict[str, int | float] = Field(default_factory=dict, description="Job features read.")
    rules: list[RuleOutcome] = Field(default_factory=list)
    estimated_energy_joules: float | None = Field(
        default=None, description="Energy the chosen path is estimated to take "
        "(docs/learning-energy.md).")


class PlannedSubcircuit(ApiModel):
    """A circuit the plan runs (the whole circuit, for uncut jobs)."""

    name: str
    qubits: int
    depth: int
    two_qubit_depth: int
    shots: int
    depends_on: list[str] = Field(default_factory=list)


class PlannedFragment(ApiModel):
    """Shots of one subcircuit on one QPU."""

    name: str
    subcircuit: str
    qpu: str
    backend: str
    shots: int
    estimated_fidelity: float | None = None
    planned_start_seconds: float
    planned_end_seconds: float


class Plan(ApiModel):
    """What runs where; for a Distributed job also how it was cut and what that costs."""

    subcircuits: list[PlannedSubcircuit] = Field(default_factory=list)
    fragments: list[PlannedFragment] = Field(default_factory=list)
    estimated_makespan_seconds: float | None = None
    cut_kinds: list[CutKind] | None = Field(
        default=None, description="Distributed: the cut kinds used (empty: the circuit runs "
        "whole on one subcircuit).")
    gamma: float | None = Field(
        default=None, description="Distributed: the cuts' gamma (product over cuts, 1 uncut).")
    sampling_overhead: float | None = Field(
        default=None, description="Distributed: gamma^2, the factor on the shots a subcircuit "
        "runs for the precision of an uncut run.")
    qpd_terms: int | None = Field(
        default=None, description="Distributed: quasi-probability terms (gate and LO wire cuts) "
        "or channel combinations (LOCC wire cuts) the estimate sums over.")
    rejected_candidates: list[str] | None = Field(
        default=None, description="Distributed: the other cut plans the planner found and why "
        "each was not used (limits broken, or not cheaper).")


class StratumValue(ApiModel):
    """One QPU's share of an expectation value (reported when shots were split)."""

    qpu: str
    shots: int
    value: float
    std_error: float
    systematic_error: float = 0.0
    method: str = ""


class ExpectationValue(ApiModel):
    """One observable's estimate."""

    observable: str
    value: float
    std_error: float = Field(description="Statistical standard error, including the variance "
                             "mitigation adds.")
    systematic_error: float = Field(
        default=0.0, ge=0.0, description="Estimated remaining bias after mitigation (0 for ideal "
        "backends); the total uncertainty is sqrt(stdError^2 + systematicError^2).")
    method: str | None = Field(
        default=None, description="How a noisy value was mitigated and its errors estimated.")
    strata: list[StratumValue] | None = Field(
        default=None, description="Per-QPU values when the shots were split over QPUs.")


class Result(ApiModel):
    """The answer, and which path and backends produced it."""

    path: Path
    backends: list[str] = Field(default_factory=list)
    qpus: list[str] = Field(default_factory=list)
    shots: int = 0
    method: str | None = Field(default=None, description="Classical path: how it was computed.")
    expectation_values: list[ExpectationValue] | None = None
    summary: str | None = Field(
        default=None, description="Every expectation value on one line (kubectl get qj): "
        "observable=value+-sigma, sigma = sqrt(stdError^2 + systematicError^2).")
    counts: dict[str, int] | None = None
    mitigated_probabilities: dict[str, float] | None = Field(
        default=None, description="Sampling jobs on noisy QPUs: the readout-mitigated outcome "
        "distribution (M3, nearest probability distribution), shot-weighted over the QPUs; "
        "counts stay as measured.")
    mitigation: list[MitigationReport] | None = Field(
        default=None, description="Error mitigation per QPU group; absent: none was needed "
        "(ideal backends or the classical path).")
    ideal_simulator: bool = Field(
        default=False, description="Every shot ran on an ideal (noise-free) simulator.")
    solution: ProblemSolution | None = Field(
        default=None, description="Problem jobs: the decision, its objective and feasibility."
    )
    energy_joules: float | None = Field(
        default=None, description="Energy estimate of what ran: QPU busy time under each "
        "QPU's power model, or CPU time x power (docs/learning-energy.md).")
    decomposition: DecompositionReport | None = Field(
        default=None, description="Problem jobs solved by region (docs/decomposition.md).")


class Verification(ApiModel):
    """How the result was checked and how far it is from the truth."""

    method: Literal["ExactStatevector", "PhysicalBounds", "ExactDistribution", "SelfConsistent",
                    "OperationalConstraints", "SelfCheck"] = Field(
        description="SelfCheck: a classical statevector result compared with the same exact "
        "simulation, so not an independent verification.")
    passed: bool
    informative: bool = Field(
        default=True, description="False when the allowed deviation of every value covers its "
        "whole range (|<P>| <= 1): the check could not have failed, so it verifies nothing.")
    noisy: bool = Field(description="Whether noisy QPUs contributed (deviations expected).")
    exact_values: list[float] | None = None
    max_deviation_sigma: float | None = Field(
        default=None, description="Largest |value - exact| in units of the reported stdError."
    )
    max_abs_deviation: float | None = None
    noise_allowance: float | None = Field(
        default=None, description="Deviation the estimated success probability allows."
    )
    total_variation_distance: float | None = None
    implied_success_probability: float | None = Field(
        default=None, description="Success probability the unmitigated deviation from exact "
        "implies under a depolarizing model (noisy results verified exactly); learning "
        "compares it with the estimate.")
    details: str = ""


class Timings(ApiModel):
    """Wall time per phase, seconds."""

    reduce_seconds: float | None = None
    decide_seconds: float | None = None
    cut_seconds: float | None = None
    schedule_seconds: float | None = None
    execute_seconds: float | None = None
    reconstruct_seconds: float | None = None
    verify_seconds: float | None = None
    total_seconds: float | None = None


class QuantumJobStatus(ApiModel):
    """Observed state of the job; the operator writes only this."""

    observed_generation: int | None = None
    phase: Phase = Field(default=Phase.PENDING, description="Short summary of progress.")
    conditions: list[Condition] = Field(default_factory=list)
    decision: Decision | None = None
    plan: Plan | None = None
    result: Result | None = None
    verification: Verification | None = None
    timings: Timings | None = None


class QuantumJob(ApiModel):
    """A circuit or an optimisation problem to run through reduce, solve, verify."""

    api_version: Literal["qbackbone.io/v1alpha1"] = "qbackbone.io/v1alpha1"
    kind: Literal["QuantumJob"] = "QuantumJob"
    metadata: ObjectMeta
    spec: QuantumJobSpec
    status: QuantumJobStatus | None = None
