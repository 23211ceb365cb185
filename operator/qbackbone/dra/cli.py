"""``qbackbone dra-driver``: publish every Ready QPUNode as a device of the DRA driver
``qpu.qbackbone.io`` (ResourceSlices per node for hosted QPUs, one pool reachable from every
node for cloud QPUs) and the DeviceClass ``qpu.qbackbone.io``, until SIGTERM or Ctrl-C.
Run one per cluster (it publishes every pool). ``qbackbone dra-driver kubelet-plugin`` is the
node side (one per node: prepare/unprepare, CDI): docs/dra.md."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from qbackbone.dra.publisher import Publisher


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--resync", type=_positive, default=30.0, metavar="SECONDS",
                        help="sync at least this often besides watch events "
                             "(default: %(default)s)")
    parser.add_argument("--no-device-class", dest="device_class", action="store_false",
                        help="do not create or repair the DeviceClass (installed otherwise)")
    parser.add_argument("--cleanup-on-exit", action="store_true",
                        help="delete the published ResourceSlices when stopping (default: "
                             "they stay, so a restart does not withdraw the devices)")
    parser.add_argument("--once", action="store_true",
                        help="sync once and exit (1 when an API call failed)")
    parser.add_argument("--kubeconfig", default=None, metavar="FILE",
                        help="kubeconfig (default: in-cluster service account, else "
                             "$KUBECONFIG or ~/.kube/config)")
    parser.add_argument("-v", "--verbose", action="store_true")


def run(args: argparse.Namespace) -> int:
    from qbackbone.dra.kubeapi import api_client

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        api = api_client(args.kubeconfig)
    except Exception as exc:
        logging.error("no Kubernetes API: %s", exc)
        return 2
    publisher = Publisher(api, resync=args.resync, manage_device_class=args.device_class,
                          cleanup=args.cleanup_on_exit)
    if args.once:
        try:
            result = publisher.sync()
        except Exception as exc:
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            logging.error("sync failed: %s", message)
            return 1
        return 1 if result.errors else 0
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: publisher.stop())
    logging.info("DRA driver qpu.qbackbone.io: publishing QPUNodes (resync %.0f s)",
                 args.resync)
    publisher.run()
    logging.info("DRA driver stopped")
    return 0


def kueue_mappings(args: argparse.Namespace) -> int:
    """Print kueue's ``resources.deviceClassMappings`` for the QPUs published now."""
    import yaml

    from qbackbone.dra.classes import kueue_mappings as mappings
    from qbackbone.dra.kubeapi import api_client

    try:
        publisher = Publisher(api_client(args.kubeconfig), manage_device_class=False)
        devices = publisher.published_devices()
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        logging.error("could not list the QPUNodes: %s", message)
        return 1
    print(yaml.safe_dump({"resources": {"deviceClassMappings": mappings(
        [d.qpunode for d in devices], args.resource)}}, sort_keys=False), end="")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``dra-driver`` command to the ``qbackbone`` command line."""
    parser = subparsers.add_parser("dra-driver", help="publish QPUNodes as DRA devices "
                                   "(ResourceSlices of driver qpu.qbackbone.io)",
                                   description=__doc__)
    add_arguments(parser)
    parser.set_defaults(func=run)
    sub = parser.add_subparsers(dest="dra_command", metavar="{kubelet-plugin,kueue-mappings}")
    from qbackbone.dra import plugin_cli

    plugin = sub.add_parser("kubelet-plugin", help="the node side: register with the kubelet, "
                            "prepare claims (CDI specs)", description=plugin_cli.__doc__)
    plugin_cli.add_arguments(plugin)
    plugin.set_defaults(func=plugin_cli.run)
    mapping = sub.add_parser(
        "kueue-mappings", help="print kueue's deviceClassMappings for the QPUs published now",
        description="Print the resources.deviceClassMappings block of kueue's Configuration "
        "that counts the DeviceClass qpu.qbackbone.io and every published QPU's own class "
        "(what the operator's claims name) as one quota unit each (docs/kueue.md). kueue "
        "reads it at start: re-run and restart kueue when QPUs are added.")
    mapping.add_argument("--resource", default="qpu.qbackbone.io/qpus",
                         help="the quota resource name (default: %(default)s)")
    mapping.add_argument("--kubeconfig", default=None, metavar="FILE")
    mapping.set_defaults(func=kueue_mappings)
