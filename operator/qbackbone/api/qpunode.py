"""QPUNode: one quantum processor, cluster-scoped."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator, model_validator

from qbackbone.api.common import ApiModel, Condition, Duration, ObjectMeta

Provider = Literal["aer", "fake", "ibm-runtime"]

QPU_RESOURCE_PREFIX = "qpu.qbackbone.io/"
# Reason of Ready=False on a QPUNode whose spec.cordoned is true (valid, but takes no new work).
CORDONED = "Cordoned"
MAX_QUBITS = 10_000  # the largest devices offer about a thousand
MIN_SHOT_TIME, MAX_SHOT_TIME = 1e-9, 60.0  # seconds per shot
MAX_SETUP_TIME = 86_400.0  # seconds per fragment


def qpu_resource(qpu: str) -> str:
    """The extended resource a QPU is advertised under: one unit, one fragment at a time."""
    return QPU_RESOURCE_PREFIX + qpu


class BackendOptions(ApiModel):
    """How the backend is driven."""

    noise: bool = Field(
        default=True,
        description="fake: simulate with the device's noise (true) or ideally (false). "
        "aer: add the noise of `noiseFrom` when set.",
    )
    noise_from: str | None = Field(
        default=None,
        description="aer only: a fake device (e.g. fake_sherbrooke) whose calibrated noise to use.",
    )
    method: str = Field(
        default="automatic",
        description="Aer simulation method: automatic, statevector, density_matrix, "
        "matrix_product_state, stabilizer.",
        pattern="^(automatic|statevector|density_matrix|matrix_product_state|stabilizer)$",
    )
    seed: int | None = Field(default=None, description="Simulator seed, for reproducible runs.")
    instance: str | None = Field(default=None, description="ibm-runtime: IBM Cloud instance CRN.")


class BackendRef(ApiModel):
    """Which backend drives this QPU."""

    provider: Provider = Field(
        description="aer: Qiskit Aer directly; fake: an offline fake IBM device with its real "
        "calibration, run through qiskit-ibm-runtime's SamplerV2 in local mode; ibm-runtime: "
        "a real IBM backend (needs credentialsSecretRef)."
    )
    name: str = Field(
        min_length=1,
        description="Backend name, e.g. aer_simulator, fake_sherbrooke, ibm_torino.",
    )
    options: BackendOptions = Field(default_factory=BackendOptions)


class SecretKeyRef(ApiModel):
    """A reference to a key of a Secret."""

    name: str = Field(min_length=1, description="Secret name.")
    key: str = Field(default="token", description="Key holding the API token.")


Technology = Literal["superconducting", "trappedIon", "simulator"]


class EnergyModel(ApiModel):
    """Power drawn by the QPU (docs/learning-energy.md); unset fields take the technology's
    defaults (core/energy/model.py, with their sources)."""

    technology: Technology | None = Field(
        default=None, description="superconducting, trappedIon or simulator (default: "
        "simulator for ideal simulators, superconducting for the offline and IBM devices).")
    cryostat_watts: float | None = Field(
        default=None, ge=0, le=1e7, description="Cooling (dilution refrigerator, cryocooler, "
        "vacuum) drawn all the time, busy or idle, in watts.")
    control_busy_watts: float | None = Field(
        default=None, ge=0, le=1e7, description="Control electronics and lasers while running.")
    control_idle_watts: float | None = Field(
        default=None, ge=0, le=1e7, description="Control electronics and lasers while idle.")
    joules_per_shot: float | None = Field(
        default=None, ge=0, le=1e6, description="Energy per shot beyond the power above.")


class QPUNodeSpec(ApiModel):
    """What the QPU is, how fast it runs, and where it is hosted."""

    backend: BackendRef
    qubits: int | None = Field(
        default=None,
        ge=1,
        le=MAX_QUBITS,
        description="Qubits this QPU offers; at most the device's. Defaults to the device's count "
        "(fake/ibm-runtime) or 24 (aer).",
    )
    max_depth: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000_000,
        description="Largest two-qubit-gate depth of a transpiled circuit this QPU accepts. When "
        "absent it is derived from coherence and gate errors (status.derivedMaxDepth).",
    )
    shot_time: Duration | None = Field(
        default=None,
        description="Time per shot (e.g. '300us'). Default: from the device's repetition delay "
        "and readout time.",
    )
    setup_time: Duration | None = Field(
        default=None,
        description="Fixed time per fragment (load, compile, queue hand-off), e.g. '1s'.",
    )
    site: str | None = Field(default=None, description="PoP or region label, e.g. pop-fra1.")
    node_name: str | None = Field(default=None, description="Kubernetes node hosting the QPU.")
    node_selector: dict[str, str] | None = Field(
        default=None, description="Labels of the nodes allowed to reach this QPU (cloud QPUs)."
    )
    credentials_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret with the API token, for ibm-runtime."
    )
    cordoned: bool = Field(default=False, description="When true, no new fragments are placed.")
    energy: EnergyModel | None = Field(
        default=None, description="Power model overriding the technology's defaults.")

    @model_validator(mode="after")
    def _consistent(self) -> QPUNodeSpec:
        if self.backend.provider == "ibm-runtime" and self.credentials_secret_ref is None:
            raise ValueError("backend.provider ibm-runtime needs credentialsSecretRef")
        if self.backend.options.noise_from and self.backend.provider != "aer":
            raise ValueError("backend.options.noiseFrom applies to provider aer only")
        return self

    @field_validator("shot_time")
    @classmethod
    def _shot_time_in_range(cls, value: float | None) -> float | None:
        if value is not None and not MIN_SHOT_TIME <= value <= MAX_SHOT_TIME:
            raise ValueError(f"shotTime must be between 1ns and {MAX_SHOT_TIME:g}s per shot, got "
                             f"{value:g}s")
        return value

    @field_validator("setup_time")
    @classmethod
    def _setup_time_in_range(cls, value: float | None) -> float | None:
        if value is not None and not 0 <= value <= MAX_SETUP_TIME:
            raise ValueError(f"setupTime must be between 0s and {MAX_SETUP_TIME:g}s (a day), got "
                             f"{value:g}s")
        return value


class CalibrationSnapshot(ApiModel):
    """Medians of the device calibration the eligibility decisions used."""

    median_t1_us: float | None = Field(default=None, description="Median T1, microseconds.")
    median_t2_us: float | None = Field(default=None, description="Median T2, microseconds.")
    median_1q_error: float | None = Field(default=None, description="Median 1-qubit gate error.")
    median_2q_error: float | None = Field(default=None, description="Median 2-qubit gate error.")
    median_readout_error: float | None = Field(default=None, description="Median readout error.")
    median_2q_duration_ns: float | None = Field(
        default=None, description="Median 2-qubit gate duration, nanoseconds."
    )
    two_qubit_gate: str | None = Field(default=None, description="Native 2-qubit gate.")
    taken_at: datetime | None = Field(default=None, description="When the snapshot was taken.")


class ReadoutCalibrationStatus(ApiModel):
    """The QPU's readout calibration for M3: per-qubit flip probabilities of its region."""

    flip_from0: list[float] = Field(description="P(read 1 | prepared 0) per qubit.")
    flip_from1: list[float] = Field(description="P(read 0 | prepared 1) per qubit.")
    shots: int = Field(ge=1, description="Shots per preparation.")
    taken_at: datetime
    qpu_calibration: str = Field(
        description="The device calibration it was measured under; it is measured again when "
        "that changes or it is older than the policy's readoutCalibrationMaxAge.")


class QPUNodeStatus(ApiModel):
    """Observed state of the QPU."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    calibration: CalibrationSnapshot | None = None
    derived_max_depth: int | None = Field(
        default=None, description="Max two-qubit depth derived from calibration."
    )
    device_qubits: int | None = Field(default=None, description="Qubits of the whole device.")
    queue_depth: int = Field(
        default=0, ge=0,
        description="Fragment pods of this QPU that are Pending or Running (queued or running).")
    utilisation: float = Field(
        default=0.0, ge=0, le=1,
        description="Share of the last 300 s during which a fragment ran on this QPU.")
    resource_name: str | None = Field(
        default=None, description="Extended resource the QPU is advertised under."
    )
    readout_calibration: ReadoutCalibrationStatus | None = Field(
        default=None, description="Noisy QPUs: the readout calibration every job's M3 "
        "correction uses (measured by the operator, refreshed when stale).")


class QPUNode(ApiModel):
    """A quantum processor as a schedulable cluster resource."""

    api_version: Literal["qbackbone.io/v1alpha1"] = "qbackbone.io/v1alpha1"
    kind: Literal["QPUNode"] = "QPUNode"
    metadata: ObjectMeta
    spec: QPUNodeSpec
    status: QPUNodeStatus | None = None


class QPUSelector(ApiModel):
    """Restricts which QPUs may run the job."""

    match_labels: dict[str, str] | None = Field(default=None, description="QPUNode labels.")
    names: list[str] | None = Field(default=None, description="QPUNode names.")
    cel: str | None = Field(
        default=None, min_length=1, max_length=10_240,
        description="A CEL expression over `device`, as in a DRA ResourceClaim's selector, on the "
        "attributes qbackbone dra-driver publishes for each QPU (docs/dra.md), e.g. "
        "device.attributes[\"qpu.qbackbone.io\"].qubits >= 7 && "
        "device.attributes[\"qpu.qbackbone.io\"].error2qPpm <= 10000. Only QPUs it admits are "
        "eligible (the QIP and the planner both honour it); an expression that fails on a QPU "
        "fails the job (InvalidQPUSelector). Every condition given must hold.")
