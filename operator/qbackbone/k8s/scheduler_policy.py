"""The scheduler policy: the InvocationPolicy whose ``spec.scheduler`` governs the joint plan.

The operator plans every waiting job of every policy in one plan (``k8s.queue``), so one
policy's scheduler settings (algorithm, annealing fields, budgets, seed) apply to it: the
one ``qbackbone operator --scheduler-policy [NAMESPACE/]NAME`` names (default
``default/default``; a bare name is in namespace ``default``). The operator follows it through
its watch on policies: on every event for that policy the queue gets its settings; while it
does not exist (never created, deleted, or outside the watched namespaces) or is not valid,
the plan uses the defaults, as a job without a policy does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from qbackbone.api.manifests import ManifestError
from qbackbone.api.policy import DEFAULT_POLICY_NAME, InvocationPolicy, SchedulerOptions
from qbackbone.k8s.objects import parse, trimmed
from qbackbone.k8s.queue import FleetQueue

DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True)
class SchedulerPolicyRef:
    """Namespace and name of the scheduler policy."""

    namespace: str = DEFAULT_NAMESPACE
    name: str = DEFAULT_POLICY_NAME

    @classmethod
    def parse(cls, text: str) -> SchedulerPolicyRef:
        """``NAMESPACE/NAME`` or ``NAME`` (in namespace ``default``); ValueError if malformed."""
        namespace, _, name = text.rpartition("/")
        if not name or "/" in namespace or (_ and not namespace):
            raise ValueError(f"expected NAMESPACE/NAME or NAME, got {text!r}")
        return cls(namespace or DEFAULT_NAMESPACE, name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def scheduler_options(body: Mapping[str, Any] | None) -> SchedulerOptions:
    """``spec.scheduler`` of a policy body; the defaults when there is none (``None``: the
    policy does not exist) or it is not valid (the policy's Valid condition says why)."""
    if body is None:
        return SchedulerOptions()
    try:
        policy = parse(trimmed(body))
    except (ManifestError, ValidationError):
        return SchedulerOptions()
    return policy.spec.scheduler if isinstance(policy, InvocationPolicy) else SchedulerOptions()


@dataclass(frozen=True)
class SchedulerPolicy:
    """Hands the scheduler policy's settings to the queue as its watch events arrive."""

    ref: SchedulerPolicyRef
    queue: FleetQueue

    def see(self, namespace: str, name: str, body: Mapping[str, Any] | None) -> bool:
        """A policy was listed, changed (``body``) or deleted (``None``): if it is the
        scheduler policy, the queue plans with its settings from now on. True when that
        changed them."""
        if (namespace, name) != (self.ref.namespace, self.ref.name):
            return False
        return self.queue.use_scheduler(scheduler_options(body))
