"""What the real-node tests share: skip-or-fail when the host cannot run one, and a control
plane of the module's own that a real node can join (the API server on the node's address
too, so pods reach it through the kubernetes Service)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

from qbackbone.dev import BinariesMissing, ClusterInfo, LocalCluster, find_bin_dir
from qbackbone.dev.realnode import real_node_unavailable
from qbackbone.dev.realnode_host import host_ip


def cannot(reason: str) -> NoReturn:
    """Skip with the reason; a failure under QB_REQUIRE_REAL_NODE=1 (CI as root)."""
    if os.environ.get("QB_REQUIRE_REAL_NODE") == "1":
        pytest.fail(f"QB_REQUIRE_REAL_NODE=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def k8s_binaries() -> Path:
    """The control-plane binaries, or skip/fail."""
    try:
        return find_bin_dir()
    except BinariesMissing as exc:
        cannot(str(exc))


@contextmanager
def real_control_plane(state: Path) -> Iterator[ClusterInfo]:
    """A control plane in ``state`` ready for a real node, or skip/fail with the reason."""
    bins = k8s_binaries()
    reason = real_node_unavailable()
    if reason:
        cannot(f"no real node on this host: {reason}")
    local = LocalCluster(state, bins, tied=True, node_ip=host_ip())
    info = local.start()
    try:
        yield info
    finally:
        local.stop()
