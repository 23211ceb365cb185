"""The image: the wheel its build stage makes from exactly the files the Dockerfile copies
holds everything the chart's commands need (no container engine runs here, so the build's
Python step is run on its own)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.chart.helm import ALL_FEATURES, documents, render

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"


def build_stage_copies() -> list[str]:
    """Sources of the COPY lines of the first (build) stage."""
    build = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.M)[1]
    copies = []
    for line in build.splitlines():
        match = re.match(r"COPY\s+(?!--from)(.+)\s+\S+$", line.strip())
        if match:
            copies += match.group(1).split()
    return copies


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    src = tmp_path_factory.mktemp("src")
    for name in build_stage_copies():
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(path, src / name)
    out = tmp_path_factory.mktemp("wheels")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
                           "--wheel-dir", str(out), str(src)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (built,) = out.glob("qbackbone-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_has_the_operator_worker_and_device_plugin(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    for needed in ("qbackbone/cli/main.py", "controllers/main.py", "controllers/quantumjob.py",
                   "qbackbone/worker/run.py", "qbackbone/deviceplugin/plugin.py",
                   "qbackbone/data/default-fleet.yaml",
                   "qbackbone/core/optimize/data/qaoa-templates.yaml",
                   "qbackbone/deviceplugin/v1beta1/api_pb2.py"):
        assert needed in names, f"{needed} is missing from the image's wheel"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "qbackbone = qbackbone.cli.main:main" in wheel.read(entry_points).decode()


def test_the_chart_runs_the_image_entry_point_with_subcommands_it_has(
        k8s_bin_dir: Path) -> None:
    entrypoint = re.search(r'ENTRYPOINT \["(\w[\w-]*)"\]', DOCKERFILE.read_text())
    assert entrypoint is not None
    docs = documents(render(k8s_bin_dir, "-f", str(ALL_FEATURES)))
    containers = [c for d in docs if d["kind"] in ("Deployment", "DaemonSet")
                  for c in d["spec"]["template"]["spec"]["containers"]]
    assert containers
    for container in containers:
        assert container["command"] == [entrypoint.group(1)]
        subcommand = container["args"][0]
        proc = subprocess.run([str(Path(sys.executable).parent / "qbackbone"), subcommand,
                               "--help"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (subcommand, proc.stderr)
