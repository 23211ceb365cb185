"""Render the chart with the cached helm (hack/build-k8s.sh) and read its manifests."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "qbackbone"
ALL_FEATURES = CHART / "ci" / "all-features-values.yaml"


def helm(bin_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run helm; the caller checks the return code."""
    return subprocess.run([str(bin_dir / "helm"), *args], capture_output=True, text=True,
                          timeout=60, check=False)


def render(bin_dir: Path, *args: str, namespace: str = "qbackbone-system") -> str:
    """``helm template`` output (fails the test with helm's message when rendering fails)."""
    proc = helm(bin_dir, "template", "qbackbone", str(CHART), "--namespace", namespace, *args)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def documents(text: str) -> list[dict[str, Any]]:
    """The non-empty YAML documents of a rendered stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]
