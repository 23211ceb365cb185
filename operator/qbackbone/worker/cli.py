"""``qbackbone worker``: the entry point of fragment and classical pods."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from qbackbone.k8s.builders import INPUT_ENV, NAMESPACE_ENV

_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
TERMINATION_ENV = "QBACKBONE_TERMINATION_MESSAGE_PATH"
TERMINATION_PATH = Path("/dev/termination-log")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``worker`` command to the ``qbackbone`` command line."""
    worker = subparsers.add_parser("worker", help="run one fragment (or the classical fallback) "
                                   "from its input ConfigMap; used by pods", description=__doc__)
    worker.add_argument("--input", default=os.environ.get(INPUT_ENV),
                        help=f"input ConfigMap name (default: ${INPUT_ENV})")
    worker.add_argument("--namespace", default=None,
                        help=f"namespace (default: ${NAMESPACE_ENV} or the pod's own)")
    worker.add_argument("--kubeconfig", default=None,
                        help="kubeconfig (default: in-cluster config, else $KUBECONFIG)")
    worker.set_defaults(func=run)


def _namespace(given: str | None) -> str | None:
    if given:
        return given
    if os.environ.get(NAMESPACE_ENV):
        return os.environ[NAMESPACE_ENV]
    return _SA_NAMESPACE.read_text().strip() if _SA_NAMESPACE.exists() else None


def _termination_message(text: str) -> None:
    """Where the kubelet (or the dev node agent) reads a failed container's message."""
    path = Path(os.environ.get(TERMINATION_ENV) or TERMINATION_PATH)
    with contextlib.suppress(OSError):
        path.write_text(text[-4000:])


def run(args: argparse.Namespace) -> int:
    """Run the input's work; exit 1 with a termination message when it fails."""
    from qbackbone.k8s.kube import Kube, load_api_client
    from qbackbone.worker.run import run_input

    namespace = _namespace(args.namespace)
    if not args.input or not namespace:
        print("error: give --input and --namespace (or run in a pod)", file=sys.stderr)
        return 2
    try:
        with load_api_client(args.kubeconfig) as api:
            print(run_input(Kube(api), namespace, args.input), file=sys.stderr)
    except Exception as err:  # report any failure as the pod's termination message
        message = f"{type(err).__name__}: {err}"
        print(f"error: {message}", file=sys.stderr)
        _termination_message(message)
        return 1
    return 0
