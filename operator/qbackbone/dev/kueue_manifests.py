"""kueue's Configuration, CRDs and webhook configurations for a kueue that runs as a host process
beside the dev control plane (``dev/kueue.py``; docs/kueue.md).

Pure: reads the kueue module's own manifests (``config/components/{crd,webhook}`` of the source
that ``hack/build-kueue.sh`` keeps in the Go module cache, never copied into this repository)
and rewrites them for a webhook server the API server reaches by URL
(``https://127.0.0.1:<port>/<path>``, with our CA as ``caBundle``), since the API server is a
host process too and there is no Service to point at.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

# The DeviceClass the DRA driver creates (docs/dra.md) and the quota resource kueue charges
# for each device of it: a ClusterQueue's nominalQuota for this name is a number of QPUs.
QPU_DEVICE_CLASS = "qpu.qbackbone.io"
QPU_QUOTA_RESOURCE = "qpu.qbackbone.io/qpus"
# kueue's alpha feature gate (v0.14+) for quota on DRA devices (resourceClaimTemplates).
DRA_FEATURE_GATE = "DynamicResourceAllocation"
KUEUE_NAMESPACE = "kueue-system"
# Never managed by kueue: the control plane's and kueue's own namespaces.
ALWAYS_EXCLUDED = ("kube-system", KUEUE_NAMESPACE)

# CRDs whose versions kueue converts (v1beta1 <-> v1beta2): kueue's config/components/crd
# kustomization enables the conversion webhook for exactly these.
CONVERTED_CRDS = ("localqueues", "clusterqueues", "cohorts", "workloads", "multikueueclusters")
# Webhooks kept: kueue's own kinds and the plain-pod integration. The other integrations'
# webhooks (Jobs, Deployments, JobSets, ...) are left out: their frameworks are not enabled,
# and a failing-closed webhook for them would block those kinds cluster-wide.
_KEPT_WEBHOOK_PATHS = ("-kueue-x-k8s-io-", "--v1-pod")
_POD_WEBHOOKS = ("mpod.kb.io", "vpod.kb.io")
WEBHOOK_CONFIG_NAMES = {"MutatingWebhookConfiguration": "kueue-mutating-webhook-configuration",
                        "ValidatingWebhookConfiguration":
                            "kueue-validating-webhook-configuration"}


def excluded_namespaces(extra: Iterable[str] = ()) -> list[str]:
    """kube-system, kueue-system and ``extra`` (e.g. the operator's namespace), sorted, once."""
    return sorted({*ALWAYS_EXCLUDED, *extra})


def namespace_selector(excluded: Sequence[str]) -> dict[str, Any]:
    """A label selector matching every namespace except ``excluded``."""
    return {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                  "values": list(excluded)}]}


def configuration(*, webhook_port: int, health_port: int, cert_dir: Path,
                  excluded: Sequence[str], device_classes: Sequence[str] = (QPU_DEVICE_CLASS,),
                  qps: float = 50, burst: int = 100) -> dict[str, Any]:
    """kueue's ``config.kueue.x-k8s.io/v1beta2`` Configuration for the dev control plane.

    Plain pods and pod groups only (the ``pod`` integration) in every namespace but
    ``excluded``; only pods that name a queue (``manageJobsWithoutQueueName: false``); no
    waitForPodsReady; our own serving certificate (``internalCertManagement`` off); no leader
    election (one replica); metrics off; DRA quota with the devices of ``device_classes``
    (default: the DeviceClass ``qpu.qbackbone.io``; add per-QPU classes to pin QPUs, see
    docs/kueue.md) each counted as one ``qpu.qbackbone.io/qpus``; the visibility API server
    off (it would need to be an aggregated API server of its own)."""
    return {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": KUEUE_NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{health_port}",
                   "readinessEndpointName": "/readyz", "livenessEndpointName": "/healthz"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"port": webhook_port, "host": "127.0.0.1", "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "clientConnection": {"qps": qps, "burst": burst},
        "manageJobsWithoutQueueName": False,
        "managedJobsNamespaceSelector": namespace_selector(excluded),
        "integrations": {"frameworks": ["pod"]},
        "resources": {"deviceClassMappings": [
            {"name": QPU_QUOTA_RESOURCE, "deviceClassNames": list(device_classes)}]},
        "featureGates": {DRA_FEATURE_GATE: True, "VisibilityOnDemand": False},
    }


def _client_config(base_url: str, path: str, ca_pem: bytes) -> dict[str, Any]:
    return {"url": f"{base_url.rstrip('/')}{path}",
            "caBundle": base64.b64encode(ca_pem).decode("ascii")}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


def crds(source: Path, base_url: str, ca_pem: bytes) -> list[dict[str, Any]]:
    """kueue's CRDs from ``<source>/config/components/crd/bases``, the converted ones with a
    conversion webhook at ``<base_url>/convert``."""
    out = []
    for path in sorted((source / "config/components/crd/bases").glob("*.yaml")):
        for crd in _documents(path):
            if crd.get("kind") != "CustomResourceDefinition":
                continue
            crd = copy.deepcopy(crd)
            if crd["spec"]["names"]["plural"] in CONVERTED_CRDS:
                crd["spec"]["conversion"] = {"strategy": "Webhook", "webhook": {
                    "clientConfig": _client_config(base_url, "/convert", ca_pem),
                    "conversionReviewVersions": ["v1"]}}
            out.append(crd)
    return out


def webhook_configurations(source: Path, base_url: str, ca_pem: bytes,
                           excluded: Sequence[str]) -> list[dict[str, Any]]:
    """kueue's mutating and validating webhook configurations from
    ``<source>/config/components/webhook/manifests.yaml``: kueue's own kinds and the pod
    webhooks (the latter skipping ``excluded`` namespaces), each called at
    ``<base_url><path>`` with ``ca_pem`` as its CA."""
    out = []
    for doc in _documents(source / "config/components/webhook/manifests.yaml"):
        kind = doc.get("kind")
        if kind not in WEBHOOK_CONFIG_NAMES:
            continue
        hooks = []
        for hook in doc.get("webhooks") or []:
            path = hook["clientConfig"]["service"]["path"]
            if not any(k in path for k in _KEPT_WEBHOOK_PATHS):
                continue
            hook = copy.deepcopy(hook)
            hook["clientConfig"] = _client_config(base_url, path, ca_pem)
            if hook["name"] in _POD_WEBHOOKS:
                hook["namespaceSelector"] = namespace_selector(excluded)
            hooks.append(hook)
        out.append({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                    "metadata": {"name": WEBHOOK_CONFIG_NAMES[kind],
                                 "labels": {"app.kubernetes.io/name": "kueue",
                                            "app.kubernetes.io/managed-by": "qbackbone-dev"}},
                    "webhooks": hooks})
    return out


def pod_webhook_paths(configs: Sequence[dict[str, Any]]) -> list[str]:
    """The URL paths of the pod webhooks in ``configs`` (what must answer before pods are
    created)."""
    return sorted(h["clientConfig"]["url"].split("/", 3)[-1]
                  for c in configs for h in c["webhooks"] if h["name"] in _POD_WEBHOOKS)
