"""Generate CustomResourceDefinitions from the pydantic models (the models are the source)."""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from qbackbone.api.common import GROUP, VERSION
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.qpunode import QPUNode
from qbackbone.api.quantumjob import QuantumJob

_DROP_KEYS = {"title", "additionalProperties", "default", "const", "discriminator"}


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """Inline $refs and turn pydantic's JSON Schema into a structural OpenAPI v3 schema."""
    if isinstance(node, list):
        return [_resolve(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].split("/")[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _resolve({**target, **extra}, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if node.get("x-kubernetes-int-or-string"):
            return {k: v for k, v in rest.items() if k not in _DROP_KEYS}
        if len(options) == 1:
            return _resolve({**options[0], **rest}, defs)
        if options and all(o.get("type") in ("integer", "number") for o in options):
            return {"type": "number", **{k: v for k, v in rest.items() if k not in _DROP_KEYS}}
        # Mixed scalar types (e.g. a rule value that is a number or a word): any value.
        return {"x-kubernetes-preserve-unknown-fields": True,
                **{k: v for k, v in rest.items() if k not in _DROP_KEYS}}
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema 2020-12 has numeric bounds here; OpenAPI v3.0 has a flag.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
            continue
        if key == "properties":
            out[key] = {name: _resolve(sub, defs) for name, sub in value.items()}
        elif key in ("items",):
            out[key] = _resolve(value, defs)
        else:
            out[key] = value
    if "const" in node:
        out["enum"] = [node["const"]]
        out.setdefault("type", "string")
    extra_props = node.get("additionalProperties")
    if isinstance(extra_props, dict):
        out["additionalProperties"] = _resolve(extra_props, defs)
    open_object = "properties" not in out and "additionalProperties" not in out
    if out.get("type") == "object" and open_object:
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def openapi_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural schema of one kind (spec and status; metadata is the API server's)."""
    raw = model.model_json_schema(by_alias=True, mode="serialization")
    defs = raw.get("$defs", {})
    schema = _resolve(raw, defs)
    schema.pop("$defs", None)
    props = schema["properties"]
    props["apiVersion"] = {"type": "string", "description": "qbackbone.io/v1alpha1"}
    props["kind"] = {"type": "string"}
    props["metadata"] = {"type": "object"}
    schema["required"] = [r for r in schema.get("required", []) if r not in ("metadata",)]
    schema.pop("x-kubernetes-preserve-unknown-fields", None)
    return schema


def _condition_column(name: str, condition: str) -> dict[str, str]:
    return {"name": name, "type": "string",
            "jsonPath": f'.status.conditions[?(@.type=="{condition}")].status'}


_AGE = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}

_KINDS: list[dict[str, Any]] = [
    {
        "model": QuantumJob, "plural": "quantumjobs", "singular": "quantumjob",
        "short": ["qj"], "scope": "Namespaced",
        "columns": [
            {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
            {"name": "Path", "type": "string", "jsonPath": ".status.decision.path"},
            {"name": "QPUs", "type": "string", "jsonPath": ".status.result.qpus"},
            # Every observable's value and sigma on one line (a printer column shows only
            # the first match of a list, so the operator writes this summary).
            {"name": "Values", "type": "string", "jsonPath": ".status.result.summary"},
            {"name": "Verified", "type": "boolean", "jsonPath": ".status.verification.passed"},
            {"name": "Objective", "type": "number", "priority": 1,
             "jsonPath": ".status.result.solution.objective"},
            {"name": "Ratio", "type": "number", "priority": 1,
             "jsonPath": ".status.result.solution.approximationRatio"},
            {"name": "Reason", "type": "string", "priority": 1,
             "jsonPath": '.status.conditions[?(@.type=="Failed")].reason'},
            _AGE,
        ],
    },
    {
        "model": QPUNode, "plural": "qpunodes", "singular": "qpunode",
        "short": ["qpu"], "scope": "Cluster",
        "columns": [
            {"name": "Provider", "type": "string", "jsonPath": ".spec.backend.provider"},
            {"name": "Backend", "type": "string", "jsonPath": ".spec.backend.name"},
            {"name": "Qubits", "type": "integer", "jsonPath": ".spec.qubits"},
            _condition_column("Ready", "Ready"),
            {"name": "MaxDepth", "type": "integer", "jsonPath": ".status.derivedMaxDepth"},
            {"name": "Queue", "type": "integer", "jsonPath": ".status.queueDepth"},
            {"name": "Site", "type": "string", "jsonPath": ".spec.site", "priority": 1},
            _AGE,
        ],
    },
    {
        "model": InvocationPolicy, "plural": "invocationpolicies", "singular": "invocationpolicy",
        "short": ["qip"], "scope": "Namespaced",
        "columns": [
            _condition_column("Valid", "Valid"),
            {"name": "Jobs", "type": "integer", "jsonPath": ".status.jobsDecided"},
            {"name": "QuantumShare", "type": "number", "jsonPath": ".status.quantumShare"},
            _AGE,
        ],
    },
]


def build_crds() -> dict[str, dict[str, Any]]:
    """File name -> CRD manifest, for every kind of the API."""
    crds: dict[str, dict[str, Any]] = {}
    for kind in _KINDS:
        model: type[BaseModel] = kind["model"]
        name = model.__name__
        crds[f"{GROUP}_{kind['plural']}.yaml"] = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{kind['plural']}.{GROUP}"},
            "spec": {
                "group": GROUP,
                "scope": kind["scope"],
                "names": {
                    "kind": name, "listKind": f"{name}List", "plural": kind["plural"],
                    "singular": kind["singular"], "shortNames": kind["short"],
                    "categories": ["quantum"],
                },
                "versions": [{
                    "name": VERSION, "served": True, "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": kind["columns"],
                    "schema": {"openAPIV3Schema": openapi_schema(model)},
                }],
            },
        }
    return crds
