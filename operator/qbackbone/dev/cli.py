"""``qbackbone dev``: the local cluster (``cluster up|down|status``): the control plane plus a
real node (kubelet, containerd, runc, CNI, kube-proxy) where the host allows it, else the
stand-in node agent; and the node agent itself."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from qbackbone.dev.binaries import BinariesMissing, build_with, find_bin_dir
from qbackbone.dev.cluster import ClusterError, ClusterInfo, LocalCluster, stop_cluster
from qbackbone.dev.image import register_image
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
    up = cluster_sub.add_parser("up", help="start the control plane and a node; print kubeconfig")
    up.add_argument("--bin-dir", type=Path, default=None,
                    help="binaries from hack/build-k8s.sh (default: $QB_K8S_BIN_DIR or cache)")
    up.add_argument("--node", choices=("auto", "real", "agent", "none"), default="auto",
                    help="auto: a real node where the host allows it (root, cgroups, "
                    "hack/build-node.sh's binaries), else the stand-in node agent; real: fail "
                    "rather than fall back; agent: the stand-in only; none: no node")
    up.add_argument("--no-build", action="store_true",
                    help="do not run hack/build-k8s.sh / hack/build-node.sh for missing "
                    "binaries (they build once, then are cached)")
    up.add_argument("--kueue", action="store_true",
                    help="also run kueue (hack/build-kueue.sh, built once) as a host process "
                    "with its CRDs and webhooks, the pod integration and QPU quota "
                    "(docs/kueue.md); down stops it")
    up.add_argument("--kueue-exclude-namespace", action="append", default=[],
                    metavar="NAMESPACE", help="with --kueue: a namespace kueue never manages "
                    "(e.g. the operator's), besides kube-system and kueue-system; repeatable")
    up.add_argument("--kueue-device-class", action="append", default=[], metavar="CLASS",
                    help="with --kueue: another DeviceClass whose devices count as QPUs "
                    "(qpu.qbackbone.io/qpus), e.g. a per-QPU class; repeatable")
    up.add_argument("--qpu-node", action="append", default=[], metavar="NODE[:QPU,...]",
                    help="stand-in node agent: these QPU nodes (several need the agent); a "
                    "real node: its name and the QPUs a device-plugin process serves (the "
                    "chart's DaemonSet does that in an install); repeatable")
    for name, text in (("down", "stop the cluster (logs are kept)"),
                       ("status", "show the cluster's processes"),
                       ("kueue-sync", "restart kueue so that it counts every QPU's DeviceClass "
                        "published now (kueue reads deviceClassMappings at start only)")):
        cluster_sub.add_parser(name, help=text)
    for p in cluster_sub.choices.values():
        p.set_defaults(func=_cluster)
        p.add_argument("--state-dir", type=Path, default=default_state_dir(),
                       help="certificates, kubeconfig, etcd data and logs (default: %(default)s)")

    agent = dev_sub.add_parser("node-agent", help="run the QPU node agent (kubelet stand-in)",
                               description=agent_main.__doc__)
    agent_main.add_arguments(agent)
    agent.set_defaults(func=agent_main.run)

    register_image(dev_sub)


def _cluster(args: argparse.Namespace) -> int:
    state_dir: Path = args.state_dir
    if args.cluster_command == "up":
        return _up(state_dir, args.bin_dir, args.qpu_node, args.node, not args.no_build,
                   kueue=args.kueue, kueue_exclude=tuple(args.kueue_exclude_namespace),
                   kueue_classes=tuple(args.kueue_device_class))
    info = ClusterInfo.load(state_dir)
    if info is None or not info.processes:
        print(f"no cluster recorded in {state_dir}", file=sys.stderr)
        return 0 if args.cluster_command == "down" else 1
    if args.cluster_command == "kueue-sync":
        return _kueue_sync(info)
    if args.cluster_command == "down":
        if any(r.name == "real-node" for r in info.processes):
            from qbackbone.dev.realnode import stop_real_node  # the kubernetes client

            for problem in stop_real_node(info):
                print(f"real node clean-up: {problem}", file=sys.stderr)
        stop_cluster(info)
        print(f"stopped; logs kept in {info.log_dir}", file=sys.stderr)
        return 0
    for record in info.processes:
        state = "running" if record.alive() else "DEAD"
        print(f"{record.name:24} pid {record.pid:<8} {state:8} {record.log}")
    print(f"server {info.server}\nkubeconfig {info.kubeconfig}")
    return 0 if all(r.alive() for r in info.processes) else 1


def _kueue_sync(info: ClusterInfo) -> int:
    """Restart the cluster's kueue with ``qpu.qbackbone.io`` and the per-QPU DeviceClasses
    the DRA publisher keeps now (``dra/classes.py``), so jobs on QPUs added since are counted
    instead of Inadmissible. Pods created during the restart wait for its webhooks."""
    from kubernetes import client, config

    from qbackbone.dev.kueue import KueueError, KueueInfo, start_kueue, stop_kueue
    from qbackbone.dev.kueue_manifests import QPU_DEVICE_CLASS
    from qbackbone.dra.slices import MANAGED_SELECTOR

    running = KueueInfo.load(Path(info.state_dir))
    if running is None:
        print("no kueue recorded for this cluster (qbackbone dev cluster up --kueue)",
              file=sys.stderr)
        return 1
    api = config.new_client_from_config(config_file=info.kubeconfig)
    try:
        found: Any = client.CustomObjectsApi(api).list_cluster_custom_object(
            "resource.k8s.io", "v1", "deviceclasses", label_selector=MANAGED_SELECTOR)
    finally:
        api.close()
    classes = sorted(str(c["metadata"]["name"]) for c in found.get("items", []))
    stop_kueue(info, running)
    try:
        started = start_kueue(info, exclude_namespaces=tuple(running.excluded_namespaces),
                              device_classes=(QPU_DEVICE_CLASS, *classes))
    except KueueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"kueue restarted in {started.started_seconds:.1f}s counting {QPU_DEVICE_CLASS} and "
          f"{len(classes)} per-QPU class(es): {', '.join(classes) or 'none'}", file=sys.stderr)
    return 0


def choose_node(mode: str, qpu_nodes: list[str]) -> tuple[str, str | None]:
    """("real" | "agent" | "none", why not a real node): the real node where ``mode`` allows
    it and the host can run one; several QPU nodes need the stand-in agent."""
    from qbackbone.dev.realnode import real_node_unavailable  # the kubernetes client

    if mode in ("agent", "none"):
        return mode, f"--node {mode}"
    why = ("several nodes (--qpu-node given more than once) need the stand-in node agent"
           if len(qpu_nodes) > 1 else real_node_unavailable())
    if why is None:
        return "real", None
    if mode == "real":
        raise ClusterError(f"no real node: {why}")
    return "agent", why


def ensure_binaries(bin_dir: Path | None, mode: str) -> Path | None:
    """Build what is missing with the checkout's scripts: the control plane, and, where a
    real node may run (root), the node's binaries (QB_NODE_BIN_DIR is set for this run)."""
    if bin_dir is None:
        try:
            find_bin_dir()
        except BinariesMissing:
            bin_dir = build_with("build-k8s.sh")
    if mode in ("auto", "real") and os.geteuid() == 0:
        from qbackbone.dev.realnode import RealNodeError, find_node_bin_dir

        try:
            find_node_bin_dir()
        except RealNodeError:
            os.environ["QB_NODE_BIN_DIR"] = str(build_with("build-node.sh"))
    return bin_dir


def _up(state_dir: Path, bin_dir: Path | None, qpu_nodes: list[str], mode: str = "auto",
        build: bool = True, kueue: bool = False, kueue_exclude: tuple[str, ...] = (),
        kueue_classes: tuple[str, ...] = ()) -> int:
    from qbackbone.dev.agentproc import start_node_agent  # imports the kubernetes client
    from qbackbone.dev.kueue import KueueError, KueueMissing, find_kueue, start_kueue
    from qbackbone.dev.kueue_manifests import QPU_DEVICE_CLASS

    try:
        if build:
            bin_dir = ensure_binaries(bin_dir, mode)
        if kueue:
            try:
                find_kueue()
            except KueueMissing:
                if not build:
                    raise
                os.environ["QB_KUEUE_BIN_DIR"] = str(build_with("build-kueue.sh"))
        node, why = choose_node(mode, qpu_nodes)
        if node == "agent" and why and mode == "auto":
            print(f"note: using the stand-in node agent, not a real node: {why}",
                  file=sys.stderr)
        node_ip = None
        if node == "real":
            from qbackbone.dev.realnode_host import host_ip

            node_ip = host_ip()
        cluster = LocalCluster(state_dir, bin_dir, node_ip=node_ip)
        info = cluster.start()
        try:
            if node == "real":
                _start_real(info, qpu_nodes)
            elif node == "agent" and qpu_nodes:
                start_node_agent(info, qpu_nodes)
            if kueue:
                started = start_kueue(info, exclude_namespaces=kueue_exclude,
                                      device_classes=(QPU_DEVICE_CLASS, *kueue_classes))
                print(f"kueue up in {started.started_seconds:.1f}s, webhooks at "
                      f"{started.webhook_url}; log {started.log}", file=sys.stderr)
        except Exception:
            stop_cluster(info)
            raise
    except (BinariesMissing, ClusterError, KueueMissing, KueueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"logs: {state_dir / 'logs'}", file=sys.stderr)
        return 1
    print(f"cluster up in {info.started_seconds:.1f}s at {info.server}; logs in {info.log_dir}",
          file=sys.stderr)
    print(f"use: export KUBECONFIG={info.kubeconfig}; stop: qbackbone dev cluster down",
          file=sys.stderr)
    print(info.kubeconfig)
    return 0


def _start_real(info: ClusterInfo, qpu_nodes: list[str]) -> None:
    """The real node (named by the first --qpu-node, else the host) and, for its QPUs, a
    device-plugin process; ClusterError when it does not come up."""
    from qbackbone.dev.realnode import (
        QPU_HOST_LABEL,
        RealNodeError,
        start_device_plugin,
        start_real_node,
    )

    name, _, qpus = (qpu_nodes[0] if qpu_nodes else "").partition(":")
    try:
        # Labelled as a QPU host: the chart's device-plugin DaemonSet runs there.
        node = start_real_node(info, name=name or None, labels={QPU_HOST_LABEL: "true"})
        print(f"real node {node.name} ({node.ip}) Ready {node.ready_seconds:.1f}s after its "
              f"kubelet started; kubelet root {node.layout.kubelet_root} (the chart's "
              "draDriver.kubeletPlugin.kubeletRoot)", file=sys.stderr)
        if qpus:
            start_device_plugin(info, node, qpus=[q for q in qpus.split(",") if q])
    except RealNodeError as exc:
        raise ClusterError(str(exc)) from exc
