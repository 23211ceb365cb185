"""Layering: core and api never import kopf or kubernetes (DESIGN.md section 1); core/pipeline
imports top-down, with no cycle (issue 15)."""

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


PIPELINE = "qbackbone.core.pipeline"


def _pipeline_imports(path: Path, modules: set[str]) -> set[str]:
    """The core/pipeline modules this one imports anywhere (functions, TYPE_CHECKING too)."""
    package = PIPELINE if path.name == "__init__.py" else f"{PIPELINE}.{path.stem}"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                parent = (package if path.name == "__init__.py" else PIPELINE).split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # `from pkg import name` may import the submodule pkg.name
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        for target in targets:
            if target in modules or target == PIPELINE:
                found.add(target)
    found.discard(package)
    # `from qbackbone.core.pipeline.x import y` loads the package __init__ implicitly; that
    # is how every package works, so only an explicit import of the package counts.
    return found


def test_pipeline_imports_are_acyclic() -> None:
    """core/pipeline reads top-down (issue 15): no module imports another in a cycle."""
    files = {
        (PIPELINE if p.name == "__init__.py" else f"{PIPELINE}.{p.stem}"): p
        for p in (PACKAGE / "core" / "pipeline").glob("*.py")
    }
    modules = set(files)
    graph = {name: _pipeline_imports(path, modules) for name, path in files.items()}
    state: dict[str, str] = {}  # "open" while on the stack, "done" after

    def visit(name: str, stack: list[str]) -> None:
        state[name] = "open"
        for nxt in sorted(graph[name]):
            if state.get(nxt) == "open":
                cycle = [*stack[stack.index(nxt):], nxt]
                pytest.fail("import cycle in core/pipeline: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*stack, nxt])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_pipeline_paths_sit_above_finishing() -> None:
    """Shared state, deciding and finishing never import an execution path."""
    paths = {f"{PIPELINE}.{m}" for m in ("run", "single", "distributed", "classical",
                                          "optimize", "joint")}
    root = PACKAGE / "core" / "pipeline"
    modules = {f"{PIPELINE}.{p.stem}" for p in root.glob("*.py")} | {PIPELINE}
    for shared in ("jobrun", "finish", "decide", "reduce", "assess", "progress"):
        imported = _pipeline_imports(root / f"{shared}.py", modules)
        assert not imported & (paths | {PIPELINE}), (shared, sorted(imported))
