"""Load QuantumJob, QPUNode and InvocationPolicy manifests from YAML files or directories.

Every file is untrusted: its size is checked before it is read, text must be UTF-8, YAML
that nests too deeply or holds numbers too long to convert is refused with the file named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from qbackbone.api.common import API_VERSION
from qbackbone.api.conditions import Reason
from qbackbone.api.policy import InvocationPolicy
from qbackbone.api.qpunode import QPUNode
from qbackbone.api.quantumjob import QuantumJob

KINDS: dict[str, type[QuantumJob] | type[QPUNode] | type[InvocationPolicy]] = {
    "QuantumJob": QuantumJob,
    "QPUNode": QPUNode,
    "InvocationPolicy": InvocationPolicy,
}


MAX_MANIFEST_BYTES = 16 * 1024 * 1024
# YAML aliases share nodes: twelve levels of four aliases are 500 bytes and 4^12 nodes once
# anything walks them. Documents are measured as expanded before they are constructed.
MAX_DOCUMENT_NODES = 2_000_000
_JOB_KIND = re.compile(r"^kind:\s*['\"]?QuantumJob['\"]?\s*$", re.MULTILINE)
_FLEET_KIND = re.compile(r"^kind:\s*['\"]?(QPUNode|InvocationPolicy)['\"]?\s*$", re.MULTILINE)
_NAME = re.compile(r"^\s+name:\s*['\"]?([a-z0-9][-a-z0-9.]{0,62})['\"]?\s*$", re.MULTILINE)
# A validation error only in these fields has a more precise reason than InvalidManifest.
_FIELD_REASONS = {"deadline": Reason.INVALID_DEADLINE, "shots": Reason.INVALID_SHOTS,
                  "precision": Reason.INVALID_SHOTS}


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expanded_size(root: yaml.Node) -> None:
    """Count a document's nodes as they would be once aliases are expanded (each shared node
    counted once per use, computed once); refuse recursive aliases and oversized documents."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        kids = _children(node)
        if not children_done:
            on_path.add(id(node))
            stack.append((node, True))
            for kid in kids:
                if id(kid) in on_path:
                    raise yaml.YAMLError("an alias refers to a node that contains it")
                if id(kid) not in sizes:
                    stack.append((kid, False))
            continue
        on_path.discard(id(node))
        sizes[id(node)] = 1 + sum(sizes[id(kid)] for kid in kids)
        if sizes[id(node)] > MAX_DOCUMENT_NODES:
            raise yaml.YAMLError(f"the document expands to more than {MAX_DOCUMENT_NODES} "
                                 "values (aliases counted where they are used)")


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that measures each document before constructing it."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_expanded_size(node)
        return super().construct_document(node)


class ManifestError(ValueError):
    """A manifest that cannot be used; the message says where and why."""

    def __init__(self, message: str, reason: Reason = Reason.INVALID_MANIFEST) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class BrokenJob:
    """A QuantumJob document that does not validate: it fails alone, the others run."""

    name: str
    namespace: str | None
    reason: Reason
    message: str


@dataclass
class ManifestSet:
    """Everything found in the given files, by kind."""

    jobs: list[QuantumJob] = field(default_factory=list)
    qpus: list[QPUNode] = field(default_factory=list)
    policies: list[InvocationPolicy] = field(default_factory=list)
    broken_jobs: list[BrokenJob] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # unusable documents of no known kind
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
    for item in err.errors()[:10]:
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            last = str(item["loc"][-1]) if item["loc"] else ""
            camel = to_camel(last)
            msg = (f"unknown field (the API spells it {camel!r})" if camel != last
                   else "unknown field")
        lines.append(f"{where}: {msg}")
    if len(err.errors()) > 10:
        lines.append(f"and {len(err.errors()) - 10} more errors")
    return "; ".join(lines)


def _reason_for(err: ValidationError) -> Reason:
    fields = {str(item["loc"][1]) if len(item["loc"]) > 1 and item["loc"][0] == "spec" else ""
              for item in err.errors()}
    reasons = {_FIELD_REASONS.get(f) for f in fields}
    only = reasons.pop() if len(reasons) == 1 else None
    return only or Reason.INVALID_MANIFEST


def parse_document(doc: Any, source: str) -> QuantumJob | QPUNode | InvocationPolicy:
    """One YAML document to its typed kind, or a ManifestError naming the source."""
    if not isinstance(doc, dict):
        raise ManifestError(f"{source}: expected a Kubernetes object (a mapping), got "
                            f"{type(doc).__name__}")
    kind = doc.get("kind")
    if not isinstance(kind, str) or kind not in KINDS:
        raise ManifestError(
            f"{source}: kind {_shown(kind)} is not one of {', '.join(KINDS)} "
            f"(apiVersion {API_VERSION})"
        )
    if doc.get("apiVersion") != API_VERSION:
        raise ManifestError(f"{source}: {kind} needs apiVersion {API_VERSION}, got "
                            f"{_shown(doc.get('apiVersion'))}")
    if not isinstance(doc.get("metadata"), dict):
        raise ManifestError(f"{source}: {kind}: metadata must be a mapping with a name")
    name = _document_name(doc) or "?"
    try:
        # By alias only: 'policy_ref' is a typo of 'policyRef', as the API server would say.
        return KINDS[kind].model_validate(doc, by_alias=True, by_name=False)
    except ValidationError as err:
        raise ManifestError(f"{source}: {kind} {name!r}: {_format_validation_error(err)}",
                            _reason_for(err)) from None
    except RecursionError:
        raise ManifestError(f"{source}: {kind} {name!r}: nested too deeply") from None


def _shown(value: Any) -> str:
    """A value for a message: a short string as written, anything else by its type."""
    return repr(value[:60]) if isinstance(value, str) else f"(a {type(value).__name__})"


def _document_name(doc: dict[str, Any]) -> str | None:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name[:253] if isinstance(name, str) else None


def _document_namespace(doc: dict[str, Any]) -> str | None:
    meta = doc.get("metadata")
    namespace = meta.get("namespace") if isinstance(meta, dict) else None
    return namespace if isinstance(namespace, str) else None


def _is_config_map(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("kind") == "ConfigMap" and doc.get(
        "apiVersion") == "v1"


def _add_config_map(found: ManifestSet, doc: dict[str, Any], source: str) -> None:
    """Keep a ConfigMap's string data (problem jobs read topologies from them)."""
    name = _document_name(doc)
    data = doc.get("data") or {}
    if not isinstance(name, str) or not isinstance(data, dict) or not all(
            isinstance(v, str) for v in data.values()):
        raise ManifestError(f"{source}: a ConfigMap needs metadata.name and string data")
    if name in found.config_maps:
        raise ManifestError(f"{source}: a second ConfigMap named {name!r}; names must be unique")
    found.config_maps[name] = {str(k): v for k, v in data.items()}


def _yaml_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if not path.exists():
        raise ManifestError(f"{path}: no such file or directory")
    return [path]


def _read_head(file: Path) -> bytes:
    """The file's bytes, at most one past the size limit (so an oversized file is never read
    whole)."""
    with file.open("rb") as handle:
        return handle.read(MAX_MANIFEST_BYTES + 1)


def _parse_documents(file: Path, raw: bytes) -> list[Any]:
    """The YAML documents of one file, or a ManifestError naming the file and the problem."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{file}: {file.stat().st_size} bytes; manifests are limited to "
                            f"{MAX_MANIFEST_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ManifestError(f"{file}: not UTF-8 text (byte {err.start})") from None
    try:
        return [d for d in yaml.load_all(text, Loader=_BoundedLoader) if d is not None]
    except yaml.YAMLError as err:
        raise ManifestError(f"{file}: not valid YAML: {str(err)[:500]}") from None
    except RecursionError:
        raise ManifestError(f"{file}: YAML nested too deeply") from None
    except ValueError as err:  # e.g. an integer of more than 4300 digits
        raise ManifestError(f"{file}: a value cannot be read: {str(err)[:200]}") from None


def _unreadable_file(found: ManifestSet, file: Path, raw: bytes, error: ManifestError) -> None:
    """A file that cannot be read fails as the job it says it is, or is skipped with the
    error; one that says it holds QPUNodes or policies stops the run (see _add_document)."""
    head = raw[:MAX_MANIFEST_BYTES].decode("utf-8", errors="replace")
    if _FLEET_KIND.search(head):
        raise error
    if _JOB_KIND.search(head):
        name = _NAME.search(head)
        found.broken_jobs.append(BrokenJob(
            name.group(1) if name else file.stem.lower()[:63] or "unnamed", None,
            Reason.INVALID_MANIFEST, str(error)))
        return
    found.skipped.append(str(error))


def _add_document(found: ManifestSet, doc: Any, source: str, index: int) -> None:
    try:
        if _is_config_map(doc):
            _add_config_map(found, doc, source)
            return
        obj = parse_document(doc, source)
    except ManifestError as err:
        # A broken job becomes a failed job; a broken QPU or policy stops the run, since
        # every job would be decided on a fleet or policy nobody meant; anything else is
        # skipped with its error (and the run's exit code says so).
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind == "QuantumJob":
            name = _document_name(doc) or f"document-{index + 1}"
            found.broken_jobs.append(BrokenJob(name, _document_namespace(doc), err.reason,
                                               str(err)))
            return
        if kind in ("QPUNode", "InvocationPolicy"):
            raise
        found.skipped.append(str(err))
        return
    if isinstance(obj, QuantumJob):
        key = (obj.metadata.namespace, obj.metadata.name)
        if any((j.metadata.namespace, j.metadata.name) == key for j in found.jobs):
            found.broken_jobs.append(BrokenJob(
                obj.metadata.name, obj.metadata.namespace, Reason.INVALID_MANIFEST,
                f"{source}: a second QuantumJob named {obj.metadata.name!r}; names must be "
                "unique (the first one runs)"))
            return
        found.jobs.append(obj)
    elif isinstance(obj, QPUNode):
        if any(q.metadata.name == obj.metadata.name for q in found.qpus):
            raise ManifestError(f"{source}: a second QPUNode named {obj.metadata.name!r}; "
                                "names must be unique")
        found.qpus.append(obj)
    else:
        if any(p.metadata.name == obj.metadata.name for p in found.policies):
            raise ManifestError(f"{source}: a second InvocationPolicy named "
                                f"{obj.metadata.name!r}; names must be unique")
        found.policies.append(obj)


def load_manifests(paths: list[Path]) -> ManifestSet:
    """Read every document of every file (directories recursively), typed and validated."""
    found = ManifestSet()
    for root in paths:
        for file in _yaml_files(root):
            raw = _read_head(file)
            try:
                documents = _parse_documents(file, raw)
            except ManifestError as err:
                _unreadable_file(found, file, raw, err)
                continue
            for index, doc in enumerate(documents):
                _add_document(found, doc, f"{file} (document {index + 1})", index)
    return found
