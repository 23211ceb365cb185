"""InvocationPolicy: the Valid condition (an invalid spec is reported, never crashed on);
jobs decided and quantum share from the jobs that name it (k8s.usage); the learned
adjustments in use when it enables learning (k8s.history)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from controllers.metrics import observed
from qbackbone.k8s import GROUP, JOBS, POLICIES, VERSION
from qbackbone.k8s.history import OperatorHistory
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.qpunodes import policy_status
from qbackbone.k8s.scheduler_policy import SchedulerPolicy
from qbackbone.k8s.status import write_status
from qbackbone.k8s.usage import PolicyUse, StatusLoop

USAGE_INTERVAL_SECONDS = 2.0
log = logging.getLogger(__name__)


@kopf.on.resume(GROUP, VERSION, POLICIES)
@kopf.on.create(GROUP, VERSION, POLICIES)
@kopf.on.update(GROUP, VERSION, POLICIES, field="spec")
@observed("invocationpolicy")
def reconcile_policy(body: kopf.Body, name: str, namespace: str | None, memo: kopf.Memo,
                     **_: Any) -> None:
    """Validate the spec against the model and write the Valid condition."""
    kube: Kube = memo.kube
    status = policy_status(body)
    if write_status(kube, POLICIES, namespace, name, body.get("status"), status):
        valid = next(c for c in status.conditions if c.type == "Valid")
        kopf.event(body, type="Normal" if valid.status == "True" else "Warning",
                   reason=valid.reason, message=valid.message)


@kopf.on.startup()
def start_policy_use(memo: kopf.Memo, **_: Any) -> None:
    """Track decided jobs and policies; a thread writes jobsDecided, quantumShare and
    learnedAdjustments (from the job history controllers.setup opened)."""
    def learned(namespace: str, body: Mapping[str, Any]) -> dict[str, float] | None:
        history: OperatorHistory | None = memo.get("history")  # opened by setup.configure
        return None if history is None else history.adjustments(namespace, body)

    memo.policy_use = PolicyUse(learned)
    memo.policy_use_loop = StatusLoop("policy-use", memo.policy_use.writes,
                                      lambda: memo.get("kube"), USAGE_INTERVAL_SECONDS)
    memo.policy_use_loop.start()


@kopf.on.cleanup()
def stop_policy_use(memo: kopf.Memo, **_: Any) -> None:
    loop: StatusLoop | None = memo.get("policy_use_loop")
    if loop is not None:
        loop.stop()


@kopf.on.event(GROUP, VERSION, JOBS)
def job_seen(type: str, body: kopf.Body, uid: str, namespace: str | None, memo: kopf.Memo,
             **_: Any) -> None:
    """A QuantumJob was listed, changed or deleted (its decision names the policy)."""
    memo.policy_use.see_job(uid, namespace or "", None if type == "DELETED" else body)


@kopf.on.event(GROUP, VERSION, POLICIES)
def policy_seen(type: str, body: kopf.Body, name: str, namespace: str | None,
                memo: kopf.Memo, **_: Any) -> None:
    """A policy was listed, changed or deleted (its stored status is the write's base; the
    scheduler policy's settings go to the joint plan, k8s.scheduler_policy)."""
    seen = None if type == "DELETED" else body
    memo.policy_use.see_policy(namespace or "", name, seen)
    scheduler: SchedulerPolicy | None = memo.get("scheduler_policy")
    if scheduler is not None and scheduler.see(namespace or "", name, seen):
        settings = scheduler.queue.scheduler.model_dump(mode="json", by_alias=True,
                                                        exclude_unset=True)
        log.info("joint plan: scheduler settings of InvocationPolicy %s%s: %s, the rest at "
                 "their defaults", scheduler.ref, " (deleted)" if seen is None else "",
                 settings or "none")
