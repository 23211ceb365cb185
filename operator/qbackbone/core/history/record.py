"""One finished job as the history keeps it: what was decided, predicted and measured.

Records are plain data (JSON objects, one per line in export files). Times are seconds;
``finished_at`` is a Unix time. ``from_dict`` checks every field, since an imported file
is input like any other.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SCHEMA = 1


@dataclass(frozen=True)
class FragmentRecord:
    """Shots of the job on one QPU: the nominal time model's parts and what happened.

    ``shots`` counts the shots run (bases and mitigation's multiplier included); the nominal
    prediction is ``setup_seconds + shots * shot_seconds`` from the QPUNode, whatever the
    decision's learned values were, so learning always corrects the nominal model.
    """

    qpu: str
    shots: float
    setup_seconds: float
    shot_seconds: float
    predicted_seconds: float  # what the decision planned (learned values included)
    actual_seconds: float | None  # measured run time; None when unknown
    predicted_wait_seconds: float = 0.0
    actual_wait_seconds: float | None = None
    estimated_success: float | None = None  # nominal estimate (calibration), before learning
    ideal: bool = False

    @property
    def nominal_seconds(self) -> float:
        """The QPUNode's time model for these shots."""
        return self.setup_seconds + self.shots * self.shot_seconds


@dataclass(frozen=True)
class JobRecord:
    """A finished job: features, decision, outcome, energy."""

    name: str
    namespace: str | None
    finished_at: float
    policy: str
    policy_generation: int
    problem_class: str
    path: str | None  # SingleQPU | Distributed | Classical; None: refused
    reason: str
    phase: str  # Succeeded | Failed
    failure_reason: str | None = None
    features: dict[str, float] = field(default_factory=dict)
    qpus: list[str] = field(default_factory=list)
    fragments: list[FragmentRecord] = field(default_factory=list)
    mitigation: list[str] = field(default_factory=list)  # levels used, per QPU group
    implied_success: float | None = None  # from the deviation from exact (unmitigated only)
    verification_method: str | None = None
    verified: bool | None = None  # None: not verified
    deadline_seconds: float | None = None
    deadline_met: bool | None = None
    total_seconds: float | None = None
    estimated_energy_joules: float | None = None
    energy_joules: float | None = None
    learned: list[str] = field(default_factory=list)  # learned values the decision used
    schema: int = SCHEMA

    @property
    def key(self) -> str:
        """Identity in a store: the same job finished at the same time is one record."""
        return f"{self.namespace or ''}/{self.name}@{self.finished_at:.6f}"

    @property
    def succeeded(self) -> bool:
        """Verified (or not verifiable) and in time: the outcome learning compares paths on."""
        return (self.phase == "Succeeded" and self.verified is not False
                and self.deadline_met is not False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> JobRecord:
        """A record from a dict; ValueError naming the first bad field."""
        if not isinstance(data, dict):
            raise ValueError("a history record is a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
        if data.get("schema", SCHEMA) != SCHEMA:
            raise ValueError(f"schema {data.get('schema')!r}, expected {SCHEMA}")
        values = dict(data)
        for name in ("name", "policy", "problem_class", "reason", "phase"):
            _check(values, name, str)
        _check(values, "finished_at", float)
        _check(values, "policy_generation", int)
        for name in ("namespace", "path", "failure_reason", "verification_method"):
            _check(values, name, str, optional=True)
        for name in ("implied_success", "deadline_seconds", "total_seconds",
                     "estimated_energy_joules", "energy_joules"):
            _check(values, name, float, optional=True)
        for name in ("verified", "deadline_met"):
            _check(values, name, bool, optional=True)
        for name in ("qpus", "mitigation", "learned"):
            items = values.get(name, [])
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError(f"{name} must be a list of strings")
        feats = values.get("features", {})
        if not isinstance(feats, dict) or not all(
                isinstance(k, str) and _number(v) for k, v in feats.items()):
            raise ValueError("features must map names to numbers")
        raw = values.get("fragments", [])
        if not isinstance(raw, list):
            raise ValueError("fragments must be a list")
        values["fragments"] = [_fragment(f) for f in raw]
        return cls(**values)


def _number(value: Any) -> bool:
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value))


def _check(values: dict[str, Any], name: str, kind: type, optional: bool = False) -> None:
    if name not in values:
        if optional:
            return
        raise ValueError(f"{name} is missing")
    value = values[name]
    if value is None and optional:
        return
    if kind is float:
        if not _number(value):
            raise ValueError(f"{name} must be a finite number")
        values[name] = float(value)
    elif kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer")
    elif not isinstance(value, kind):
        raise ValueError(f"{name} must be a {kind.__name__}")


def _fragment(data: Any) -> FragmentRecord:
    if not isinstance(data, dict):
        raise ValueError("a fragment is a JSON object")
    known = {f.name for f in fields(FragmentRecord)}
    if set(data) - known:
        raise ValueError(f"unknown fragment field(s) {', '.join(sorted(set(data) - known))}")
    values = dict(data)
    _check(values, "qpu", str)
    for name in ("shots", "setup_seconds", "shot_seconds", "predicted_seconds"):
        _check(values, name, float)
    for name in ("actual_seconds", "actual_wait_seconds", "estimated_success"):
        _check(values, name, float, optional=True)
    _check(values, "predicted_wait_seconds", float, optional=True)
    _check(values, "ideal", bool, optional=True)
    return FragmentRecord(**values)
