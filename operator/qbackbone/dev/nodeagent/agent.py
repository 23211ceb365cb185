"""The node agent: registers its Nodes, keeps them Ready, runs the pods bound to them."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from qbackbone.dev.nodeagent.config import NodeSpec, qpu_resource
from qbackbone.dev.nodeagent.node import NodeHeartbeat
from qbackbone.dev.nodeagent.podenv import ConfigError, container_qpus, decode_secret
from qbackbone.dev.nodeagent.podstatus import pod_status
from qbackbone.dev.nodeagent.runner import PodRunner
from qbackbone.dev.nodeagent.timefmt import now
from qbackbone.dev.tokens import service_account_kubeconfig

log = logging.getLogger(__name__)

_STRATEGIC = "application/strategic-merge-patch+json"
# Passed from the agent's own environment to every pod process (an image would set these).
PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV", "PYTHONPATH")


class NodeAgent:
    """Serves ``specs`` against the API server reached through ``api``."""

    def __init__(self, api: client.ApiClient, specs: list[NodeSpec], state_dir: Path,
                 pod_env: dict[str, str] | None = None, lease_interval: float = 10.0,
                 status_interval: float = 60.0, watch_timeout: int = 5,
                 service_account_tokens: bool = False) -> None:
        """``service_account_tokens``: give each pod's processes a kubeconfig with a token of
        the pod's service account (TokenRequest, bound to the pod) in ``$KUBECONFIG``, as the
        kubelet projects one; otherwise they get only ``pod_env``."""
        self.api = api
        self.service_account_tokens = service_account_tokens
        self.core = client.CoreV1Api(api)
        self.specs = {s.name: s for s in specs}
        self.sandbox_root = state_dir / "pods"
        self.pod_env = dict(pod_env or {})
        self.lease_interval, self.status_interval = lease_interval, status_interval
        self.watch_timeout = watch_timeout
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._runners: dict[str, PodRunner] = {}
        self._deleting: set[str] = set()
        self._threads: list[threading.Thread] = []
        self.base_env = {k: os.environ[k] for k in PASSED_ENV if k in os.environ}

    # -- top level -------------------------------------------------------------------------
    def start(self) -> None:
        """Register the nodes and start heartbeat and pod-watch threads."""
        version = client.VersionApi(self.api).get_code().git_version
        beats = [NodeHeartbeat(self.api, spec, version) for spec in self.specs.values()]
        for beat in beats:
            beat.register()
        self._spawn(self._heartbeat, beats)
        for name in self.specs:
            self._spawn(self._watch_pods, name)

    def stop(self, grace: float = 5.0) -> None:
        """Stop watching and kill the pod processes this agent started."""
        self.stopping.set()
        with self._lock:
            runners = list(self._runners.values())
        killers = [threading.Thread(target=r.terminate, args=(grace,)) for r in runners]
        for t in killers:
            t.start()
        for t in killers:  # watch and heartbeat threads are daemons and notice ``stopping``
            t.join(timeout=grace + 2)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    # -- heartbeats ------------------------------------------------------------------------
    def _heartbeat(self, beats: list[NodeHeartbeat]) -> None:
        since_status = 0.0
        while not self.stopping.wait(self.lease_interval):
            since_status += self.lease_interval
            for beat in beats:
                try:
                    beat.renew_lease()
                    if since_status >= self.status_interval:
                        beat.post_status()
                except Exception:
                    log.exception("heartbeat for node %s failed", beat.spec.name)
            if since_status >= self.status_interval:
                since_status = 0.0

    # -- pods ----------------------------------------------------------------------------------
    def _watch_pods(self, node: str) -> None:
        selector = f"spec.nodeName={node}"
        while not self.stopping.is_set():
            try:
                listed = self.core.list_pod_for_all_namespaces(field_selector=selector)
                for pod in listed.items:
                    self._handle(node, "SYNC", pod)
                w = watch.Watch()
                rv = listed.metadata.resource_version if listed.metadata else None
                while not self.stopping.is_set():
                    for event in w.stream(self.core.list_pod_for_all_namespaces,
                                          field_selector=selector, resource_version=rv,
                                          timeout_seconds=self.watch_timeout):
                        self._handle(node, event["type"], event["object"])
                        if self.stopping.is_set():
                            w.stop()
                            break
                    rv = w.resource_version or rv
            except ApiException as exc:
                if exc.status != 410:
                    log.warning("pod watch on %s failed (%s), re-listing", node, exc.status)
                    self.stopping.wait(1.0)
            except Exception:
                log.exception("pod watch on %s failed, re-listing", node)
                self.stopping.wait(1.0)

    def _handle(self, node: str, kind: str, pod: Any) -> None:
        uid = pod.metadata.uid
        with self._lock:
            runner = self._runners.get(uid)
            if kind == "DELETED":
                self._runners.pop(uid, None)
                if runner is not None:
                    threading.Thread(target=runner.terminate, args=(0.0,), daemon=True).start()
                return
            if pod.metadata.deletion_timestamp is not None:
                if uid not in self._deleting:
                    self._deleting.add(uid)
                    threading.Thread(target=self._finish_deletion, args=(pod, runner),
                                     daemon=True).start()
                return
            if runner is not None or self.stopping.is_set():
                return
            phase = pod.status.phase if pod.status else None
            if phase in ("Succeeded", "Failed"):
                return
            if phase == "Running":  # started by an earlier agent: its processes are gone
                self._fail(pod, "NodeAgentRestarted",
                           "the node agent restarted; its pod processes did not survive")
                return
            refusal = self._admit(node, pod)
            if refusal:
                self._fail(pod, *refusal)
                return
            runner = PodRunner(pod, self.sandbox_root, self.base_env, self._lookup,
                               self._reporter(pod), self.pod_env,
                               self._credentials if self.service_account_tokens else None)
            self._runners[uid] = runner
        threading.Thread(target=runner.run, daemon=True).start()

    def _admit(self, node: str, pod: Any) -> tuple[str, str] | None:
        """Refuse a pod whose QPUs are not on this node or are held by a running pod, as the
        kubelet's admission refuses pods that do not fit (reason ``OutOf<resource>``)."""
        wanted = {q for c in [*(pod.spec.init_containers or []), *pod.spec.containers]
                  for q in container_qpus(c)}
        held = {q for r in self._runners.values()
                if not r.terminal and r.pod.spec.node_name == node
                for c in r.pod.spec.containers for q in container_qpus(c)}
        for qpu in sorted(wanted):
            if qpu not in self.specs[node].qpus or qpu in held:
                resource = qpu_resource(qpu)
                return f"OutOf{resource}", f"Node didn't have enough resource: {resource}"
        return None

    def _finish_deletion(self, pod: Any, runner: PodRunner | None) -> None:
        """Stop the pod's processes within its grace period, then remove the pod object."""
        meta = pod.metadata
        grace = meta.deletion_grace_period_seconds
        if runner is not None:
            runner.terminate(float(grace if grace is not None else 30))
        try:
            self.core.delete_namespaced_pod(
                meta.name, meta.namespace, grace_period_seconds=0,
                body=client.V1DeleteOptions(grace_period_seconds=0,
                                            preconditions=client.V1Preconditions(uid=meta.uid)))
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("deleting pod %s/%s failed: %s", meta.namespace, meta.name, exc)
        with self._lock:
            self._runners.pop(meta.uid, None)

    def _reporter(self, pod: Any) -> Any:
        name, namespace = pod.metadata.name, pod.metadata.namespace

        def report(status: dict[str, Any]) -> None:
            self.core.patch_namespaced_pod_status(name, namespace, {"status": status},
                                                  _content_type=_STRATEGIC)

        return report

    def _fail(self, pod: Any, reason: str, message: str) -> None:
        log.warning("pod %s/%s failed: %s: %s", pod.metadata.namespace, pod.metadata.name,
                    reason, message)
        status = pod_status(pod, "Failed", [], [], now(), reason, message)
        try:
            self._reporter(pod)(status)
        except ApiException as exc:
            log.warning("status update failed: %s", exc)

    def _credentials(self, pod: Any, sandbox: Path) -> dict[str, str]:
        """``KUBECONFIG`` with a token of the pod's service account, bound to the pod."""
        meta = pod.metadata
        account = pod.spec.service_account_name or "default"
        try:
            path = service_account_kubeconfig(self.api, meta.namespace, account,
                                              sandbox / "kubeconfig", pod=pod)
        except ApiException as exc:
            raise ConfigError(f"service account token for {meta.namespace}/{account}: "
                              f"{exc.status} {exc.reason}") from exc
        return {"KUBECONFIG": str(path)}

    def _lookup(self, kind: str, namespace: str, name: str) -> dict[str, str] | None:
        try:
            if kind == "ConfigMap":
                return dict(self.core.read_namespaced_config_map(name, namespace).data or {})
            return decode_secret(self.core.read_namespaced_secret(name, namespace).data)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
