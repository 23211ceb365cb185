"""``qbackbone dev cluster up|down`` as a person uses it: kubectl works, nothing is left."""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

import pytest

from qbackbone.dev.cli import register

pytestmark = pytest.mark.cluster


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="qbackbone")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def running(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


@pytest.mark.parametrize("node", ["agent", "auto"])
def test_cli_up_kubectl_down_leaves_no_process(
        k8s_bin_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], node: str) -> None:
    """``--node agent``: the stand-in; ``auto``: the real node wherever this host allows one
    (required under QB_REQUIRE_REAL_NODE=1), its QPU served by a device-plugin process."""
    from qbackbone.dev.cluster import ClusterInfo
    from qbackbone.dev.realnode import real_node_unavailable

    real = node == "auto" and real_node_unavailable() is None
    if node == "auto" and not real and os.environ.get("QB_REQUIRE_REAL_NODE") == "1":
        pytest.fail(f"QB_REQUIRE_REAL_NODE=1 but {real_node_unavailable()}")
    state = tmp_path / "state"
    assert run_cli("dev", "cluster", "up", "--state-dir", str(state), "--node", node,
                   "--qpu-node", "cli-host:cli-qpu") == 0
    kubeconfig = capsys.readouterr().out.strip().splitlines()[-1]
    info = ClusterInfo.load(state)
    assert info is not None
    pids = [p.pid for p in info.processes]
    try:
        nodes = {"real-node", "device-plugin"} if real else {"node-agent"}
        assert {p.name for p in info.processes} == {
            "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", *nodes}
        out = subprocess.run([str(k8s_bin_dir / "kubectl"), "--kubeconfig", kubeconfig,
                              "get", "node", "cli-host", "-o",
                              "jsonpath={.status.allocatable.qpu\\.qbackbone\\.io/cli-qpu}"
                              "{.status.nodeInfo.containerRuntimeVersion}"],
                             capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("1")
        assert ("containerd://" in out.stdout) == real, out.stdout
        assert run_cli("dev", "cluster", "status", "--state-dir", str(state)) == 0
    finally:
        assert run_cli("dev", "cluster", "down", "--state-dir", str(state)) == 0
    assert running(pids) == []
    assert (state / "logs" / "kube-apiserver.log").stat().st_size > 0
    if real:
        assert not list((state / "real-node").glob("containerd/state/*"))
