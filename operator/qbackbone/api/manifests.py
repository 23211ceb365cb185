"""Load QuantumJob, QPUNode and InvocationPolicy manifests from YAML files or directories."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from qbackbone.api.common import API_VERSION
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.qpunode import QPUNode
from qbackbone.api.quantumjob import QuantumJob

KINDS: dict[str, type[QuantumJob] | type[QPUNode] | type[InvocationPolicy]] = {
    "QuantumJob": QuantumJob,
    "QPUNode": QPUNode,
    "InvocationPolicy": InvocationPolicy,
}


class ManifestError(ValueError):
    """A manifest that cannot be used; the message says where and why."""


@dataclass
class ManifestSet:
    """Everything found in the given files, by kind."""

    jobs: list[QuantumJob] = field(default_factory=list)
    qpus: list[QPUNode] = field(default_factory=list)
    policies: list[InvocationPolicy] = field(default_factory=list)
    broken_jobs: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> data

    def read_config_map(self, name: str, key: str) -> str:
        """A ConfigMap value, as problem jobs reference them; KeyError names what is missing."""
        if name not in self.config_maps:
            known = ", ".join(sorted(self.config_maps)) or "none"
            raise KeyError(f"ConfigMap {name!r} is not among the manifests (known: {known})")
        data = self.config_maps[name]
        if key not in data:
            raise KeyError(f"ConfigMap {name!r} has no key {key!r} (keys: "
                           f"{', '.join(sorted(data)) or 'none'})")
        return data[key]


def _format_validation_error(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown field"
        lines.append(f"{where}: {msg}")
    return "; ".join(lines)


def parse_document(doc: Any, source: str) -> QuantumJob | QPUNode | InvocationPolicy:
    """One YAML document to its typed kind, or a ManifestError naming the source."""
    if not isinstance(doc, dict):
        raise ManifestError(f"{source}: expected a Kubernetes object (a mapping), got "
                            f"{type(doc).__name__}")
    kind = doc.get("kind")
    if kind not in KINDS:
        raise ManifestError(
            f"{source}: kind {kind!r} is not one of {', '.join(KINDS)} "
            f"(apiVersion {API_VERSION})"
        )
    if doc.get("apiVersion") != API_VERSION:
        raise ManifestError(f"{source}: {kind} needs apiVersion {API_VERSION}, got "
                            f"{doc.get('apiVersion')!r}")
    name = (doc.get("metadata") or {}).get("name", "?")
    try:
        return KINDS[kind].model_validate(doc)
    except ValidationError as err:
        raise ManifestError(f"{source}: {kind} {name!r}: {_format_validation_error(err)}") from None


def _is_config_map(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == "ConfigMap" and doc.get(
        "apiVersion") == "v1"


def _add_config_map(found: ManifestSet, doc: dict[str, Any], source: str) -> None:
    """Keep a ConfigMap's string data (problem jobs read topologies from them)."""
    name = (doc.get("metadata") or {}).get("name")
    data = doc.get("data") or {}
    if not isinstance(name, str) or not isinstance(data, dict) or not all(
            isinstance(v, str) for v in data.values()):
        raise ManifestError(f"{source}: a ConfigMap needs metadata.name and string data")
    found.config_maps[name] = {str(k): v for k, v in data.items()}


def _yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if not path.exists():
        raise ManifestError(f"{path}: no such file or directory")
    return [path]


def load_manifests(paths: list[Path]) -> ManifestSet:
    """Read every document of every file (directories recursively), typed and validated."""
    found = ManifestSet()
    for root in paths:
        for file in _yaml_files(root):
            try:
                documents = list(yaml.safe_load_all(file.read_text()))
            except yaml.YAMLError as err:
                raise ManifestError(f"{file}: not valid YAML: {err}") from None
            for index, doc in enumerate(d for d in documents if d is not None):
                if _is_config_map(doc):
                    _add_config_map(found, doc, f"{file} (document {index + 1})")
                    continue
                try:
                    obj = parse_document(doc, f"{file} (document {index + 1})")
                except ManifestError as err:
                    # A broken job becomes a failed job; a broken QPU or policy stops the run,
                    # since every job would be decided on a fleet or policy nobody meant.
                    if isinstance(doc, dict) and doc.get("kind") == "QuantumJob":
                        name = str((doc.get("metadata") or {}).get("name", f"document-{index}"))
                        found.broken_jobs.append((name, str(err)))
                        continue
                    raise
                if isinstance(obj, QuantumJob):
                    found.jobs.append(obj)
                elif isinstance(obj, QPUNode):
                    found.qpus.append(obj)
                else:
                    found.policies.append(obj)
    return found
