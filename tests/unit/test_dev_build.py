"""`qbackbone dev cluster up` builds missing binaries with the checkout's own scripts."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbackbone.dev import binaries


def _script(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def test_the_bin_dir_is_the_scripts_last_line(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _script(tmp_path, "build-k8s.sh", "echo progress >&2; echo noise; echo /cache/k8s/bin")
    monkeypatch.setattr(binaries, "HACK", tmp_path)
    assert binaries.build_with("build-k8s.sh") == Path("/cache/k8s/bin")


def test_a_failed_or_missing_script_says_so(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    _script(tmp_path, "build-node.sh", "echo /half/built; exit 3")
    monkeypatch.setattr(binaries, "HACK", tmp_path)
    with pytest.raises(binaries.BinariesMissing, match="exit code 3"):
        binaries.build_with("build-node.sh")
    with pytest.raises(binaries.BinariesMissing, match="no source checkout"):
        binaries.build_with("build-prometheus.sh")
