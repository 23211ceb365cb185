"""The decision record: everything a job was decided from, stored in a ConfigMap it owns.

``decide_job`` is deterministic given the job, the QPUNodes, the policy, the clock and the seed
(transpilation is seeded), so an operator that restarts re-derives the same ``DecidedJob``
from this record, with the same fragments and shares, whatever the fleet looks like by then.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from qbackbone.core.pipeline import DecidedJob, JobRun, decide_job, start_job
from qbackbone.core.pipeline.progress import Progress
from qbackbone.core.qpus.fleet import build_fleet
from qbackbone.k8s.objects import job_from_body, policies, qpunodes


@dataclass(frozen=True)
class DecisionRecord:
    """The job (trimmed), the Ready QPUNodes, the policy (None: built-in), the clock, the seed."""

    job: dict[str, Any]
    fleet: list[dict[str, Any]]
    policy: dict[str, Any] | None
    now: datetime
    seed: int | None

    @property
    def stamp(self) -> str:
        """Identifies this decision (the clock it was made at)."""
        return self.now.isoformat()

    def to_data(self) -> dict[str, str]:
        """ConfigMap data."""
        return {"job.json": json.dumps(self.job, sort_keys=True, default=str),
                "fleet.json": json.dumps(self.fleet, sort_keys=True, default=str),
                "policy.json": json.dumps(self.policy, sort_keys=True, default=str),
                "now": self.stamp, "seed": json.dumps(self.seed)}

    @classmethod
    def from_data(cls, data: Mapping[str, str]) -> DecisionRecord:
        """The record stored by :meth:`to_data`."""
        return cls(job=json.loads(data["job.json"]), fleet=json.loads(data["fleet.json"]),
                   policy=json.loads(data["policy.json"]), now=datetime.fromisoformat(data["now"]),
                   seed=json.loads(data["seed"]))

    def start(self, progress: Progress | None = None) -> JobRun:
        """A fresh run of the recorded job at the recorded clock."""
        return start_job(job_from_body(self.job), progress, self.now)

    def decide(self, run: JobRun) -> DecidedJob:
        """Reduce, assess and decide exactly as recorded; JobFailure when refused."""
        fleet = build_fleet(qpunodes(self.fleet))
        named = {} if self.policy is None else {self.policy["metadata"]["name"]: self.policy}
        return decide_job(run, fleet, policies(named), self.seed)
