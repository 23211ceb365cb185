"""What history teaches, within the policy's bounds: per-QPU factors on the time model and
on the error rates behind the success-probability estimate, and per problem class whether
the quantum path paid against the classical one.

Every learned value carries how many jobs it came from. Older jobs weigh less (half-life),
and a value is used only while the jobs behind it weigh at least ``minSamples`` together (a
job one half-life old counts half; 95% of it, so that minSamples recent jobs are enough):
below that the QPU keeps its nominal model, so evidence that is not renewed fades and a QPU
that learning moved work away from is tried at its nominal model again. Every factor is
clamped to [1/maxCorrection, maxCorrection].
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from qbackbone.api.policy import LearningOptions
from qbackbone.core.history.collect import SUCCESS_SCALE_RULE
from qbackbone.core.history.record import JobRecord
from qbackbone.core.learning.estimators import (
    TimeSample,
    clamp,
    decay_weight,
    fit_time,
    success_scale,
    weighted_median,
)

SHOT_TIME = "learnedShotTimeFactor"
SETUP_TIME = "learnedSetupTimeFactor"
SUCCESS = SUCCESS_SCALE_RULE
QUANTUM_PAYS = "learnedQuantumPays"


@dataclass(frozen=True)
class Learned:
    """One learned value with its provenance."""

    name: str
    value: float
    samples: int  # jobs it was learned from
    raw: float  # before clamping
    method: str = ""

    @property
    def clamped(self) -> bool:
        """Whether the bound cut the estimate."""
        return abs(self.raw - self.value) > 1e-12


@dataclass(frozen=True)
class QPULearning:
    """A QPU's learned factors (None: too few jobs, nominal is used)."""

    shot_time: Learned | None = None
    setup_time: Learned | None = None
    success: Learned | None = None


@dataclass(frozen=True)
class ClassOutcomes:
    """How a problem class went on each path (weighted success rate: verified and in time)."""

    quantum_rate: float | None
    quantum_jobs: int
    classical_rate: float | None
    classical_jobs: int
    quantum_seconds: float | None = None
    classical_seconds: float | None = None
    quantum_joules: float | None = None
    classical_joules: float | None = None

    def pays(self, options: LearningOptions) -> bool | None:
        """False when both paths have minSamples jobs and quantum's success rate trails the
        classical one's by more than quantumPaysMargin; None without enough of both."""
        if (self.quantum_rate is None or self.classical_rate is None
                or min(self.quantum_jobs, self.classical_jobs) < options.min_samples):
            return None
        return self.quantum_rate >= self.classical_rate - options.quantum_pays_margin

    def describe(self) -> str:
        """One line: rates, jobs, mean seconds and joules per path."""
        def part(label: str, rate: float | None, n: int, s: float | None,
                 j: float | None) -> str:
            text = f"{label} {'-' if rate is None else f'{rate:.2f}'} success over {n} jobs"
            if s is not None:
                text += f", {s:.3g}s"
            if j is not None:
                text += f", {j:.3g}J"
            return text
        return "; ".join((part("quantum", self.quantum_rate, self.quantum_jobs,
                               self.quantum_seconds, self.quantum_joules),
                          part("classical", self.classical_rate, self.classical_jobs,
                               self.classical_seconds, self.classical_joules)))


@dataclass(frozen=True)
class LearnedModel:
    """Everything learned from a history, for one policy's learning options."""

    options: LearningOptions
    qpus: dict[str, QPULearning] = field(default_factory=dict)
    classes: dict[str, ClassOutcomes] = field(default_factory=dict)
    jobs: int = 0

    def adjustments(self) -> dict[str, float]:
        """The learned values in use, as the policy's status.learnedAdjustments shows them
        (``<qpu>/<name>``: factor)."""
        out: dict[str, float] = {}
        for qpu, learned in sorted(self.qpus.items()):
            for value in (learned.shot_time, learned.setup_time, learned.success):
                if value is not None:
                    out[f"{qpu}/{value.name}"] = round(value.value, 4)
        return out

    def to_data(self) -> dict[str, Any]:
        """A JSON-ready dict holding everything a decision reads from this model (options,
        per-QPU values with their provenance, class outcomes), so that a decision recorded
        with it is re-derived identically by :meth:`from_data`."""
        return {"options": self.options.model_dump(mode="json", by_alias=True),
                "qpus": {q: {k: None if v is None else asdict(v)
                             for k, v in (("shotTime", ql.shot_time), ("setupTime", ql.setup_time),
                                          ("success", ql.success))}
                         for q, ql in sorted(self.qpus.items())},
                "classes": {c: asdict(o) for c, o in sorted(self.classes.items())},
                "jobs": self.jobs}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> LearnedModel:
        """The model :meth:`to_data` wrote (ValueError or TypeError when it is not one)."""
        def value(raw: Any) -> Learned | None:
            if raw is None:
                return None
            return Learned(name=str(raw["name"]), value=float(raw["value"]),
                           samples=int(raw["samples"]), raw=float(raw["raw"]),
                           method=str(raw.get("method", "")))

        def outcomes(raw: Mapping[str, Any]) -> ClassOutcomes:
            numbers = {k: None if raw.get(k) is None else float(raw[k]) for k in (
                "quantum_rate", "classical_rate", "quantum_seconds", "classical_seconds",
                "quantum_joules", "classical_joules")}
            return ClassOutcomes(quantum_jobs=int(raw["quantum_jobs"]),
                                 classical_jobs=int(raw["classical_jobs"]), **numbers)

        return cls(options=LearningOptions.model_validate(data["options"]),
                   qpus={str(q): QPULearning(value(v.get("shotTime")), value(v.get("setupTime")),
                                             value(v.get("success")))
                         for q, v in dict(data.get("qpus") or {}).items()},
                   classes={str(c): outcomes(o)
                            for c, o in dict(data.get("classes") or {}).items()},
                   jobs=int(data.get("jobs", 0)))


def _mean(pairs: list[tuple[float, float]]) -> float | None:
    total = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / total if total > 0 else None


FRESH = 0.95  # minSamples jobs of the last minutes weigh a little under minSamples


def _enough(weight: float, options: LearningOptions) -> bool:
    """Whether jobs of this total weight may teach a value (``minSamples`` recent jobs do)."""
    return weight >= FRESH * options.min_samples


def _learn_qpu(records: Sequence[JobRecord], qpu: str, options: LearningOptions,
               now: float) -> QPULearning:
    times: list[TimeSample] = []
    scales: list[tuple[float, float]] = []
    for r in records:  # newest first
        weight = decay_weight(now - r.finished_at, options.half_life)
        mine = [f for f in r.fragments if f.qpu == qpu]
        for f in mine:
            if f.actual_seconds is not None and len(times) < options.window:
                times.append(TimeSample(f.setup_seconds, f.shots * f.shot_seconds,
                                        f.actual_seconds + (f.actual_wait_seconds or 0.0),
                                        weight))
        alone = bool(mine) and len({f.qpu for f in r.fragments}) == 1
        if (alone and r.implied_success is not None and len(scales) < options.window
                and mine[0].estimated_success is not None and not mine[0].ideal):
            k = success_scale(mine[0].estimated_success, r.implied_success)
            if k is not None:
                scales.append((k, weight))
    bound = options.max_correction
    shot = setup = success = None
    if _enough(sum(t.weight for t in times), options):
        fit = fit_time(times)
        shot = Learned(SHOT_TIME, clamp(fit.shot_factor, bound), len(times), fit.shot_factor,
                       fit.method)
        setup = Learned(SETUP_TIME, clamp(fit.setup_factor, bound), len(times),
                        fit.setup_factor, fit.method)
    if _enough(sum(w for _, w in scales), options):
        k = weighted_median([v for v, _ in scales], [w for _, w in scales])
        success = Learned(SUCCESS, clamp(k, bound), len(scales), k, "weighted median")
    return QPULearning(shot, setup, success)


def _learn_class(records: Sequence[JobRecord], options: LearningOptions,
                 now: float) -> ClassOutcomes:
    sides: dict[bool, list[JobRecord]] = {True: [], False: []}
    for r in records:
        if r.path is not None and len(sides[r.path != "Classical"]) < options.window:
            sides[r.path != "Classical"].append(r)

    def rate(rs: list[JobRecord], value: str) -> float | None:
        pairs = []
        for r in rs:
            w = decay_weight(now - r.finished_at, options.half_life)
            v = {"success": 1.0 if r.succeeded else 0.0, "seconds": r.total_seconds,
                 "joules": r.energy_joules}[value]
            if v is not None:
                pairs.append((v, w))
        return _mean(pairs)

    q, c = sides[True], sides[False]
    return ClassOutcomes(rate(q, "success"), len(q), rate(c, "success"), len(c),
                         rate(q, "seconds"), rate(c, "seconds"), rate(q, "joules"),
                         rate(c, "joules"))


def learn(records: Sequence[JobRecord], options: LearningOptions, now: float) -> LearnedModel:
    """The model learned from ``records`` (any order) at Unix time ``now``."""
    ordered = sorted(records, key=lambda r: r.finished_at, reverse=True)
    qpus = sorted({f.qpu for r in ordered for f in r.fragments})
    by_class: dict[str, list[JobRecord]] = {}
    for r in ordered:
        by_class.setdefault(r.problem_class, []).append(r)
    return LearnedModel(
        options=options,
        qpus={q: _learn_qpu(ordered, q, options, now) for q in qpus},
        classes={c: _learn_class(rs, options, now) for c, rs in by_class.items()},
        jobs=len(ordered))
