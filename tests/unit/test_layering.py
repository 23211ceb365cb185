"""The domain core and the API never import kopf or kubernetes (DESIGN.md section 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "operator" / "qbackbone"
FORBIDDEN = ("kopf", "kubernetes")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", ["core", "api"])
def test_layer_does_not_import_kubernetes(layer: str) -> None:
    offenders = {
        str(p.relative_to(REPO)): sorted(_imports(p) & set(FORBIDDEN))
        for p in (PACKAGE / layer).rglob("*.py")
        if _imports(p) & set(FORBIDDEN)
    }
    assert offenders == {}


def test_core_does_not_import_upper_layers() -> None:
    for path in (PACKAGE / "core").rglob("*.py"):
        text = path.read_text()
        for upper in ("qbackbone.cli", "qbackbone.k8s", "qbackbone.dev", "controllers"):
            assert f"import {upper}" not in text and f"from {upper}" not in text, path


def test_no_operator_init_shadows_the_standard_library() -> None:
    assert not (REPO / "operator" / "__init__.py").exists()
