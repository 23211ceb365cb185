"""A small typed wrapper over the kubernetes client: the calls the operator and worker make."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from qbackbone.k8s import GROUP, VERSION


def load_api_client(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster config when running in a pod, else ``kubeconfig`` or ``$KUBECONFIG``."""
    if kubeconfig is None:
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException:
            pass
    # The client's default path is read from $KUBECONFIG at import time: read it now.
    path = kubeconfig or os.environ.get("KUBECONFIG") or None
    return config.new_client_from_config(config_file=path)


def selector(labels: Mapping[str, str]) -> str:
    """A label selector string from equality requirements."""
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


class Kube:
    """ConfigMaps, pods and the qbackbone.io custom objects, as plain dicts where possible."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.resource = client.ResourceV1Api(api)

    def create(self, manifest: Mapping[str, Any]) -> bool:
        """Create a namespaced ConfigMap, Pod or ResourceClaimTemplate; False when it already
        exists."""
        namespace = manifest["metadata"]["namespace"]
        try:
            if manifest["kind"] == "ConfigMap":
                configmap: Any = client.V1ConfigMap.from_dict(dict(manifest))
                self.core.create_namespaced_config_map(namespace, configmap)
            elif manifest["kind"] == "Pod":
                pod: Any = client.V1Pod.from_dict(dict(manifest))
                self.core.create_namespaced_pod(namespace, pod)
            elif manifest["kind"] == "ResourceClaimTemplate":
                template: Any = client.V1ResourceClaimTemplate.from_dict(dict(manifest))
                self.resource.create_namespaced_resource_claim_template(namespace, template)
            else:
                raise ValueError(f"cannot create kind {manifest['kind']}")
        except ApiException as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        """The data of a ConfigMap, or None when it does not exist."""
        try:
            found = self.core.read_namespaced_config_map(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(found.data or {})

    def configmaps(self, namespace: str, labels: Mapping[str, str]) -> dict[str, dict[str, str]]:
        """Data of the ConfigMaps with these labels, by name."""
        found: Any = self.core.list_namespaced_config_map(namespace,
                                                          label_selector=selector(labels))
        return {str(cm.metadata.name): dict(cm.data or {}) for cm in found.items}

    def pods(self, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
        """Pods (V1Pod) with these labels, by name."""
        found: Any = self.core.list_namespaced_pod(namespace, label_selector=selector(labels))
        return {str(pod.metadata.name): pod for pod in found.items}

    def list_objects(self, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """qbackbone.io objects of a kind, cluster-wide or in one namespace."""
        found: Any
        if namespace is None:
            found = self.custom.list_cluster_custom_object(GROUP, VERSION, plural)
        else:
            found = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)
        return list(found.get("items", []))

    def patch_status(self, plural: str, namespace: str | None, name: str,
                     patch: Mapping[str, Any]) -> None:
        """A JSON merge patch of ``{"status": patch}`` through the status subresource."""
        body = {"status": dict(patch)}
        kind = "application/merge-patch+json"
        if namespace is None:
            self.custom.patch_cluster_custom_object_status(GROUP, VERSION, plural, name, body,
                                                           _content_type=kind)
        else:
            self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, plural,
                                                              name, body, _content_type=kind)

    def workload(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A kueue Workload (``kueue.x-k8s.io/v1beta2``), or None when it does not exist."""
        try:
            found: Any = self.custom.get_namespaced_custom_object(
                "kueue.x-k8s.io", "v1beta2", namespace, "workloads", name)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict(found)

    def delete_pod(self, namespace: str, name: str) -> bool:
        """Delete a pod; False when it is already gone."""
        try:
            self.core.delete_namespaced_pod(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def remove_scheduling_gate(self, namespace: str, name: str, gate: str) -> None:
        """Remove one scheduling gate of a pod, leaving the others (kueue's admission gate)
        in place: a strategic merge patch deletes the list entry by its merge key."""
        patch = {"spec": {"schedulingGates": [{"name": gate, "$patch": "delete"}]}}
        self.core.patch_namespaced_pod(name, namespace, patch,
                                       _content_type="application/strategic-merge-patch+json")

    def labelled_configmaps(self, namespace: str, labels: Mapping[str, str]
                            ) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
        """(labels, data) of the ConfigMaps with these labels, by name."""
        found: Any = self.core.list_namespaced_config_map(namespace,
                                                          label_selector=selector(labels))
        return {str(cm.metadata.name): (dict(cm.metadata.labels or {}), dict(cm.data or {}))
                for cm in found.items}
