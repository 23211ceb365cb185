"""InvocationPolicy: the rules of the Quantum Invocation Policy, written by people, kept in Git."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from qbackbone.api.common import ApiModel, Condition, Duration, ObjectMeta
from qbackbone.api.limits import JobLimits
from qbackbone.api.mitigation import MitigationPolicy
from qbackbone.api.qpunode import QPUSelector
from qbackbone.api.topology import ConfigMapKeyRef

CutKind = Literal["gate", "loccWire", "loWire"]

IdealSimulators = Literal["Fallback", "Allowed", "Forbidden"]
"""Fallback: an ideal simulator runs a job (or a cut subcircuit) only when no noisy QPU can;
Allowed: ideal simulators compete with noisy QPUs (and, with no noise, win on fidelity);
Forbidden: never."""

ShotSplitting = Literal["WhenDeadlineNeeds", "Always", "Never"]
"""WhenDeadlineNeeds: one QPU unless none meets the deadline alone, then split only over QPUs
of similar estimated fidelity; Always: over every QPU the job may use, by speed; Never: one."""


def _default_cut_kinds() -> list[CutKind]:
    return ["gate", "loccWire"]


class FeatureBounds(ApiModel):
    """The problem region where a QPU is worth invoking; outside it the fallback runs."""

    min_qubits: int = Field(
        default=1, ge=1, description="Below this width classical simulation is trivially cheaper."
    )
    max_qubits: int = Field(default=1000, ge=1, description="Widest circuit sent to QPUs.")
    max_two_qubit_gates: int = Field(
        default=100_000, ge=0, description="Most two-qubit gates (before transpilation)."
    )
    max_depth: int = Field(default=100_000, ge=1, description="Deepest circuit (logical depth).")
    max_constraint_density: float = Field(
        default=1.0, ge=0, le=1, description="Densest QUBO (problem jobs), edges / possible edges."
    )

    @model_validator(mode="after")
    def _ordered(self) -> FeatureBounds:
        if self.min_qubits > self.max_qubits:
            raise ValueError(
                f"features.minQubits ({self.min_qubits}) exceeds maxQubits ({self.max_qubits})"
            )
        return self


class OperationalRules(ApiModel):
    """Deadline, reliability and energy rules."""

    min_deadline_slack: Duration = Field(
        default=0.0,
        description="Quantum is chosen only when its estimated completion leaves this much slack.",
    )
    min_estimated_fidelity: float = Field(
        default=0.3,
        ge=0,
        le=1,
        description="Reliability target: a QPU is eligible only when the circuit's estimated "
        "success probability on it reaches this.",
    )
    energy_budget_joules: float | None = Field(
        default=None, ge=0,
        description="Energy a job may take (unset: unlimited): a QPU, or the classical "
        "fallback, whose estimate exceeds it is ineligible (docs/learning-energy.md)."
    )


class HardwareRules(ApiModel):
    """Live QPU state rules."""

    max_queue_depth: int = Field(default=50, ge=0, description="Skip QPUs with longer queues.")
    max_calibration_age: Duration | None = Field(
        default=None,
        description="Skip QPUs whose calibration is older (unset: any age). Fake devices carry "
        "their recorded calibration date, so leave unset for them.",
    )
    shot_budget: int = Field(
        default=1_000_000, ge=1, description="Most shots one job may use on QPUs."
    )
    ideal_simulators: IdealSimulators = Field(
        default="Fallback",
        description="Ideal (noise-free) simulators in the fleet: Fallback uses one only when no "
        "noisy QPU can run the job (or a cut subcircuit) in time; Allowed lets them compete on "
        "estimated fidelity (they win: no noise); Forbidden never uses them. A result that ran "
        "on one says so (result.idealSimulator, the decision's rules and message).",
    )
    qpu_selector: QPUSelector | None = Field(
        default=None,
        description="QPUs every job under this policy may use (names, labels, or a CEL "
        "expression over the published DRA device, docs/dra.md); a job's own "
        "spec.execution.qpuSelector must hold as well.",
    )


class CuttingOptions(ApiModel):
    """What cutting may do when no single QPU fits."""

    enabled: bool = Field(default=True, description="Allow the Distributed path.")
    allowed_cut_kinds: list[CutKind] = Field(
        default_factory=_default_cut_kinds,
        description="gate, loccWire (gamma 3, needs precedence), loWire (gamma 4, the ablation).",
    )
    max_sampling_overhead: float = Field(default=1000.0, ge=1, description="Largest gamma^2.")
    max_subcircuits: int = Field(default=8, ge=2, le=64, description="Most subcircuits per job.")


class SchedulerOptions(ApiModel):
    """The L3 scheduler and its parameters."""

    algorithm: Literal["annealing", "greedyEDF", "list", "random"] = Field(
        default="annealing",
        description="annealing: the QB scheduler (simulated annealing over a portfolio that "
        "includes the baselines); greedyEDF, list, random: that baseline alone. qbackbone "
        "schedule uses the policy its --policy names. The operator plans every waiting job of "
        "every policy in one joint plan, with the algorithm, annealing fields, budgets and "
        "seed of one policy: the one qbackbone operator --scheduler-policy names (default: "
        "default/default), followed as it changes (absent or invalid: the defaults); "
        "shotSplitting and splitFidelityGap stay each job's own policy's.",
    )
    iterations: int = Field(default=2000, ge=1, le=1_000_000,
                            description="Simulated annealing iterations.")
    initial_temperature: float = Field(default=1.0, gt=0, description="SA start temperature.")
    cooling_rate: float = Field(default=0.995, gt=0, lt=1, description="Exponential cooling.")
    shot_splitting_mode: ShotSplitting = Field(
        default="WhenDeadlineNeeds", alias="shotSplitting",
        description="Split one job's shots across QPUs: WhenDeadlineNeeds (no QPU meets the "
        "deadline alone; then only over QPUs whose estimated fidelity is within "
        "splitFidelityGap of each other, never ideal simulators with noisy QPUs), Always (over "
        "every QPU the job may use, by speed) or Never. Manifests given to qbackbone run may "
        "still say true or false (read as Always or Never).",
    )
    split_fidelity_gap: float = Field(
        default=0.1, ge=0, le=1,
        description="QPUs share one job's shots (shotSplitting WhenDeadlineNeeds) or stand in "
        "for each other in the joint plan only when their estimated fidelities differ by at "
        "most this.",
    )
    locc_aware: bool = Field(default=True, description="Use LOCC wire cuts with precedence.")
    seed: int | None = Field(
        default=None,
        description="Seed for reproducible plans (the operator's joint plan, when unset: its "
        "--seed, else 0).",
    )
    time_budget_seconds: float | None = Field(
        default=None, ge=0.01, le=60,
        description="Wall-clock latency budget of one annealing plan in seconds (0.01 to 60): "
        "the search stops when it is spent, and the plan then depends on the machine's speed. "
        "Unset: no time limit, the work budget ends the search. The operator makes its joint "
        "plan again on every arrival, while reconciles wait: keep it short there.",
    )
    work_budget: int | None = Field(
        default=None, ge=0, le=100_000_000,
        description="Deterministic effort budget of one annealing plan (one unit per QPU tried "
        "for a subcircuit): the plan depends only on the problem and the seed. Unset: "
        "automatic (qbackbone schedule: the scheduler's own, growing with the jobs; "
        "the operator's joint plan, when timeBudgetSeconds is unset too: a smaller online "
        "budget capped at 0.5 s); 0: no cap (iterations end the search). With "
        "timeBudgetSeconds, whichever is spent first ends the search.",
    )

    @field_validator("shot_splitting_mode", mode="before")
    @classmethod
    def _boolean_splitting(cls, value: object) -> object:
        """The boolean of earlier versions: true was Always, false Never."""
        if isinstance(value, bool):
            return "Always" if value else "Never"
        return value

    @property
    def shot_splitting(self) -> bool:
        """Whether the joint plan may split a job's shots at all (not Never): it splits only
        when a deadline needs it, and only over the QPUs the decision made eligible."""
        return self.shot_splitting_mode != "Never"


class FallbackOptions(ApiModel):
    """The classical fallback."""

    enabled: bool = Field(default=True, description="Allow the Classical path.")
    method: Literal["auto", "statevector", "mps"] = Field(
        default="auto", description="auto: statevector up to maxStatevectorQubits, then MPS."
    )
    max_statevector_qubits: int = Field(default=24, ge=1, le=32)
    max_mps_qubits: int = Field(default=64, ge=1)


class VerificationOptions(ApiModel):
    """How results are checked."""

    exact_max_qubits: int = Field(
        default=20, ge=0, le=30, description="Verify against exact statevector up to this width."
    )
    max_deviation_sigma: float = Field(
        default=4.0, ge=0.1, le=50,
        description="Allowed deviation from exact in reported standard errors (family-wise "
        "over a job's observables).",
    )


class DecompositionOptions(ApiModel):
    """Spatial decomposition of problems wider than every QPU (docs/decomposition.md)."""

    enabled: bool = Field(
        default=False,
        description="Split a trafficEngineering or sliceAdmission QUBO wider than every QPU "
        "(and than maxVariables) by region and solve each region's sub-QUBO on a QPU, a "
        "classical coordinator reconciling the flows and capacities shared across region "
        "borders; off: demands are pinned or the QUBO goes classical.",
    )
    max_region_variables: int = Field(
        default=10, ge=2, le=64,
        description="Widest regional sub-QUBO (qubits); capped by maxVariables and the widest QPU.",
    )
    iterations: int = Field(default=4, ge=1, le=50, description="Most coordinator rounds.")
    time_budget_seconds: float = Field(
        default=120.0, gt=0, le=3600,
        description="Wall time for the regional rounds; no new round starts after it.",
    )
    region_attribute: str = Field(
        default="site", min_length=1,
        description="Topology node attribute naming a node's region (matched to QPUNode "
        "spec.site); without it on the nodes, regions come from a balanced graph partition.",
    )


class OptimizationOptions(ApiModel):
    """Problem jobs (spec.problem): when the QAOA path is worth it, and how it runs."""

    max_variables: int = Field(
        default=16, ge=1, le=64,
        description="Largest QUBO (one qubit per variable) sent to a QPU; larger ones are solved "
        "classically (trafficEngineering first aggregates demands to fit).",
    )
    qaoa_layers: int = Field(default=2, ge=1, le=8, description="QAOA depth p.")
    shots: int = Field(default=4000, ge=1, description="Bitstrings sampled on the quantum path.")
    classical_shortcut_fraction: float = Field(
        default=0.05, ge=0, le=1,
        description="Go classical when the exact solver proves the optimum within this fraction "
        "of the remaining deadline (of classicalShortcutSeconds without a deadline).",
    )
    classical_shortcut_seconds: float = Field(
        default=2.0, ge=0, description="The shortcut's time budget for jobs without a deadline."
    )
    exact_time_limit_seconds: float = Field(
        default=10.0, ge=0,
        description="Time for the exact classical optimum used to report the approximation "
        "ratio (0: never computed).",
    )
    decomposition: DecompositionOptions = Field(default_factory=DecompositionOptions)


class LearningOptions(ApiModel):
    """Learning from job history (docs/learning-energy.md): per-QPU corrections of the time
    model and of the success-probability estimate, and whether the quantum path paid."""

    enabled: bool = Field(default=False, description="Use learned corrections in decisions.")
    window: int = Field(default=100, ge=1, le=100_000,
                        description="Most recent jobs per QPU (or problem class) learned from.")
    min_samples: int = Field(default=5, ge=1, le=10_000,
                             description="Jobs needed before a learned value is used.")
    max_correction: float = Field(
        default=4.0, ge=1.0, le=100.0,
        description="Learned factors are clamped to [1/maxCorrection, maxCorrection].")
    half_life: Duration = Field(
        default=86_400.0, description="Age at which a job's weight halves (e.g. '24h').")
    quantum_pays_margin: float = Field(
        default=0.2, ge=0, le=1,
        description="Auto jobs of a problem class go Classical when the quantum path's success "
        "rate (verified and in time) is below the classical one's by more than this.")


class NetworkState(ApiModel):
    """Live network state a network controller publishes, read by the QIP
    (docs/learning-energy.md, "Network state"): a job whose links run hot is urgent."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "has(self.configMapRef) || has(self.document)",
         "message": "networkState needs configMapRef or document"}]})

    config_map_ref: ConfigMapKeyRef | None = Field(
        default=None, description="The ConfigMap key a controller keeps current: JSON "
        '{"observedAt": RFC 3339, "links": {"a--b": utilisation, ...}}.')
    document: str | None = Field(
        default=None, max_length=1_000_000,
        description="The same JSON inline. With configMapRef too, it is what was read from "
        "that ConfigMap when a job was decided (what its decision record keeps).")
    urgent_utilisation: float = Field(
        default=0.9, gt=0, le=10,
        description="A job is urgent when a link it names (annotation qbackbone.io/links) "
        "carries at least this utilisation.")
    deadline_factor: float = Field(
        default=0.5, gt=0, le=1,
        description="An urgent job is decided as if only this share of its deadline were "
        "left (it still fails only at the real deadline).")
    max_age_seconds: float = Field(
        default=600.0, gt=0, le=86_400,
        description="State older than this at decision time is ignored (a rule says so).")

    @model_validator(mode="after")
    def _one_source(self) -> NetworkState:
        if self.config_map_ref is None and self.document is None:
            raise ValueError("networkState needs configMapRef or document")
        return self


class InvocationPolicySpec(ApiModel):
    """The rules the QIP evaluates for every job naming this policy."""

    features: FeatureBounds = Field(default_factory=FeatureBounds)
    operational: OperationalRules = Field(default_factory=OperationalRules)
    hardware: HardwareRules = Field(default_factory=HardwareRules)
    cutting: CuttingOptions = Field(default_factory=CuttingOptions)
    scheduler: SchedulerOptions = Field(default_factory=SchedulerOptions)
    fallback: FallbackOptions = Field(default_factory=FallbackOptions)
    verification: VerificationOptions = Field(default_factory=VerificationOptions)
    optimization: OptimizationOptions = Field(default_factory=OptimizationOptions)
    learning: LearningOptions = Field(default_factory=LearningOptions)
    limits: JobLimits = Field(default_factory=JobLimits)
    mitigation: MitigationPolicy = Field(default_factory=MitigationPolicy)
    network_state: NetworkState | None = Field(
        default=None, description="Live network state the QIP reads (optional).")

    @model_validator(mode="after")
    def _consistent(self) -> InvocationPolicySpec:
        if self.cutting.enabled and not self.cutting.allowed_cut_kinds:
            raise ValueError("cutting.enabled is true but cutting.allowedCutKinds is empty")
        return self


def with_network_state(policy: InvocationPolicy,
                       read_config_map: Callable[[str, str], str]) -> InvocationPolicy:
    """The policy with its networkState's ConfigMap read into ``document`` (unchanged when it
    names none, or the ConfigMap cannot be read: the QIP then ignores the state, saying so)."""
    state = policy.spec.network_state
    if state is None or state.config_map_ref is None:
        return policy
    try:
        text = read_config_map(state.config_map_ref.name, state.config_map_ref.key)
    except KeyError:
        return policy
    spec = policy.spec.model_copy(update={
        "network_state": state.model_copy(update={"document": text})})
    return policy.model_copy(update={"spec": spec})


class InvocationPolicyStatus(ApiModel):
    """How the policy is used."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    jobs_decided: int = Field(default=0, ge=0)
    quantum_share: float = Field(default=0.0, ge=0, le=1)
    learned_adjustments: dict[str, float] = Field(default_factory=dict)


class InvocationPolicy(ApiModel):
    """A Quantum Invocation Policy."""

    api_version: Literal["qbackbone.io/v1alpha1"] = "qbackbone.io/v1alpha1"
    kind: Literal["InvocationPolicy"] = "InvocationPolicy"
    metadata: ObjectMeta
    spec: InvocationPolicySpec = Field(default_factory=InvocationPolicySpec)
    status: InvocationPolicyStatus | None = None


DEFAULT_POLICY_NAME = "default"
