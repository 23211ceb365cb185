"""API models: wire format, validation messages, durations, CRDs generated from the models."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from qbackbone.api.common import parse_duration
from qbackbone.api.crdgen import build_crds
from qbackbone.api.manifests import ManifestError, load_manifests, parse_document
from qbackbone.api.policy import InvocationPolicySpec
from qbackbone.api.quantumjob import QuantumJob
from tests.conftest import REPO, make_job


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("250us", 250e-6), ("1.5s", 1.5),
    ("PT30S", 30.0), ("PT1M30S", 90.0), (45, 45.0), ("2d", 172800.0), ("-5s", -5.0),
])
def test_durations_parse(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["soon", "", "5 parsecs", "1x", True])
def test_bad_durations_are_rejected_with_examples(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_job_round_trips_through_the_wire_format() -> None:
    job = make_job("OPENQASM 2.0;", ["ZZ"], shots=100, deadline="1m", policyRef={"name": "p"})
    wire = job.to_wire()
    assert wire["spec"]["policyRef"] == {"name": "p"}
    assert wire["spec"]["circuit"]["observables"] == ["ZZ"]
    assert QuantumJob.model_validate(wire) == job


def test_observables_may_sit_at_spec_level_but_not_twice() -> None:
    job = QuantumJob.model_validate({"metadata": {"name": "a"},
                                     "spec": {"circuit": {"qasm": "x"}, "observables": ["Z"]}})
    assert job.spec.circuit.observables == ["Z"]
    with pytest.raises(ValidationError, match="not both"):
        QuantumJob.model_validate({"metadata": {"name": "a"}, "spec": {
            "circuit": {"qasm": "x", "observables": ["Z"]}, "observables": ["Z"]}})


def test_unknown_fields_are_named_in_the_error() -> None:
    doc = {"apiVersion": "qbackbone.io/v1alpha1", "kind": "QuantumJob",
           "metadata": {"name": "a"}, "spec": {"circuit": {"qasm": "x"}, "shotz": 5}}
    with pytest.raises(ManifestError, match=r"spec\.shotz: unknown field"):
        parse_document(doc, "test")


def test_wrong_kind_and_api_version_are_rejected() -> None:
    with pytest.raises(ManifestError, match="kind 'Deployment' is not one of"):
        parse_document({"apiVersion": "apps/v1", "kind": "Deployment"}, "test")
    with pytest.raises(ManifestError, match=r"needs apiVersion qbackbone\.io/v1alpha1"):
        parse_document({"apiVersion": "v1", "kind": "QuantumJob"}, "test")


def test_contradictory_policy_is_rejected() -> None:
    with pytest.raises(ValidationError, match="minQubits"):
        InvocationPolicySpec.model_validate({"features": {"minQubits": 10, "maxQubits": 5}})
    with pytest.raises(ValidationError, match="allowedCutKinds is empty"):
        InvocationPolicySpec.model_validate({"cutting": {"enabled": True, "allowedCutKinds": []}})


def test_every_example_manifest_loads() -> None:
    """Each example directory is run on its own, so each loads on its own."""
    jobs, policies, qpus = [], [], []
    for example in sorted(p for p in (REPO / "examples").iterdir() if p.is_dir()):
        found = load_manifests([example])
        assert not found.skipped, found.skipped
        jobs += found.jobs
        policies += found.policies
        qpus += found.qpus
    assert jobs and policies and qpus
    names = {j.metadata.name for j in jobs}
    assert {"qaoa-ring-6", "ghz-4-noisy", "ising-26-classical", "cat-22-distributed"} <= names


def test_committed_crds_match_the_models() -> None:
    """Fails on drift: run `qbackbone crds` after changing a model."""
    for filename, crd in build_crds().items():
        path = REPO / "crds" / filename
        assert path.exists(), f"{path} missing: run `qbackbone crds`"
        committed = yaml.safe_load(path.read_text())
        assert committed == crd, f"{filename} differs from the models: run `qbackbone crds`"


def _walk(schema: dict, where: str = "") -> list[str]:
    """Places where a schema is not structural (no type and no escape hatch)."""
    problems = []
    if not ({"type", "x-kubernetes-int-or-string", "x-kubernetes-preserve-unknown-fields"}
            & schema.keys()):
        problems.append(where or "(root)")
    for name, sub in schema.get("properties", {}).items():
        problems += _walk(sub, f"{where}.{name}")
    if isinstance(schema.get("items"), dict):
        problems += _walk(schema["items"], f"{where}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += _walk(schema["additionalProperties"], f"{where}{{}}")
    return problems


@pytest.mark.parametrize("filename", sorted(build_crds()))
def test_crds_are_structural_and_documented(filename: str) -> None:
    crd = build_crds()[filename]
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []
    assert "$ref" not in str(schema) and "anyOf" not in yaml.safe_dump(schema).replace(
        "x-kubernetes", "")
    assert version["subresources"] == {"status": {}}
    assert crd["spec"]["names"]["categories"] == ["quantum"]
    assert crd["spec"]["names"]["shortNames"]
    assert schema["properties"]["spec"]["description"]
    assert version["additionalPrinterColumns"]


def test_crd_files_are_in_the_repo() -> None:
    assert sorted(p.name for p in Path(REPO / "crds").glob("*.yaml")) == sorted(build_crds())


def test_numeric_bounds_use_openapi_v3_0_flags() -> None:
    """OpenAPI v3.0 (what the API server reads) has boolean exclusiveMinimum/Maximum."""
    text = yaml.safe_dump(build_crds())
    for line in text.splitlines():
        if "exclusiveMinimum:" in line or "exclusiveMaximum:" in line:
            assert line.strip().endswith("true"), line


def test_yaml_alias_bombs_and_recursive_aliases_are_refused(tmp_path: Path) -> None:
    levels = ", ".join(f"&a{i} [{', '.join([f'*a{i - 1}'] * 4)}]" for i in range(1, 16))
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\n"
                    f"metadata: {{name: b}}\nspec: [&a0 [x, x, x, x], {levels}]\n")
    found = load_manifests([bomb])
    assert found.broken_jobs and "expands to more than" in found.broken_jobs[0].message
    recursive = tmp_path / "recursive.yaml"
    recursive.write_text("a: &x [*x]\n")
    assert "contains it" in load_manifests([recursive]).skipped[0]
