"""The device plugin's boundaries: its imports, and the committed proto and stubs."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import subprocess
import sys

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "operator" / "qbackbone" / "deviceplugin"
PROTO = PACKAGE / "v1beta1" / "api.proto"
# k8s.io/kubelet v0.36.3 pkg/apis/deviceplugin/v1beta1/api.proto
UPSTREAM_SHA256 = "b780bfeac99c93c231dc165ce417f4da88481eececa0c65eeb90f5f2e9b5b65b"
FORBIDDEN = ("kopf", "kubernetes", "qbackbone.core", "qbackbone.dev", "qbackbone.cli",
             "qbackbone.api")


# The one exception: --qpunodes lists QPUNodes with the kubernetes client (imported only then).
ALLOWED = {"qpunodes.py": ("kubernetes",)}


def test_plugin_imports_only_grpc_yaml_and_itself() -> None:
    for path in PACKAGE.rglob("*.py"):
        forbidden = [f for f in FORBIDDEN if f not in ALLOWED.get(path.name, ())]
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in forbidden), (
                    f"{path.name} imports {name}")


def test_proto_is_the_upstream_text_with_its_licence() -> None:
    header, _, upstream = PROTO.read_text().partition("// ---- upstream text ----\n")
    assert "SPDX-License-Identifier: Apache-2.0" in header
    assert "The Kubernetes Authors" in header
    assert hashlib.sha256(upstream.encode()).hexdigest() == UPSTREAM_SHA256
    assert "k8s.io/kubelet v0.36.3" in (PACKAGE / "v1beta1" / "NOTICE").read_text()


def _grpc_tools_version() -> str | None:
    try:
        return importlib.metadata.version("grpcio-tools")
    except importlib.metadata.PackageNotFoundError:
        return None


@pytest.mark.skipif(_grpc_tools_version() != "1.81.1",
                    reason="the stub generator is pinned to grpcio-tools 1.81.1, not installed")
def test_committed_stubs_are_what_the_generator_makes() -> None:
    result = subprocess.run(["bash", str(REPO / "hack" / "gen-deviceplugin.sh"), "--check"],
                            env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
