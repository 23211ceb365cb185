"""``qbackbone operator``: run the kopf controllers (standalone, with a liveness endpoint,
``/metrics`` and text or JSON logs)."""

from __future__ import annotations

import argparse
import logging
import os
import shlex
from typing import TYPE_CHECKING

from qbackbone.k8s.builders import WorkerConfig
from qbackbone.observability.logs import FORMATS

if TYPE_CHECKING:
    from qbackbone.k8s.scheduler_policy import SchedulerPolicyRef

DEFAULT_METRICS_PORT = 8081  # the liveness endpoint has 8080


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``operator`` command to the ``qbackbone`` command line."""
    op = subparsers.add_parser("operator", help="run the Q-Backbone operator (kopf controllers)",
                               description=__doc__)
    op.add_argument("--kubeconfig", default=None,
                    help="kubeconfig (default: in-cluster config, else $KUBECONFIG)")
    op.add_argument("--namespace", action="append", default=[],
                    help="watch only these namespaces (repeatable; default: all)")
    op.add_argument("--liveness", default="http://0.0.0.0:8080/healthz",
                    help="liveness endpoint URL (default: %(default)s; 'none' to disable)")
    op.add_argument("--worker-image", default=WorkerConfig.image,
                    help="image of fragment and classical pods (default: %(default)s)")
    op.add_argument("--worker-image-pull-policy", default=None,
                    choices=("Always", "IfNotPresent", "Never"),
                    help="imagePullPolicy of worker pods (default: Kubernetes' own, IfNotPresent "
                    "unless the tag is latest; Never where images are imported, not pulled)")
    op.add_argument("--worker-command", default="qbackbone",
                    help="command that starts qbackbone in worker pods (default: %(default)s)")
    op.add_argument("--worker-service-account", default=None,
                    help="service account of worker pods (needs ConfigMap get/create)")
    op.add_argument("--worker-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment of worker pods (repeatable)")
    op.add_argument("--qpu-request", choices=("extendedResource", "resourceClaim"),
                    default="extendedResource",
                    help="how fragment pods ask for their QPU: the device plugin's extended "
                    "resource qpu.qbackbone.io/<qpu>, or a DRA ResourceClaim pinned to the QPU's "
                    "device (needs qbackbone dra-driver and its kubelet plugin; docs/dra.md) "
                    "(default: %(default)s)")
    op.add_argument("--seed", type=int, default=None,
                    help="seed simulators and the transpiler (reproducible results)")
    op.add_argument("--scheduler-policy", type=_policy_ref, default="default/default",
                    metavar="[NAMESPACE/]NAME",
                    help="the InvocationPolicy whose spec.scheduler (algorithm, annealing "
                    "fields, timeBudgetSeconds, workBudget, seed) governs the joint plan of "
                    "all waiting jobs, followed as it changes; absent or invalid: the defaults "
                    "(default: %(default)s; a bare NAME is in namespace default)")
    op.add_argument("--admission-lookahead", type=_seconds, default=2.0, metavar="SECONDS",
                    help="admit a waiting job once the joint plan starts it within this many "
                    "seconds (about a fragment pod's start time; default: %(default)s)")
    op.add_argument("--metrics-port", type=int, default=DEFAULT_METRICS_PORT, metavar="PORT",
                    help="serve Prometheus metrics at http://0.0.0.0:PORT/metrics "
                    "(default: %(default)s; 0 to disable)")
    op.add_argument("--log-format", choices=FORMATS, default="text",
                    help="text for people, json for one JSON object per line "
                    "(default: %(default)s)")
    op.add_argument("-v", "--verbose", action="store_true")
    op.set_defaults(func=run)


def _policy_ref(text: str) -> SchedulerPolicyRef:
    """``NAMESPACE/NAME`` or ``NAME`` of the scheduler policy."""
    from qbackbone.k8s.scheduler_policy import SchedulerPolicyRef

    try:
        return SchedulerPolicyRef.parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _seconds(text: str) -> float:
    """A non-negative number of seconds (a negative lookahead would never admit a job)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    """Configure and run kopf until interrupted."""
    import kopf

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    import controllers.metrics
    import controllers.policy
    import controllers.qpunode
    import controllers.quantumjob
    import controllers.setup  # noqa: F401 (importing registers the handlers)
    from qbackbone.observability import current, serve, use_format

    env = dict(item.split("=", 1) for item in args.worker_env)
    worker = WorkerConfig(image=args.worker_image,
                          command=tuple(shlex.split(args.worker_command)),
                          service_account=args.worker_service_account, env=env,
                          pull_policy=args.worker_image_pull_policy,
                          qpu_claims=args.qpu_request == "resourceClaim")
    kopf.configure(verbose=args.verbose)
    use_format(args.log_format)
    for chatty in ("urllib3", "qiskit", "stevedore"):  # per request / per transpiler pass
        logging.getLogger(chatty).setLevel(logging.WARNING)
    metrics = serve(current().registry, args.metrics_port) if args.metrics_port else None
    try:
        kopf.run(standalone=True, clusterwide=not args.namespace, namespaces=args.namespace,
                 liveness_endpoint=None if args.liveness == "none" else args.liveness,
                 memo=kopf.Memo(worker=worker, seed=args.seed,
                                lookahead=args.admission_lookahead,
                                scheduler_policy_ref=args.scheduler_policy))
    finally:
        if metrics is not None:
            metrics.close()
    return 0
