"""The decision record: everything a job was decided from, stored in a ConfigMap it owns.

``decide_job`` is deterministic given the job, the QPUNodes, the policy, the clock and the seed
(transpilation is seeded), so an operator that restarts re-derives the same ``DecidedJob``
from this record, with the same fragments and shares, whatever the fleet looks like by then.
What the policy had learned from the job history (``learned.json``, issue 20) is part of the
record too: a later history teaches other values, the recorded decision keeps its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from qbackbone.api.policy import InvocationPolicy
from qbackbone.core.learning import LearnedModel
from qbackbone.core.pipeline import (
    DecidedJob,
    DecidedProblem,
    JobRun,
    decide_job,
    decide_problem,
    start_job,
)
from qbackbone.core.pipeline.optimize import shortcut_outcome
from qbackbone.core.pipeline.progress import Progress
from qbackbone.core.qpus.fleet import QPU, build_fleet
from qbackbone.k8s.objects import job_from_body, policies, qpunodes


@dataclass(frozen=True)
class DecisionRecord:
    """The job (trimmed), the Ready QPUNodes, the policy (None: built-in), the clock, the seed,
    and what the policy had learned (None: learning off, or no history)."""

    job: dict[str, Any]
    fleet: list[dict[str, Any]]
    policy: dict[str, Any] | None
    now: datetime
    seed: int | None
    shortcut: bool | None = None  # problem jobs: the timed classical-shortcut rule's outcome
    learned: LearnedModel | None = None

    @property
    def stamp(self) -> str:
        """Identifies this decision (the clock it was made at)."""
        return self.now.isoformat()

    def to_data(self) -> dict[str, str]:
        """ConfigMap data."""
        return {"job.json": json.dumps(self.job, sort_keys=True, default=str),
                "fleet.json": json.dumps(self.fleet, sort_keys=True, default=str),
                "policy.json": json.dumps(self.policy, sort_keys=True, default=str),
                "now": self.stamp, "seed": json.dumps(self.seed),
                "shortcut": json.dumps(self.shortcut),
                "learned.json": json.dumps(None if self.learned is None
                                           else self.learned.to_data(), sort_keys=True)}

    @classmethod
    def from_data(cls, data: Mapping[str, str]) -> DecisionRecord:
        """The record stored by :meth:`to_data` (one written before learning was recorded
        has no ``learned.json``: nothing learned)."""
        learned = json.loads(data.get("learned.json", "null"))
        return cls(job=json.loads(data["job.json"]), fleet=json.loads(data["fleet.json"]),
                   policy=json.loads(data["policy.json"]), now=datetime.fromisoformat(data["now"]),
                   seed=json.loads(data["seed"]),
                   shortcut=json.loads(data.get("shortcut", "null")),
                   learned=None if learned is None else LearnedModel.from_data(learned))

    def start(self, progress: Progress | None = None) -> JobRun:
        """A fresh run of the recorded job at the recorded clock."""
        return start_job(job_from_body(self.job), progress, self.now)

    @property
    def is_problem(self) -> bool:
        """Whether the recorded job is a problem job (spec.problem)."""
        return bool((self.job.get("spec") or {}).get("problem"))

    def qpus(self) -> list[QPU]:
        """The recorded QPUNodes as the fleet the decision saw."""
        return list(build_fleet(qpunodes(self.fleet)))

    def policies(self) -> dict[str, InvocationPolicy]:
        """The recorded policy by name (empty: the built-in default)."""
        return policies({} if self.policy is None
                        else {str(self.policy["metadata"]["name"]): self.policy})

    def decide(self, run: JobRun) -> DecidedJob:
        """Reduce, assess and decide exactly as recorded; JobFailure when refused."""
        return decide_job(run, self.qpus(), self.policies(), self.seed, self.learned)

    def decide_problem(self, run: JobRun) -> tuple[DecisionRecord, DecidedProblem]:
        """A problem job's decision; the record returned also holds the outcome of the timed
        shortcut rule, so re-deriving it later gives the same path. The recorded job carries
        its topology inline (k8s.problem.inline_topology)."""
        decided = decide_problem(run, self.qpus(), self.policies(), self.seed,
                                 shortcut_proved=self.shortcut, learned=self.learned)
        return replace(self, shortcut=shortcut_outcome(run.status)), decided
