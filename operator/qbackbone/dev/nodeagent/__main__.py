"""``python -m qbackbone.dev.nodeagent``: run the QPU node agent until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from kubernetes import config

from qbackbone.dev.nodeagent.agent import NodeAgent
from qbackbone.dev.nodeagent.config import NodeSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The node agent's options (shared with ``qbackbone dev node-agent``)."""
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"),
                        help="kubeconfig of the cluster (default: $KUBECONFIG)")
    parser.add_argument("--node", dest="nodes", action="append", type=NodeSpec.parse,
                        required=True, metavar="NODE[:QPU,...]",
                        help="register NODE hosting the QPUs listed (default: one QPU named "
                             "like the node); repeatable")
    parser.add_argument("--state-dir", type=Path,
                        default=Path.home() / ".local/state/qbackbone/node-agent",
                        help="where pod sandboxes (working dirs, logs) are kept")
    parser.add_argument("--pod-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for every pod process; repeatable")
    parser.add_argument("--service-account-tokens", action="store_true",
                        help="give each pod's processes $KUBECONFIG with a token of the pod's "
                             "service account (TokenRequest, bound to the pod), as a kubelet "
                             "projects one")
    parser.add_argument("-v", "--verbose", action="store_true")


def run(args: argparse.Namespace) -> int:
    """Run the agent with parsed ``args`` until SIGTERM or SIGINT."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    pod_env = dict(item.split("=", 1) for item in args.pod_env)
    api = config.new_client_from_config(config_file=args.kubeconfig)
    agent = NodeAgent(api, args.nodes, args.state_dir, pod_env,
                      service_account_tokens=args.service_account_tokens)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    agent.start()
    logging.info("node agent serving %s", ", ".join(s.name for s in args.nodes))
    stop.wait()
    logging.info("node agent stopping")
    agent.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qbackbone-node-agent", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
