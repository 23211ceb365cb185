"""spec.problem.anomalyDetection (detect) and spec.problem.forecast (predict), and their results.

Both read telemetry: generated over a real backbone (seeded, with labelled injected anomalies)
or a user's own series as CSV text (inline, or a ConfigMap key). docs/detect-predict.md.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from qbackbone.api.common import ApiModel
from qbackbone.api.topology import ConfigMapKeyRef, Topology

AnomalyKind = Literal["linkFailure", "volumetricSurge", "flashCrowd", "routeFlap", "slowDrift"]
ALL_ANOMALY_KINDS: tuple[AnomalyKind, ...] = ("linkFailure", "volumetricSurge", "flashCrowd",
                                              "routeFlap", "slowDrift")


class GeneratedTelemetry(ApiModel):
    """Synthetic telemetry over a backbone: gravity-model demands on shortest paths."""

    topology: Topology = Field(description="The backbone (as in trafficEngineering.topology).")
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    days: int = Field(default=14, ge=2, le=60, description="Length of the series.")
    step_minutes: int = Field(default=60, ge=5, le=240, description="Sampling interval.")
    peak_utilisation: float = Field(
        default=0.6, gt=0, le=0.95,
        description="Typical daily peak utilisation of the busiest link (demands are scaled).")
    noise: float = Field(default=0.05, ge=0, le=0.5, description="Relative demand noise (sd).")
    growth_per_week: float = Field(default=0.01, ge=-0.2, le=0.5,
                                   description="Traffic growth per week (0.01: 1 %).")
    anomalies: int = Field(default=8, ge=0, le=60, description="Anomalies injected.")
    anomaly_kinds: list[AnomalyKind] = Field(
        default_factory=lambda: list(ALL_ANOMALY_KINDS), min_length=1,
        description="Kinds to draw from, in turn.")
    max_endpoints: int = Field(
        default=30, ge=2, le=200,
        description="Demands run between the this-many largest PoPs (gravity masses).")


class TelemetrySource(ApiModel):
    """Exactly one of generated, csv or configMapRef.

    CSV: a header row, then one row per time step; an optional `time` column (ignored but for
    order), an optional 0/1 `anomaly` column (labels), every other column a numeric series
    (a link or node name). Sizes and values are checked before use.
    """

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "[has(self.generated), has(self.csv), has(self.configMapRef)]"
                 ".filter(x, x).size() == 1",
         "message": "give exactly one of generated, csv or configMapRef"}]})

    generated: GeneratedTelemetry | None = None
    csv: str | None = Field(default=None, description="CSV text, inline.")
    config_map_ref: ConfigMapKeyRef | None = Field(default=None,
                                                   description="CSV text in a ConfigMap key.")
    step_minutes: int = Field(default=60, ge=1, le=1440,
                              description="Sampling interval of CSV series.")
    label_column: str = Field(default="anomaly", min_length=1,
                              description="CSV column with 0/1 labels, when present.")
    time_column: str = Field(default="time", min_length=1,
                             description="CSV column with time stamps, when present.")

    @model_validator(mode="after")
    def _one_source(self) -> TelemetrySource:
        given = [n for n, v in (("generated", self.generated), ("csv", self.csv),
                                ("configMapRef", self.config_map_ref)) if v is not None]
        if len(given) != 1:
            raise ValueError("telemetry needs exactly one of generated, csv or configMapRef "
                             f"(got {', '.join(given) or 'none'})")
        return self


DetectModel = Literal["Auto", "QuantumKernel", "RbfSvm", "IsolationForest"]


class AnomalyDetectionProblem(ApiModel):
    """detect: windows of telemetry scored as anomalous or not, with the links involved."""

    telemetry: TelemetrySource
    series: Literal["links", "nodes"] = Field(
        default="links", description="Generated telemetry: link utilisation or node traffic.")
    window: int = Field(default=6, ge=2, le=168, description="Samples per window.")
    train_fraction: float = Field(
        default=0.5, gt=0.1, lt=0.9,
        description="The first part of the series trains the model; the rest is scored.")
    qubits: int = Field(default=4, ge=1, le=12,
                        description="Qubit budget: window features are compressed (PCA) to it.")
    model: DetectModel = Field(
        default="Auto", description="Auto: the rules decide (quantum kernel where it pays).")
    kernel_shots: int = Field(default=2000, ge=100, le=100_000,
                              description="Shots per kernel entry on a QPU.")
    max_train_windows: int = Field(
        default=48, ge=8, le=200,
        description="Training windows the kernel is built on (the most recent, with every "
        "anomalous one kept); kernel circuits grow as train x (train + test).")
    max_kernel_circuits: int = Field(
        default=6000, ge=10, le=200_000,
        description="Quantum path only when the kernel needs at most this many circuits.")
    min_kernel_spread: float = Field(
        default=3.0, gt=0,
        description="Quantum path only when the kernel's off-diagonal standard deviation is "
        "at least this many shot-noise sigmas (1/(2 sqrt(shots))): a concentrated kernel "
        "cannot be estimated.")
    validation_margin: float = Field(
        default=0.0, ge=0, le=1,
        description="Quantum path only when the exact kernel's cross-validated F1 on the "
        "training windows (3 folds x 3 shuffles) is at least the RBF SVM's minus this.")


ForecastMethod = Literal["Auto", "SeasonalNaive", "HoltWinters", "QuantumReservoir"]


class ForecastProblem(ApiModel):
    """predict: forecast one series `horizon` steps ahead, with prediction intervals."""

    telemetry: TelemetrySource
    series: Literal["links", "nodes"] = Field(default="links",
                                              description="Generated telemetry: which series.")
    target: str | None = Field(
        default=None, description="Series name (link 'a--b', node, or CSV column); default: "
        "the series with the largest mean.")
    horizon: int = Field(default=24, ge=1, le=1000, description="Steps ahead.")
    season: int = Field(default=24, ge=2, le=1000, description="Season length, in steps.")
    history: int = Field(default=336, ge=8, le=20_000,
                         description="Most recent steps used to fit (at least two seasons).")
    method: ForecastMethod = Field(default="Auto")
    interval: float = Field(default=0.9, gt=0.5, lt=1.0,
                            description="Coverage of the prediction intervals.")
    reservoir_qubits: int = Field(default=6, ge=2, le=10,
                                  description="Qubits of the quantum reservoir.")


class FlaggedWindow(ApiModel):
    """A scored window the model flagged (or a labelled one it missed)."""

    start: int = Field(description="First time step (index into the series).")
    end: int = Field(description="One past the last time step.")
    score: float = Field(description="Anomaly score; above threshold means flagged.")
    flagged: bool
    labelled: bool | None = Field(default=None, description="Whether an anomaly was injected "
                                  "(or labelled) in it; None without labels.")
    links: list[str] = Field(default_factory=list,
                             description="Series that deviate most in the window.")
    kinds: list[str] = Field(default_factory=list, description="Injected kinds overlapping it.")


class ModelScores(ApiModel):
    """One model's scores on the test windows."""

    model: str
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    auc: float | None = None
    flagged: int = 0
    seconds: float = 0.0


class KernelReport(ApiModel):
    """The quantum kernel: its cost, its checks, how concentrated it is."""

    qubits: int
    feature_map: str
    circuits: int = Field(description="Fidelity circuits estimated (0: exact statevector).")
    shots_per_circuit: int = 0
    total_shots: int = 0
    seconds: float = 0.0
    backend: str
    off_diagonal_mean: float
    off_diagonal_std: float = Field(description="Spread of the kernel; small is concentrated.")
    shot_noise_sigma: float = Field(description="1/(2 sqrt(shots)): worst-case entry sigma.")
    symmetry_error: float = Field(description="max |K - K^T| before symmetrisation.")
    min_eigenvalue: float = Field(description="Smallest eigenvalue before PSD repair.")
    psd_repaired: bool
    mitigation: str | None = Field(
        default=None, description="Noisy QPUs: globalDepolarizing (the kernel rescaled by "
        "the damping its diagonal circuits measure).")
    depolarizing: float | None = Field(
        default=None, description="Estimated global depolarizing probability p: a noisy "
        "entry is (1 - p) k + p / 2^qubits.")
    exact_max_deviation: float | None = Field(
        default=None, description="max |K - K_exact| (exact statevector kernel, when small).")
    exact_agrees: bool | None = None


class InjectedAnomaly(ApiModel):
    """One anomaly the generator injected."""

    kind: AnomalyKind
    start: int
    end: int
    links: list[str] = Field(default_factory=list)
    detail: str = ""


class DetectionReport(ApiModel):
    """What detect did and found."""

    series: int = Field(description="Series (links or nodes) in the telemetry.")
    steps: int
    windows: int
    train_windows: int
    test_windows: int
    features: int = Field(description="Window features before compression.")
    qubits: int = Field(description="Components kept (the qubit budget).")
    explained_variance: float = Field(description="Variance the kept components explain.")
    model: str
    why: str
    threshold: float
    scores: ModelScores | None = Field(default=None, description="The model that answered.")
    baselines: list[ModelScores] = Field(default_factory=list,
                                         description="Classical baselines on the same windows.")
    kernel: KernelReport | None = None
    flagged: list[FlaggedWindow] = Field(default_factory=list,
                                         description="Flagged windows (at most 100).")
    missed: list[FlaggedWindow] = Field(default_factory=list,
                                        description="Labelled windows not flagged (at most 100).")
    injected: list[InjectedAnomaly] = Field(default_factory=list,
                                            description="Generated telemetry: what was injected.")


class ForecastPoint(ApiModel):
    """One forecast step."""

    step: int = Field(description="Steps after the last observation (1 = next).")
    value: float
    lower: float
    upper: float


class MethodScore(ApiModel):
    """A method's accuracy on the holdout (the last `horizon` steps, refitted without them)."""

    method: str
    mase: float | None = Field(description="Mean absolute scaled error over the horizon "
                               "(scale: in-sample seasonal-naive MAE); < 1 beats it.")
    mase_one_step: float | None = None
    coverage: float | None = Field(default=None, description="Holdout share inside intervals.")
    seconds: float = 0.0
    note: str = ""


class ForecastReport(ApiModel):
    """What predict did: the forecast and how each method fared on the holdout."""

    target: str
    method: str
    why: str
    horizon: int
    season: int
    history: int
    interval: float
    points: list[ForecastPoint]
    holdout: list[MethodScore]
