"""Pure ``build_*`` functions: the manifests the operator creates for a job (dicts, no I/O)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from qbackbone.dra.classes import qpu_class_name
from qbackbone.k8s import GROUP, VERSION
from qbackbone.k8s.names import (
    ANNOTATION_QPU,
    claim_template_name,
    job_labels,
    qpu_resource,
    result_name,
)

Manifest = dict[str, Any]
INPUT_ENV = "QBACKBONE_INPUT"
PRECEDENCE_GATE = "qbackbone.io/precedence"  # on LOCC preparation pods until inputs exist
NAMESPACE_ENV = "POD_NAMESPACE"
CLAIM = "qpu"  # the pod's resource claim (and its one request) in DRA mode


@dataclass(frozen=True)
class WorkerConfig:
    """How worker pods are run: image, the command that starts ``qbackbone``, extras."""

    image: str = "qbackbone:0.1.0"
    command: tuple[str, ...] = ("qbackbone",)
    service_account: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    pull_policy: str | None = None  # imagePullPolicy; None: Kubernetes' default
    # How a fragment pod asks for its QPU: the device plugin's extended resource
    # (qpu.qbackbone.io/<qpu>: 1), or a DRA ResourceClaim from a template pinned to the QPU's
    # device (qbackbone dra-driver must run; docs/dra.md).
    qpu_claims: bool = False


@dataclass(frozen=True)
class JobRef:
    """The QuantumJob that owns what is built for it."""

    name: str
    namespace: str
    uid: str


def owner_reference(job: JobRef, controller: bool = True) -> Manifest:
    """An ownerReference to the job, so the garbage collector deletes the child with it."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "QuantumJob", "name": job.name,
            "uid": job.uid, "controller": controller, "blockOwnerDeletion": controller}


def _metadata(job: JobRef, name: str, role: str, qpu: str | None = None,
              controller: bool = True, labels: Mapping[str, str] | None = None,
              annotations: Mapping[str, str] | None = None) -> Manifest:
    meta: Manifest = {"name": name, "namespace": job.namespace,
                      "labels": {**job_labels(job.name, role, qpu), **(labels or {})},
                      "ownerReferences": [owner_reference(job, controller)]}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def build_configmap(job: JobRef, name: str, role: str, data: Mapping[str, str],
                    qpu: str | None = None, controller: bool = True,
                    labels: Mapping[str, str] | None = None) -> Manifest:
    """A ConfigMap owned by the job."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": _metadata(job, name, role, qpu, controller, labels), "data": dict(data)}


def fragment_input_data(job: JobRef, work: str, qpunode: Mapping[str, Any],
                        shots: int | Sequence[int], seed: int | None, circuits_text: str,
                        result: str | None = None) -> dict[str, str]:
    """What a fragment's worker needs: the QPU, shots (one count, or one per circuit), seed,
    the transpiled circuits, and the result to write (default ``<work>-out``)."""
    return {"kind": "fragment", "job": job.name, "jobUid": job.uid,
            "result": result or result_name(work),
            "qpunode.json": json.dumps(qpunode, sort_keys=True),
            "shots": json.dumps(shots if isinstance(shots, int) else list(shots)),
            "seed": json.dumps(seed), "circuits.qpy": circuits_text}


def classical_input_data(job: JobRef, work: str, circuit_text: str,
                         observables: Sequence[str] | None, shots: int, method: str,
                         seed: int | None) -> dict[str, str]:
    """What the classical worker needs: the circuit, observables or sampling, the method."""
    return {"kind": "classical", "job": job.name, "jobUid": job.uid, "result": result_name(work),
            "circuit.qpy": circuit_text, "observables": json.dumps(observables),
            "shots": str(shots), "method": method, "seed": json.dumps(seed)}


def build_worker_pod(job: JobRef, name: str, input_configmap: str, worker: WorkerConfig,
                     role: str, qpu: str | None = None,
                     node_selector: Mapping[str, str] | None = None,
                     labels: Mapping[str, str] | None = None, gated: bool = False,
                     annotations: Mapping[str, str] | None = None) -> Manifest:
    """A run-once pod with the worker command; with ``qpu`` it holds that QPU's resource;
    ``gated``: kube-scheduler leaves it alone until the precedence gate is removed."""
    env = [{"name": NAMESPACE_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
           {"name": INPUT_ENV, "value": input_configmap}]
    env += [{"name": k, "value": v} for k, v in sorted(worker.env.items())]
    container: Manifest = {
        "name": "worker", "image": worker.image,
        "command": [*worker.command, "worker", "--input", input_configmap],
        "env": env, "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if worker.pull_policy:
        container["imagePullPolicy"] = worker.pull_policy
    spec: Manifest = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 10,
                      "containers": [container]}
    if qpu is not None and worker.qpu_claims:
        container["resources"] = {"claims": [{"name": CLAIM}]}
        spec["resourceClaims"] = [{"name": CLAIM, "resourceClaimTemplateName":
                                   claim_template_name(job.name, qpu)}]
    elif qpu is not None:
        container["resources"] = {"limits": {qpu_resource(qpu): "1"},
                                  "requests": {qpu_resource(qpu): "1"}}
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if worker.service_account:
        spec["serviceAccountName"] = worker.service_account
    if gated:
        spec["schedulingGates"] = [{"name": PRECEDENCE_GATE}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": _metadata(job, name, role, qpu, labels=labels, annotations=annotations),
            "spec": spec}


def build_fragment_pod(job: JobRef, name: str, input_configmap: str, qpu: str,
                       worker: WorkerConfig,
                       node_selector: Mapping[str, str] | None = None,
                       labels: Mapping[str, str] | None = None, gated: bool = False,
                       annotations: Mapping[str, str] | None = None) -> Manifest:
    """A fragment pod: requests ``qpu.qbackbone.io/<qpu>: 1``, or in DRA mode claims the QPU's
    device through ``build_claim_template``, so kube-scheduler pins it."""
    return build_worker_pod(job, name, input_configmap, worker, "fragment", qpu, node_selector,
                            labels, gated, {**(annotations or {}), ANNOTATION_QPU: qpu})


def build_claim_template(job: JobRef, qpu: str) -> Manifest:
    """A ResourceClaimTemplate (owned by the job) for exactly QPU ``qpu``: one device of the
    QPU's own DeviceClass (``dra/classes.py``; a class, not a CEL selector in the claim, which
    kueue 0.17 cannot count), so kube-scheduler allocates the plan's QPU, binds the pod where
    that device is reachable, and kueue charges one ``qpu.qbackbone.io/qpus``."""
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
            "metadata": _metadata(job, claim_template_name(job.name, qpu), "claim", qpu),
            "spec": {"spec": {"devices": {"requests": [
                {"name": CLAIM, "exactly": {"deviceClassName": qpu_class_name(qpu)}}]}}}}


def build_classical_pod(job: JobRef, name: str, input_configmap: str,
                        worker: WorkerConfig) -> Manifest:
    """The classical fallback pod: ordinary nodes, no QPU resource."""
    return build_worker_pod(job, name, input_configmap, worker, "classical")
