"""``qbackbone dev``: the local control plane (``cluster up|down|status``) and the node agent."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from qbackbone.dev.binaries import BinariesMissing
from qbackbone.dev.cluster import ClusterError, ClusterInfo, LocalCluster, stop_cluster
from qbackbone.dev.nodeagent import __main__ as agent_main


def default_state_dir() -> Path:
    """``$QB_STATE_DIR/dev-cluster`` or ``~/.local/state/qbackbone/dev-cluster``."""
    base = os.environ.get("QB_STATE_DIR")
    return (Path(base) if base else Path.home() / ".local/state/qbackbone") / "dev-cluster"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``dev`` command to the ``qbackbone`` command line."""
    dev = subparsers.add_parser("dev", help="local Kubernetes control plane and QPU node agent",
                                description=__doc__)
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)

    cluster = dev_sub.add_parser("cluster", help="start, stop or inspect the local cluster")
    cluster_sub = cluster.add_subparsers(dest="cluster_command", required=True)
    up = cluster_sub.add_parser("up", help="start etcd and the control plane; print kubeconfig")
    up.add_argument("--bin-dir", type=Path, default=None,
                    help="binaries from hack/build-k8s.sh (default: $QB_K8S_BIN_DIR or cache)")
    up.add_argument("--qpu-node", action="append", default=[], metavar="NODE[:QPU,...]",
                    help="also run the node agent for these QPU nodes; repeatable")
    for name, text in (("down", "stop the cluster (logs are kept)"),
                       ("status", "show the cluster's processes")):
        cluster_sub.add_parser(name, help=text)
    for p in cluster_sub.choices.values():
        p.set_defaults(func=_cluster)
        p.add_argument("--state-dir", type=Path, default=default_state_dir(),
                       help="certificates, kubeconfig, etcd data and logs (default: %(default)s)")

    agent = dev_sub.add_parser("node-agent", help="run the QPU node agent (kubelet stand-in)",
                               description=agent_main.__doc__)
    agent_main.add_arguments(agent)
    agent.set_defaults(func=agent_main.run)


def _cluster(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    if args.cluster_command == "up":
        return _up(state_dir, args.bin_dir, args.qpu_node)
    info = ClusterInfo.load(state_dir)
    if info is None or not info.processes:
        print(f"no cluster recorded in {state_dir}", file=sys.stderr)
        return 0 if args.cluster_command == "down" else 1
    if args.cluster_command == "down":
        stop_cluster(info)
        print(f"stopped; logs kept in {info.log_dir}", file=sys.stderr)
        return 0
    for record in info.processes:
        state = "running" if record.alive() else "DEAD"
        print(f"{record.name:24} pid {record.pid:<8} {state:8} {record.log}")
    print(f"server {info.server}\nkubeconfig {info.kubeconfig}")
    return 0 if all(r.alive() for r in info.processes) else 1


def _up(state_dir: Path, bin_dir: Path | None, qpu_nodes: list[str]) -> int:
    from qbackbone.dev.agentproc import start_node_agent  # imports the kubernetes client

    try:
        cluster = LocalCluster(state_dir, bin_dir)
        info = cluster.start()
        if qpu_nodes:
            try:
                start_node_agent(info, qpu_nodes)
            except Exception:
                stop_cluster(info)
                raise
    except (BinariesMissing, ClusterError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"logs: {state_dir / 'logs'}", file=sys.stderr)
        return 1
    print(f"cluster up in {info.started_seconds:.1f}s at {info.server}; logs in {info.log_dir}",
          file=sys.stderr)
    print(f"use: export KUBECONFIG={info.kubeconfig}; stop: qbackbone dev cluster down",
          file=sys.stderr)
    print(info.kubeconfig)
    return 0
