"""Reading QuantumJob, QPUNode and InvocationPolicy objects into the models the core needs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from qbackbone.api.manifests import ManifestError, parse_document
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.qpunode import QPUNode
from qbackbone.api.quantumjob import QuantumJob
from qbackbone.k8s import POLICIES, QPUNODES
from qbackbone.k8s.kube import Kube

_META_KEYS = ("name", "namespace", "labels", "generation", "creationTimestamp", "uid")
_ANNOTATION_PREFIX = "qbackbone.io/"  # annotations the models read (qbackbone.io/links)


def trimmed(body: Mapping[str, Any], status_keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """apiVersion, kind, the metadata the models read (annotations: the qbackbone.io/ ones),
    spec, and chosen status keys."""
    meta = body.get("metadata") or {}
    out: dict[str, Any] = {
        "apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
        "metadata": {k: meta[k] for k in _META_KEYS if k in meta},
        "spec": dict(body.get("spec") or {}),
    }
    ours = {k: v for k, v in (meta.get("annotations") or {}).items()
            if k.startswith(_ANNOTATION_PREFIX)}  # not kubectl's last-applied copy
    if ours:
        out["metadata"]["annotations"] = ours
    status = body.get("status") or {}
    kept = {k: status[k] for k in status_keys if k in status}
    if kept:
        out["status"] = kept
    return out


def parse(body: Mapping[str, Any]) -> QuantumJob | QPUNode | InvocationPolicy:
    """A trimmed object as its typed kind; ManifestError says why it is not valid."""
    return parse_document(body, f"{body.get('kind')}/{(body.get('metadata') or {}).get('name')}")


def job_from_body(body: Mapping[str, Any]) -> QuantumJob:
    """The QuantumJob the pipeline reads (status left out); ManifestError when invalid."""
    job = parse(trimmed(body))
    assert isinstance(job, QuantumJob)
    return job


def condition_status(body: Mapping[str, Any], type_: str) -> tuple[str | None, int | None]:
    """(status, observedGeneration) of a condition in the object's status."""
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond.get("status"), cond.get("observedGeneration")
    return None, None


@dataclass
class FleetView:
    """QPUNodes as the operator sees them: usable (Ready), not yet observed, or not ready."""

    nodes: list[dict[str, Any]] = field(default_factory=list)  # trimmed, Ready=True
    pending: list[str] = field(default_factory=list)
    unready: list[str] = field(default_factory=list)


def read_fleet(kube: Kube) -> FleetView:
    """Every QPUNode; only those Ready for their current generation join the fleet."""
    view = FleetView()
    for body in kube.list_objects(QPUNODES):
        name = body["metadata"]["name"]
        ready, observed = condition_status(body, "Ready")
        if ready is None or observed != body["metadata"].get("generation"):
            view.pending.append(name)
        elif ready == "True":
            view.nodes.append(trimmed(body, ("queueDepth",)))
        else:
            view.unready.append(name)
    return view


def qpunodes(nodes: list[dict[str, Any]]) -> list[QPUNode]:
    """Trimmed QPUNode bodies as models (they were validated by the QPUNode controller)."""
    out = []
    for body in nodes:
        node = parse(body)
        assert isinstance(node, QPUNode)
        out.append(node)
    return out


@dataclass
class PolicyView:
    """The namespace's policies: valid ones (trimmed bodies) and why the others are not."""

    valid: dict[str, dict[str, Any]] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)


def read_policies(kube: Kube, namespace: str) -> PolicyView:
    """Every InvocationPolicy of the namespace, validated."""
    view = PolicyView()
    for body in kube.list_objects(POLICIES, namespace):
        small = trimmed(body)
        name = small["metadata"]["name"]
        try:
            parse(small)
        except (ManifestError, ValidationError) as err:
            view.invalid[name] = str(err)
            continue
        view.valid[name] = small
    return view


def recorded_policy(text: str) -> InvocationPolicy:
    """A worker input's ``policy.json``: the job's policy, or (null) the built-in default."""
    raw = json.loads(text)
    return InvocationPolicy.model_validate(raw if raw is not None
                                           else {"metadata": {"name": "default"}})


def policies(bodies: Mapping[str, dict[str, Any]]) -> dict[str, InvocationPolicy]:
    """Trimmed policy bodies as models, by name."""
    out = {}
    for name, body in bodies.items():
        policy = parse(body)
        assert isinstance(policy, InvocationPolicy)
        out[name] = policy
    return out
