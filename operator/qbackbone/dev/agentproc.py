"""Run the node agent as a child process of a local cluster and wait for its nodes."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from kubernetes import client, config

from qbackbone.dev import procs
from qbackbone.dev.cluster import ClusterInfo
from qbackbone.dev.nodeagent.config import NodeSpec
from qbackbone.dev.waiting import wait_for


def nodes_ready(api: client.ApiClient, names: Sequence[str]) -> bool:
    """True when every named Node exists with condition Ready=True."""
    core = client.CoreV1Api(api)
    for name in names:
        node = core.read_node(name)
        status = node.status or client.V1NodeStatus()
        conditions = {c.type: c.status for c in status.conditions or []}
        if conditions.get("Ready") != "True":
            return False
    return True


def start_node_agent(
    info: ClusterInfo, nodes: Sequence[str], timeout: float = 30.0,
    pod_env: Sequence[str] = (), tied: bool = False, service_account_tokens: bool = False,
    env: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], procs.ProcessRecord]:
    """Start ``python -m qbackbone.dev.nodeagent`` for ``nodes`` (``NODE[:QPU,...]``), record it
    in the cluster state so ``down`` stops it, and wait until its nodes are Ready.
    ``service_account_tokens``: pods get a kubeconfig with their service account's token.
    ``env``: the agent's environment (default: this process's); pods inherit its ``PATH``."""
    specs = [NodeSpec.parse(n) for n in nodes]
    argv = [sys.executable, "-m", "qbackbone.dev.nodeagent",
            f"--kubeconfig={info.kubeconfig}",
            f"--state-dir={Path(info.state_dir) / 'node-agent'}"]
    argv += [f"--node={n}" for n in nodes] + [f"--pod-env={e}" for e in pod_env]
    if service_account_tokens:
        argv.append("--service-account-tokens")
    # Tied: SIGTERM, so that the agent still stops the pod processes it started.
    proc, record = procs.start("node-agent", argv, info.log_dir, env=env,
                               die_signal=signal.SIGTERM if tied else None)
    info.processes.append(record)
    info.save()
    api = config.new_client_from_config(config_file=info.kubeconfig)

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"node agent exited with {proc.returncode}:\n"
                               f"{procs.tail(record.log)}")
        return nodes_ready(api, [s.name for s in specs])

    try:
        wait_for(ready, timeout, interval=0.2, what="node agent nodes Ready")
    except Exception:
        procs.stop(record, proc)
        raise
    finally:
        api.close()
    return proc, record
