"""Operator-wide settings and shared state (kopf's memo), and the liveness probe."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import kopf

from controllers.quantumjob import RESULTS
from qbackbone.k8s.builders import WorkerConfig
from qbackbone.k8s.history import OperatorHistory
from qbackbone.k8s.jobflow import JobReconciler, warm_up
from qbackbone.k8s.kube import Kube, load_api_client
from qbackbone.k8s.queue import FleetQueue
from qbackbone.k8s.scheduler_policy import SchedulerPolicy, SchedulerPolicyRef
from qbackbone.observability import metrics

PREFIX = "qbackbone.io"


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Annotation progress storage (the CRD schemas are strict), our finalizer name, and the
    clients and job reconciler every handler shares through the memo."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=PREFIX, key="last-handled-configuration")
    settings.persistence.finalizer = f"{PREFIX}/operator"
    settings.posting.level = logging.WARNING  # events are posted explicitly, one per step
    settings.execution.max_workers = max(settings.execution.max_workers or 4, 4)
    # The only ConfigMaps the operator watches are results (controllers.quantumjob).
    settings.watching.label_selectors["v1", "configmaps"] = RESULTS
    memo.kube = Kube(load_api_client())
    worker = memo.get("worker") or WorkerConfig()
    seed = memo.get("seed")
    queue = FleetQueue(lookahead=memo.get("lookahead", 2.0), seed=seed or 0,
                       on_plan=metrics.joint_plan_made)
    # The job history ($QBACKBONE_HISTORY; none: nothing recorded or learned, k8s.history).
    memo.history = OperatorHistory.from_env()
    memo.jobs = JobReconciler(memo.kube, worker, seed, queue, memo.history)
    # The joint plan follows this policy's spec.scheduler (controllers.policy.policy_seen).
    memo.scheduler_policy = SchedulerPolicy(
        memo.get("scheduler_policy_ref") or SchedulerPolicyRef(), queue)
    warm_up()  # the first job's decision is then as fast as the others'


@kopf.on.cleanup()
def close(memo: kopf.Memo, **_: Any) -> None:
    """Close the job history and the API client."""
    history: OperatorHistory | None = memo.get("history")
    if history is not None:
        history.close()
    kube = memo.get("kube")
    if kube is not None:
        kube.api.close()


@kopf.on.probe(id="activeJobs")
def active_jobs(memo: kopf.Memo, **_: Any) -> int:
    """For the liveness endpoint: how many jobs are being executed."""
    jobs: JobReconciler | None = memo.get("jobs")
    return 0 if jobs is None else len(jobs.active)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """In-cluster service account, else the kubeconfig of ``$KUBECONFIG`` read at login time.

    In a pod the API server is addressed as client-go's in-cluster configuration does, by
    ``KUBERNETES_SERVICE_HOST``/``PORT`` (the kubernetes Service's IP), not kopf's default
    ``kubernetes.default.svc``: a cluster without DNS (the dev cluster's real node) has no
    name to resolve."""
    info: kopf.ConnectionInfo | None = kopf.login_with_service_account(**kwargs)
    if info is not None:
        host = os.environ.get("KUBERNETES_SERVICE_HOST")
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if host:
            server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
            return dataclasses.replace(info, server=server)
        return info
    kubeconfig: kopf.ConnectionInfo | None = kopf.login_with_kubeconfig(**kwargs)
    return kubeconfig
