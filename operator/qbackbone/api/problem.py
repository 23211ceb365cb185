"""spec.problem: a network problem a controller hands in instead of a circuit.

Exactly one of `qubo`, `trafficEngineering`, `sliceAdmission` (optimize: reduced to a QUBO),
`anomalyDetection` (detect) or `forecast` (predict) is given; the result comes back in
network terms (status.result.solution). The telemetry models live in api/telemetry.py.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, model_validator

from qbackbone.api.common import ApiModel
from qbackbone.api.telemetry import (
    AnomalyDetectionProblem,
    DetectionReport,
    ForecastProblem,
    ForecastReport,
)
from qbackbone.api.topology import ConfigMapKeyRef as ConfigMapKeyRef  # re-exported
from qbackbone.api.topology import Link as Link  # re-exported
from qbackbone.api.topology import Topology as Topology  # re-exported

ProblemKind = Literal["qubo", "trafficEngineering", "sliceAdmission", "anomalyDetection",
                      "forecast"]
_KINDS = ("qubo", "traffic_engineering", "slice_admission", "anomaly_detection", "forecast")


class QuadraticTerm(ApiModel):
    """One coupling between two variables."""

    i: str = Field(min_length=1, description="First variable.")
    j: str = Field(min_length=1, description="Second variable (different from i).")
    value: float


class QuboProblem(ApiModel):
    """Minimise x^T Q x + offset over binary x, or an Ising model over spins s in {-1, +1}."""

    form: Literal["binary", "ising"] = Field(
        default="binary",
        description="binary: variables are 0/1 (QUBO). ising: variables are spins -1/+1 "
        "(linear is h, quadratic is J: E = sum h_i s_i + sum J_ij s_i s_j + offset).",
    )
    variables: list[str] | None = Field(
        default=None,
        description="Variable names in qubit order (variable k is qubit k). Default: every "
        "name used in linear and quadratic, sorted.",
    )
    linear: dict[str, float] = Field(default_factory=dict, description="Coefficient per variable.")
    quadratic: list[QuadraticTerm] = Field(default_factory=list, description="Couplings.")
    offset: float = Field(default=0.0, description="Constant added to every energy.")


class Demand(ApiModel):
    """Traffic from source to target."""

    source: str = Field(min_length=1)
    target: str = Field(min_length=1)
    volume: float = Field(gt=0, description="Traffic volume, in the capacities' unit.")


class TrafficEngineeringProblem(ApiModel):
    """Route every demand on one of its k shortest paths, minimising congestion."""

    topology: Topology
    demands: list[Demand] = Field(min_length=1)
    candidate_paths: int = Field(default=3, ge=1, le=8, description="k: paths per demand.")
    max_stretch: float = Field(
        default=2.0, ge=1.0,
        description="Prune candidate paths longer than this many times the shortest (hops).",
    )
    aggregate_to_fit: bool = Field(
        default=True,
        description="When the QUBO would exceed the policy's optimization.maxVariables, pin the "
        "smallest demands to their shortest path (as background load) until it fits.",
    )


class ResourceCapacity(ApiModel):
    """A PoP or link resource and its capacity."""

    name: str = Field(min_length=1, description="A PoP ('pop-a') or a link ('a-b').")
    capacity: float = Field(ge=0)


class SliceRequest(ApiModel):
    """A network slice asking to be admitted."""

    name: str = Field(min_length=1)
    revenue: float = Field(gt=0, description="What admitting it earns.")
    demands: dict[str, Annotated[float, Field(ge=0)]] = Field(
        min_length=1, description="Resource name to the amount this slice uses."
    )


class SliceAdmissionProblem(ApiModel):
    """Admit the subset of slices with the most revenue that fits the capacities."""

    resources: list[ResourceCapacity] = Field(min_length=1)
    slices: list[SliceRequest] = Field(min_length=1)
    slack_bits: int = Field(
        default=3, ge=1, le=8,
        description="Bits per capacity slack variable; amounts are rounded up to "
        "capacity/(2^bits - 1) units, so fewer bits is coarser (and conservative).",
    )
    topology: Topology | None = Field(
        default=None,
        description="Where the PoPs are, for decomposition by region (docs/decomposition.md): "
        "a resource named after a node ('Paris' or 'pop-paris') is at that PoP, one named "
        "'a--b' is the link between two nodes. Link capacities here are not used.",
    )


class ProblemSpec(ApiModel):
    """The network problem; exactly one kind."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        {"rule": "[has(self.qubo), has(self.trafficEngineering), has(self.sliceAdmission), "
                 "has(self.anomalyDetection), has(self.forecast)].filter(x, x).size() == 1",
         "message": "give exactly one of qubo, trafficEngineering, sliceAdmission, "
                    "anomalyDetection or forecast"}]})

    qubo: QuboProblem | None = None
    traffic_engineering: TrafficEngineeringProblem | None = None
    slice_admission: SliceAdmissionProblem | None = None
    anomaly_detection: AnomalyDetectionProblem | None = Field(
        default=None, description="detect: flag anomalous windows of backbone telemetry.")
    forecast: ForecastProblem | None = Field(
        default=None, description="predict: forecast a telemetry series with intervals.")

    @model_validator(mode="after")
    def _exactly_one(self) -> ProblemSpec:
        given = [k for k in _KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("spec.problem needs exactly one of qubo, trafficEngineering, "
                             f"sliceAdmission, anomalyDetection, forecast (got {len(given)})")
        return self

    @property
    def kind(self) -> ProblemKind:
        """Which kind of problem this is."""
        names: dict[str, ProblemKind] = {
            "qubo": "qubo", "traffic_engineering": "trafficEngineering",
            "slice_admission": "sliceAdmission", "anomaly_detection": "anomalyDetection",
            "forecast": "forecast"}
        return next(names[k] for k in _KINDS if getattr(self, k) is not None)

    @property
    def is_qubo(self) -> bool:
        """Whether the problem is reduced to a QUBO (optimize), not detect or predict."""
        return self.anomaly_detection is None and self.forecast is None


class RoutedDemand(ApiModel):
    """The path chosen for one demand."""

    source: str
    target: str
    volume: float
    path: list[str]
    pinned: bool = Field(default=False, description="Aggregated away: routed on its shortest "
                         "path as background load, not optimised.")


class LinkLoad(ApiModel):
    """Load on one link after routing."""

    link: str
    load: float
    capacity: float
    utilisation: float


class ProblemSolution(ApiModel):
    """The decision in network terms, its quality, and whether it is feasible."""

    kind: ProblemKind
    solver: str = Field(description="qaoa, cpSat, bruteForce or simulatedAnnealing (+ repair); "
                        "detect: quantumKernelSvc, rbfSvm, isolationForest, ...; predict: "
                        "seasonalNaive, holtWinters, quantumReservoir.")
    variables: int = Field(description="QUBO variables; detect: features after reduction "
                           "(qubits); predict: 0.")
    feasible: bool
    violations: list[str] = Field(default_factory=list)
    objective: float = Field(description="Congestion cost (min), revenue (max) or QUBO energy; "
                             "detect: F1 on labelled windows (else the flagged fraction); "
                             "predict: MASE on the holdout.")
    objective_sense: Literal["minimize", "maximize"]
    energy: float | None = Field(default=None, description="QUBO energy of the reported "
                                 "assignment (optimize only).")
    assignment: str | None = Field(default=None, description="The chosen bits, variable 0 "
                                   "rightmost (Qiskit order; optimize only).")
    detection: DetectionReport | None = Field(default=None, description="detect: flagged "
                                              "windows and links, scores, kernel cost.")
    forecast: ForecastReport | None = Field(default=None, description="predict: forecasts "
                                            "with intervals, MASE per method.")
    optimum: float | None = Field(default=None, description="Best objective of the QUBO's "
                                  "feasible assignments, when computed in time.")
    optimum_proven: bool = False
    approximation_ratio: float | None = Field(
        default=None, description="objective/optimum (maximize) or optimum/objective "
        "(minimize); 1 is optimal.")
    samples: int = Field(default=0, description="Bitstrings drawn (quantum path).")
    feasible_fraction_before_repair: float | None = None
    feasible_fraction_after_repair: float | None = None
    max_utilisation: float | None = None
    routes: list[RoutedDemand] | None = None
    link_loads: list[LinkLoad] | None = None
    admitted: list[str] | None = None
    rejected: list[str] | None = None
