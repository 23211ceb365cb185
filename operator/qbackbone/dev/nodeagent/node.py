"""Node registration and heartbeats (node status and the node lease)."""

from __future__ import annotations

import logging
import platform
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from qbackbone.dev.nodeagent.config import NodeSpec
from qbackbone.dev.nodeagent.timefmt import now, rfc3339, rfc3339_micro

log = logging.getLogger(__name__)

LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS = 40
AGENT_LABEL = "qbackbone.io/node-agent"
_MERGE = "application/merge-patch+json"
_STRATEGIC = "application/strategic-merge-patch+json"


def build_node(spec: NodeSpec) -> dict[str, Any]:
    """The Node object the agent registers (metadata and spec)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    labels = {
        "kubernetes.io/hostname": spec.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": arch,
        "type": "virtual-kubelet",
        AGENT_LABEL: "true",
        **spec.labels,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels},
        "spec": {},
    }


def build_node_status(spec: NodeSpec, kubelet_version: str) -> dict[str, Any]:
    """Node status: capacity, allocatable, Ready and the pressure conditions, addresses."""
    t = rfc3339(now())

    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, str]:
        return {"type": kind, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": t, "lastTransitionTime": t}

    return {
        "capacity": spec.resources(),
        "allocatable": spec.resources(),
        "conditions": [
            condition("Ready", "True", "KubeletReady", "qbackbone node agent is ready"),
            condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "ok"),
            condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "ok"),
            condition("PIDPressure", "False", "KubeletHasSufficientPID", "ok"),
        ],
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": spec.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
        "nodeInfo": {
            "machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": platform.release(),
            "osImage": "qbackbone node agent", "containerRuntimeVersion": "local-process://0",
            "kubeletVersion": kubelet_version, "kubeProxyVersion": "",
            "operatingSystem": "linux", "architecture": build_node(spec)["metadata"]["labels"][
                "kubernetes.io/arch"],
        },
    }


class NodeHeartbeat:
    """Registers one Node and keeps it Ready: status updates and lease renewals."""

    def __init__(self, api: client.ApiClient, spec: NodeSpec, kubelet_version: str) -> None:
        self.core = client.CoreV1Api(api)
        self.coordination = client.CoordinationV1Api(api)
        self.spec = spec
        self.kubelet_version = kubelet_version
        self._uid: str | None = None

    def register(self) -> None:
        """Create the Node (or adopt an existing one), then post its status and lease."""
        try:
            created = self.core.create_node(client.V1Node.model_validate(build_node(self.spec)))
        except ApiException as exc:
            if exc.status != 409:
                raise
            created = self.core.patch_node(self.spec.name, build_node(self.spec),
                                           _content_type=_STRATEGIC)
        self._uid = created.metadata.uid if created.metadata else None
        self.post_status()
        self.renew_lease()
        log.info("registered node %s with %s", self.spec.name, self.spec.resources())

    def post_status(self) -> None:
        body = {"status": build_node_status(self.spec, self.kubelet_version)}
        self.core.patch_node_status(self.spec.name, body, _content_type=_STRATEGIC)

    def renew_lease(self) -> None:
        """Create or renew ``kube-node-lease/<node>``, owned by the Node like the kubelet's."""
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.spec.name, "namespace": LEASE_NAMESPACE},
            "spec": {
                "holderIdentity": self.spec.name,
                "leaseDurationSeconds": LEASE_SECONDS,
                "renewTime": rfc3339_micro(now()),
            },
        }
        if self._uid:
            body["metadata"]["ownerReferences"] = [{
                "apiVersion": "v1", "kind": "Node", "name": self.spec.name, "uid": self._uid,
            }]
        try:
            self.coordination.patch_namespaced_lease(self.spec.name, LEASE_NAMESPACE, body,
                                                     _content_type=_MERGE)
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.coordination.create_namespaced_lease(LEASE_NAMESPACE,
                                                      client.V1Lease.model_validate(body))
