"""The kubelet plugin's calls to the API server: the only module of the plugin that imports
the kubernetes client. Plain dicts through ``CustomObjectsApi``.

Calls (``tests/chart/test_rbac.py`` derives the chart's RBAC from them): ResourceClaims get;
QPUNodes list (to resolve a device to its QPU); in the fake mode only, the node-local
ResourceSlice get, create, update and delete.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)

QPU_GROUP, QPU_VERSION, QPUNODES = "qbackbone.io", "v1alpha1", "qpunodes"
DRA_GROUP, DRA_VERSION = "resource.k8s.io", "v1"
CLAIMS, SLICES = "resourceclaims", "resourceslices"
REQUEST_TIMEOUT = 15  # seconds per call (the kubelet's prepare call has its own deadline)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class PluginAPI:
    """What the kubelet plugin reads and (fake mode) writes."""

    def __init__(self, api: client.ApiClient | None, custom: Any = None) -> None:
        self.custom = custom if custom is not None else client.CustomObjectsApi(api)

    def read_claim(self, namespace: str, name: str) -> dict[str, Any]:
        """The ResourceClaim ``namespace/name``."""
        return _dict(self.custom.get_namespaced_custom_object(
            DRA_GROUP, DRA_VERSION, namespace, CLAIMS, name, _request_timeout=REQUEST_TIMEOUT))

    def list_qpunodes(self) -> list[dict[str, Any]]:
        """Every QPUNode of the cluster."""
        found = _dict(self.custom.list_cluster_custom_object(
            QPU_GROUP, QPU_VERSION, QPUNODES, _request_timeout=REQUEST_TIMEOUT))
        items = found.get("items")
        return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []

    def apply_slice(self, obj: Mapping[str, Any]) -> None:
        """Create the slice, or replace it (at the next pool generation) when it differs."""
        name = obj["metadata"]["name"]
        try:
            current = _dict(self.custom.get_cluster_custom_object(
                DRA_GROUP, DRA_VERSION, SLICES, name, _request_timeout=REQUEST_TIMEOUT))
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.custom.create_cluster_custom_object(
                DRA_GROUP, DRA_VERSION, SLICES, dict(obj), _request_timeout=REQUEST_TIMEOUT)
            log.info("published ResourceSlice %s", name)
            return
        spec, old = dict(obj["spec"]), _dict(current.get("spec"))
        same = (old.get("devices") == spec["devices"] and old.get("nodeName") == spec["nodeName"]
                and _dict(old.get("pool")).get("name") == spec["pool"]["name"])
        if same and _dict(current.get("metadata")).get("labels") == obj["metadata"]["labels"]:
            return
        generation = int(_dict(old.get("pool")).get("generation") or 0) + 1
        body = {**obj, "metadata": {**current["metadata"], "labels": obj["metadata"]["labels"]},
                "spec": {**spec, "pool": {**spec["pool"], "generation": generation}}}
        self.custom.replace_cluster_custom_object(
            DRA_GROUP, DRA_VERSION, SLICES, name, body, _request_timeout=REQUEST_TIMEOUT)
        log.info("updated ResourceSlice %s (generation %d)", name, generation)

    def delete_slice(self, name: str) -> None:
        """Delete the slice (gone already: fine)."""
        try:
            self.custom.delete_cluster_custom_object(
                DRA_GROUP, DRA_VERSION, SLICES, name, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise


def api_client(kubeconfig: str | None) -> client.ApiClient:
    """An API client: ``kubeconfig``, else the in-cluster service account, else
    ``$KUBECONFIG`` or ``~/.kube/config``."""
    from kubernetes import config

    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()
