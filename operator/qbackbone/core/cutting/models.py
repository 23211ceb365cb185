"""The cut job's artefact (pydantic v2, JSON round trip) and the result of running it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CutKind = Literal["gate", "loWire", "loccWire"]
Role = Literal["independent", "measure", "prepare"]
Method = Literal["none", "lo", "locc"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CutSpec(_Model):
    """One cut: a gate cut, an LO wire cut or a wire of an LOCC bundle (original qubits)."""

    kind: CutKind
    qubits: list[int]
    position: int = Field(description="instruction index in the cut circuit")
    gamma: float
    bundle: str | None = None


class BundleSpec(_Model):
    """LOCC wires cut at the same place: ``source`` measures, then ``target`` prepares."""

    name: str
    source: str
    target: str
    wires: int
    gamma: float
    source_qubits: list[int] = Field(description="local qubits measured in the source")
    target_qubits: list[int] = Field(description="local qubits prepared in the target")
    original_qubits: list[int]


class SubcircuitSpec(_Model):
    """One subcircuit: what the scheduler places and the worker runs."""

    name: str
    qubits: int
    two_qubit_depth: int
    shots: int = Field(description="total shots over all its subexperiments")
    role: Role
    depends_on: list[str] = []
    eligible_qpus: list[str] = []
    original_qubits: list[int] = []
    subexperiments_qpy: str | None = Field(
        default=None, description="base64 QPY of the subexperiments (independent subcircuits)"
    )
    subexperiment_shots: list[int] = []
    body_qpy: str | None = Field(
        default=None, description="base64 QPY of the unitary body (LOCC and uncut subcircuits)"
    )
    observable_qubits: list[tuple[int, int]] = Field(
        default=[], description="(original qubit, local qubit) whose final state is measured here"
    )


class LoData(_Model):
    """Reconstruction data of a library (gate / LO wire) cut."""

    coefficients: list[float]
    subobservables: dict[str, list[str]]


class LoccData(_Model):
    """Measurement groups (qubit-wise commuting) and samples per group of an LOCC / uncut run."""

    group_bases: list[str] = Field(description="per group, X/Y/Z per original qubit, Qiskit order")
    observable_group: list[int]
    samples_per_group: int


class CandidateSummary(_Model):
    """A plan the search considered, and why it was or was not chosen."""

    method: Method
    width: int
    cuts: int
    overhead: float
    subcircuits: int
    kinds: list[CutKind] = []
    qpd_terms: int = Field(default=0, description="QPD terms (LO) or channel combinations (LOCC)")
    estimated_fidelity: float = Field(
        default=1.0, description="Product over subcircuits of the estimated fidelity on the "
        "most faithful QPU that may run each (1 on ideal simulators)")
    verdict: str


class CutPlan(_Model):
    """Cuts, subcircuits, precedence DAG, overhead and the reasons behind them."""

    method: Method
    num_qubits: int
    observables: list[str]
    cuts: list[CutSpec]
    subcircuits: list[SubcircuitSpec]
    bundles: list[BundleSpec] = []
    edges: list[tuple[str, str]] = Field(default=[], description="(measure, prepare) precedence")
    gamma: float
    overhead: float
    qpd_terms: int = Field(default=1, description="QPD terms (LO) or channel combinations "
                           "(LOCC) the estimate sums over; 1 uncut")
    base_shots: int
    explanation: list[str]
    candidates: list[CandidateSummary] = []
    lo: LoData | None = None
    locc: LoccData | None = None

    def subcircuit(self, name: str) -> SubcircuitSpec:
        """The subcircuit called ``name``."""
        for sub in self.subcircuits:
            if sub.name == name:
                return sub
        raise KeyError(f"no subcircuit {name!r} in plan; have {[s.name for s in self.subcircuits]}")

    @property
    def cut_kinds(self) -> list[CutKind]:
        """The cut kinds used (gate, loWire, loccWire order); empty when uncut."""
        used = {c.kind for c in self.cuts}
        return [k for k in ("gate", "loWire", "loccWire") if k in used]

    @property
    def total_shots(self) -> int:
        """Shots over all subcircuits."""
        return sum(s.shots for s in self.subcircuits)


class SubcircuitRecord(_Model):
    """How one subcircuit ran: its place in the execution order, shots, circuits, wall time."""

    name: str
    order: int
    shots: int
    circuits: int
    wall_time_s: float
    started: float
    ended: float


class CutResult(_Model):
    """Reconstructed expectation values with standard errors, one per observable."""

    values: list[float]
    std_errors: list[float]
    records: list[SubcircuitRecord]
    timings: dict[str, float] = {}
