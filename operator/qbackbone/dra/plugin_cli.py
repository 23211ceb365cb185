"""``qbackbone dra-driver kubelet-plugin``: the node side of the DRA driver ``qpu.qbackbone.io``.
Run one per node (the chart's DaemonSet). It registers with the kubelet, and when a pod whose
claim was allocated one of the driver's devices is to start on the node, writes a CDI spec
giving the container its QPU (the device plugin's environment and credential mounts) and
returns the CDI device IDs; the spec is removed when the claim is unprepared. See docs/dra.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from qbackbone.deviceplugin.config import QPU
from qbackbone.dra.claims import ClaimManager
from qbackbone.dra.fake import FakeQPUs
from qbackbone.dra.kubeletplugin import KubeletPlugin, Paths
from qbackbone.dra.prepare import Resolver, resolve_from_qpunodes

log = logging.getLogger(__name__)
SLICE_RESYNC = 30.0  # seconds between checks of the fake mode's slice


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubelet-root", type=Path, default=Path("/var/lib/kubelet"),
                        help="the kubelet's root directory (default: %(default)s)")
    parser.add_argument("--node-name", default=os.environ.get("NODE_NAME"),
                        help="this node's name (default: $NODE_NAME)")
    parser.add_argument("--cdi-dir", type=Path, default=Path("/var/run/cdi"),
                        help="where CDI specs are written, one of the runtime's CDI spec "
                             "directories (default: %(default)s)")
    parser.add_argument("--credentials-host-dir", type=Path, default=None, metavar="DIR",
                        help="host directory of per-Secret credential directories, mounted "
                             "read-only into containers (as the device plugin's option)")
    parser.add_argument("--healthcheck-port", type=int, default=None, metavar="PORT",
                        help="serve grpc.health.v1 on this TCP port (0: any free port; "
                             "default: only on the DRA socket)")
    parser.add_argument("--healthcheck-address", default="0.0.0.0",
                        help="address of the health port (default: %(default)s)")
    parser.add_argument("--fake-qpus", type=int, default=0, metavar="N",
                        help="fake resource manager: N ideal simulators of this node, pool "
                             "<node>/fake, resolved without QPUNodes (tests)")
    parser.add_argument("--no-fake-slice", dest="fake_slice", action="store_false",
                        help="with --fake-qpus: do not publish their node-local ResourceSlice")
    parser.add_argument("--kubeconfig", default=None, metavar="FILE",
                        help="kubeconfig (default: in-cluster service account, else "
                             "$KUBECONFIG or ~/.kube/config)")
    parser.add_argument("-v", "--verbose", action="store_true")


class QPUNodeLister(Protocol):
    def list_qpunodes(self) -> list[dict[str, Any]]: ...


def resolver_factory(api: QPUNodeLister, fake: FakeQPUs | None) -> Callable[[], Resolver]:
    """A resolver per NodePrepareResources call: fake devices locally, others from one list of
    the QPUNodes (made only when a non-fake device is asked for)."""

    def factory() -> Resolver:
        listed: list[dict[str, Any]] | None = None

        def resolve(pool: str, device: str) -> QPU:
            nonlocal listed
            if fake is not None and pool == fake.pool:
                return fake.resolve(pool, device)
            if listed is None:
                listed = api.list_qpunodes()
            return resolve_from_qpunodes(listed, pool, device)

        return resolve

    return factory


def _every(seconds: float, task: Callable[[], None]) -> Callable[[], None]:
    """``task`` at most every ``seconds`` (again at the next tick after a failure)."""
    last = [float("-inf")]

    def tick() -> None:
        if time.monotonic() - last[0] >= seconds:
            task()
            last[0] = time.monotonic()

    return tick


def run(args: argparse.Namespace) -> int:
    from qbackbone.dra.kubeapi import PluginAPI, api_client

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.node_name:
        logging.error("the node name is needed: --node-name or $NODE_NAME")
        return 2
    if args.fake_qpus < 0:
        logging.error("--fake-qpus must be at least 0")
        return 2
    try:
        api = PluginAPI(api_client(args.kubeconfig))
    except Exception as exc:
        logging.error("no Kubernetes API: %s", exc)
        return 2
    paths = Paths(args.kubelet_root)
    fake = FakeQPUs(args.node_name, args.fake_qpus) if args.fake_qpus else None
    claims = ClaimManager(api, resolver_factory(api, fake), args.cdi_dir, paths.checkpoint,
                          args.credentials_host_dir)
    tasks: tuple[Callable[[], None], ...] = ()
    if fake is not None and args.fake_slice:
        fake_slice = fake.resource_slice()
        tasks = (_every(SLICE_RESYNC, lambda: api.apply_slice(fake_slice)),)
    plugin = KubeletPlugin(paths, claims, health_port=args.healthcheck_port,
                           health_address=args.healthcheck_address, tasks=tasks)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    try:
        plugin.start()
    except OSError as exc:
        logging.error("cannot serve: %s", exc)
        plugin.stop()
        return 1
    logging.info("kubelet plugin of qpu.qbackbone.io on node %s (kubelet root %s, CDI %s%s)",
                 args.node_name, args.kubelet_root, args.cdi_dir,
                 f", {args.fake_qpus} fake QPUs" if fake else "")
    while not stop.wait(1.0):
        pass
    plugin.stop()
    if fake is not None and args.fake_slice:
        try:
            api.delete_slice(fake.slice_name())
        except Exception as exc:
            logging.error("could not delete ResourceSlice %s: %s", fake.slice_name(), exc)
    return 0
