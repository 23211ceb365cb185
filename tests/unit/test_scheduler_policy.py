"""The scheduler policy: which InvocationPolicy's spec.scheduler governs the operator's joint
plan, its budget fields, and how its settings reach the queue (no cluster)."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from pydantic import ValidationError

from qbackbone.api.policy import SchedulerOptions
from qbackbone.k8s.queue import FleetQueue, plan_params
from qbackbone.k8s.scheduler_policy import (
    SchedulerPolicy,
    SchedulerPolicyRef,
    scheduler_options,
)


def policy(name: str, scheduler: dict[str, Any], namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": "qbackbone.io/v1alpha1", "kind": "InvocationPolicy",
            "metadata": {"name": name, "namespace": namespace, "generation": 1},
            "spec": {"scheduler": scheduler}, "status": {"jobsDecided": 3}}


@pytest.mark.parametrize("fields", [{"timeBudgetSeconds": 0}, {"timeBudgetSeconds": 61},
                                    {"workBudget": -1}, {"workBudget": 10**9}])
def test_budgets_have_bounds(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SchedulerOptions.model_validate(fields)


def test_budgets_are_optional_and_read_from_the_wire() -> None:
    assert SchedulerOptions().time_budget_seconds is None
    assert SchedulerOptions().work_budget is None
    options = SchedulerOptions.model_validate({"timeBudgetSeconds": 0.25, "workBudget": 0})
    assert (options.time_budget_seconds, options.work_budget) == (0.25, 0)
    assert options.to_wire()["timeBudgetSeconds"] == 0.25


@pytest.mark.parametrize(("text", "ref"), [
    ("default", SchedulerPolicyRef("default", "default")),
    ("qbackbone-system/cluster", SchedulerPolicyRef("qbackbone-system", "cluster")),
])
def test_the_scheduler_policy_is_named_namespace_slash_name(text: str,
                                                            ref: SchedulerPolicyRef) -> None:
    assert SchedulerPolicyRef.parse(text) == ref
    assert SchedulerPolicyRef.parse(str(ref)) == ref


@pytest.mark.parametrize("text", ["", "/name", "ns/", "a/b/c"])
def test_a_malformed_scheduler_policy_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="NAMESPACE/NAME"):
        SchedulerPolicyRef.parse(text)


def test_the_operator_flag_names_the_scheduler_policy() -> None:
    from controllers.main import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["operator", "--scheduler-policy", "ops/cluster"])
    assert args.scheduler_policy == SchedulerPolicyRef("ops", "cluster")
    assert parser.parse_args(["operator"]).scheduler_policy == SchedulerPolicyRef()
    with pytest.raises(SystemExit):
        parser.parse_args(["operator", "--scheduler-policy", "a/b/c"])


def test_a_missing_or_invalid_policy_means_the_defaults() -> None:
    assert scheduler_options(None) == SchedulerOptions()
    assert scheduler_options(policy("default", {"algorithm": "fifo"})) == SchedulerOptions()
    found = scheduler_options(policy("default", {"algorithm": "list", "seed": 7}))
    assert (found.algorithm, found.seed) == ("list", 7)


def test_only_the_scheduler_policy_reaches_the_queue() -> None:
    queue = FleetQueue(seed=11)
    watcher = SchedulerPolicy(SchedulerPolicyRef("ops", "cluster"), queue)
    assert not watcher.see("default", "cluster", policy("cluster", {"algorithm": "list"}))
    assert not watcher.see("ops", "other", policy("other", {"algorithm": "list"}, "ops"))
    assert queue.scheduler == SchedulerOptions()
    edf = policy("cluster", {"algorithm": "greedyEDF", "seed": 4}, "ops")
    assert watcher.see("ops", "cluster", edf)
    assert queue.scheduler.algorithm == "greedyEDF"
    assert not watcher.see("ops", "cluster", {**edf, "status": {"jobsDecided": 4}})  # same
    assert watcher.see("ops", "cluster", None)  # deleted: the defaults again
    assert queue.scheduler == SchedulerOptions()


def test_the_plan_takes_the_policys_seed_else_the_operators() -> None:
    assert plan_params(SchedulerOptions(), 11).seed == 11
    assert plan_params(SchedulerOptions(seed=0), 11).seed == 0
    timed = plan_params(SchedulerOptions(timeBudgetSeconds=0.5, workBudget=9000,
                                         shotSplitting="Never", iterations=300), 11)
    assert (timed.time_limit, timed.work_budget, timed.iterations) == (0.5, 9000, 300)
    assert timed.shot_splitting  # each job's own policy says whether it may be split


def test_the_policy_watch_hands_the_scheduler_policy_to_the_queue() -> None:
    import kopf
    from controllers.policy import policy_seen

    from qbackbone.k8s.usage import PolicyUse

    queue = FleetQueue()
    memo = kopf.Memo(policy_use=PolicyUse(),
                     scheduler_policy=SchedulerPolicy(SchedulerPolicyRef(), queue))
    body = policy("default", {"algorithm": "list", "timeBudgetSeconds": 0.3})
    policy_seen(type=None, body=body, name="default", namespace="default", memo=memo)
    assert (queue.scheduler.algorithm, queue.scheduler.time_budget_seconds) == ("list", 0.3)
    policy_seen(type="DELETED", body=body, name="default", namespace="default", memo=memo)
    assert queue.scheduler == SchedulerOptions()
