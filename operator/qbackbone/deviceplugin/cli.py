"""``qbackbone device-plugin`` / ``python -m qbackbone.deviceplugin``: advertise this node's
QPUs to the kubelet (device-plugin API v1beta1) until SIGTERM or Ctrl-C; SIGHUP re-reads the
QPU list (so does a change of the file)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from qbackbone.deviceplugin.config import ConfigError
from qbackbone.deviceplugin.manager import DEFAULT_PLUGIN_DIR, KUBELET_SOCKET, PluginManager
from qbackbone.deviceplugin.qpunodes import QPUNodeResourceManager, cluster_lister
from qbackbone.deviceplugin.resources import ConfigResourceManager, ResourceManager


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The plugin's options (shared by ``qbackbone device-plugin`` and ``python -m``)."""
    parser.add_argument("--config", type=Path, required=True, metavar="FILE",
                        help="YAML or JSON list of the QPUs this node serves "
                             "({name, provider, backend, credentialsSecretRef})")
    parser.add_argument("--plugin-dir", type=Path, default=DEFAULT_PLUGIN_DIR, metavar="DIR",
                        help="the kubelet's device-plugin directory, where the plugin sockets "
                             "go and the kubelet's socket is (default: %(default)s)")
    parser.add_argument("--kubelet-socket", default=KUBELET_SOCKET, metavar="NAME",
                        help="the kubelet registration socket's name in DIR "
                             "(default: %(default)s)")
    parser.add_argument("--credentials-host-dir", type=Path, default=None, metavar="DIR",
                        help="where cloud-QPU tokens are provisioned on this host "
                             "(DIR/<secret>/<key>); when set, Allocate mounts DIR/<secret> "
                             "read-only and a missing token marks the QPU unhealthy. Default: "
                             "none; the pod spec mounts the Secret itself")
    parser.add_argument("--node-name", default=os.environ.get("NODE_NAME") or None,
                        metavar="NODE",
                        help="this node's name: serve only the QPUs whose `nodes` name it, and "
                             "those without `nodes` (default: $NODE_NAME; unset: only those "
                             "without `nodes`)")
    parser.add_argument("--qpunodes", action="store_true",
                        help="also serve the cluster's QPUNodes that name this node "
                             "(spec.nodeName) or no node (in-cluster service account, or "
                             "$KUBECONFIG; needs list on qpunodes)")
    parser.add_argument("--poll-interval", type=_positive, default=1.0, metavar="SECONDS",
                        help="how often to check the kubelet socket, the QPU list and health "
                             "(default: %(default)s)")
    parser.add_argument("-v", "--verbose", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run the plugin with parsed ``args`` until SIGTERM or SIGINT; 2 if the config is bad."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        files = ConfigResourceManager(args.config, args.credentials_host_dir,
                                      node=args.node_name)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    resources: ResourceManager = files
    if args.qpunodes:
        resources = QPUNodeResourceManager(files, args.node_name, cluster_lister())
    manager = PluginManager(resources, args.plugin_dir, kubelet_socket=args.kubelet_socket,
                            poll_interval=args.poll_interval,
                            credentials_host_dir=args.credentials_host_dir)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        signal.signal(signal.SIGHUP, lambda *_: manager.reload())
    manager.start()
    logging.info("device plugin on node %s serving %s from %s", args.node_name or "(unnamed)",
                 ", ".join(p.resource_name for p in manager.plugins.values()) or "no QPUs",
                 args.plugin_dir)
    try:
        stop.wait()
    finally:
        logging.info("device plugin stopping")
        manager.stop()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``device-plugin`` command to the ``qbackbone`` command line."""
    parser = subparsers.add_parser("device-plugin", help="advertise this node's QPUs to the "
                                   "kubelet (device-plugin API v1beta1)", description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qbackbone.deviceplugin",
                                     description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
