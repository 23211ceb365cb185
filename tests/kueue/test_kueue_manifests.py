"""kueue's Configuration and its manifests rewritten for a host-process webhook server
(qbackbone.dev.kueue_manifests): on kueue's real module source (from hack/build-kueue.sh)."""

from __future__ import annotations

import base64
from pathlib import Path

from qbackbone.dev.kueue import KueueBinary
from qbackbone.dev.kueue_manifests import (
    CONVERTED_CRDS,
    QPU_DEVICE_CLASS,
    QPU_QUOTA_RESOURCE,
    configuration,
    crds,
    excluded_namespaces,
    pod_webhook_paths,
    webhook_configurations,
)

BASE = "https://127.0.0.1:4443"
CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_configuration_is_the_pod_integration_with_qpu_quota(tmp_path: Path) -> None:
    excluded = excluded_namespaces(["qbackbone-system"])
    assert excluded == ["kube-system", "kueue-system", "qbackbone-system"]
    cfg = configuration(webhook_port=4443, health_port=4444, cert_dir=tmp_path,
                        excluded=excluded)
    assert cfg["integrations"] == {"frameworks": ["pod"]}
    assert cfg["manageJobsWithoutQueueName"] is False
    assert "waitForPodsReady" not in cfg
    assert cfg["internalCertManagement"] == {"enable": False}
    assert cfg["resources"]["deviceClassMappings"] == [
        {"name": QPU_QUOTA_RESOURCE, "deviceClassNames": [QPU_DEVICE_CLASS]}]
    assert cfg["featureGates"]["DynamicResourceAllocation"] is True
    assert cfg["managedJobsNamespaceSelector"]["matchExpressions"][0]["values"] == excluded
    assert cfg["webhook"] == {"port": 4443, "host": "127.0.0.1", "certDir": str(tmp_path)}


def test_crds_convert_through_the_url(kueue_binary: KueueBinary) -> None:
    docs = crds(kueue_binary.source, BASE, CA)
    plurals = {d["spec"]["names"]["plural"] for d in docs}
    assert {"workloads", "clusterqueues", "localqueues", "resourceflavors"} <= plurals
    for doc in docs:
        conversion = doc["spec"].get("conversion")
        if doc["spec"]["names"]["plural"] in CONVERTED_CRDS:
            client_config = conversion["webhook"]["clientConfig"]
            assert client_config["url"] == f"{BASE}/convert"
            assert base64.b64decode(client_config["caBundle"]) == CA
            assert "service" not in client_config
        else:
            assert conversion is None or conversion.get("strategy") == "None"


def test_webhooks_are_kueues_own_and_the_pods_by_url(kueue_binary: KueueBinary) -> None:
    excluded = excluded_namespaces(["qbackbone-system"])
    configs = webhook_configurations(kueue_binary.source, BASE, CA, excluded)
    assert sorted(c["kind"] for c in configs) == ["MutatingWebhookConfiguration",
                                                  "ValidatingWebhookConfiguration"]
    names = set()
    for config in configs:
        for hook in config["webhooks"]:
            names.add(hook["name"])
            url = hook["clientConfig"]["url"]
            assert url.startswith(f"{BASE}/"), url
            assert "service" not in hook["clientConfig"]
            # kueue's own kinds or pods: no webhook for a framework that is not enabled
            groups = {g for rule in hook["rules"] for g in rule["apiGroups"]}
            assert groups <= {"", "kueue.x-k8s.io"}, (hook["name"], groups)
    assert {"mpod.kb.io", "vpod.kb.io", "mworkload.kb.io", "vclusterqueue.kb.io"} <= names
    assert pod_webhook_paths(configs) == ["mutate--v1-pod", "validate--v1-pod"]
    pod_hooks = [h for c in configs for h in c["webhooks"] if h["name"].endswith("pod.kb.io")]
    for hook in pod_hooks:
        assert hook["namespaceSelector"]["matchExpressions"][0] == {
            "key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded}
