"""The API server is real: versions, CRD schema validation, the repository's CRDs."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from qbackbone.dev import ClusterInfo
from qbackbone.dev.binaries import K8S_VERSION
from qbackbone.dev.crds import established
from qbackbone.dev.waiting import wait_for
from tests.cluster.fixtures import run_kubectl

REPO = Path(__file__).resolve().parents[2]
REPO_CRDS = sorted(REPO.glob("crds/*.yaml"))

pytestmark = pytest.mark.cluster


def kubectl(cluster: ClusterInfo, *args: str) -> str:
    result = run_kubectl(cluster, *args, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout



def test_kubectl_talks_to_the_pinned_server(cluster: ClusterInfo) -> None:
    out = kubectl(cluster, "version", "-o", "yaml")
    versions = yaml.safe_load(out)
    assert versions["serverVersion"]["gitVersion"] == K8S_VERSION
    assert versions["clientVersion"]["gitVersion"] == K8S_VERSION
    assert "default" in kubectl(cluster, "get", "namespaces", "-o", "name")


def _widget_crd() -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"spec": {
            "type": "object",
            "required": ["replicas"],
            "properties": {"replicas": {"type": "integer", "minimum": 1}},
        }},
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.test.qbackbone.io"},
        "spec": {
            "group": "test.qbackbone.io",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{"name": "v1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": schema}}],
        },
    }


def test_crd_schema_rejects_bad_object(api: client.ApiClient, namespace: str) -> None:
    ext = client.ApiextensionsV1Api(api)
    try:
        ext.create_custom_resource_definition(
            client.V1CustomResourceDefinition.model_validate(_widget_crd()))
    except ApiException as exc:
        assert exc.status == 409  # created by an earlier run of this test in the session
    wait_for(lambda: established(ext, "widgets.test.qbackbone.io"), 30, what="CRD Established")
    objects = client.CustomObjectsApi(api)

    def widget(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {"apiVersion": "test.qbackbone.io/v1", "kind": "Widget",
                "metadata": {"name": name}, "spec": spec}

    def create(body: dict[str, Any]) -> Any:
        return objects.create_namespaced_custom_object(
            "test.qbackbone.io", "v1", namespace, "widgets", body)

    # Discovery of a new CRD takes a moment: wait until a good object is accepted.
    wait_for(lambda: create(widget("good", {"replicas": 2})), 30, what="valid Widget accepted")
    for name, spec, needle in (("bad-type", {"replicas": "two"}, "spec.replicas"),
                               ("bad-min", {"replicas": 0}, "spec.replicas"),
                               ("bad-missing", {}, "spec.replicas")):
        with pytest.raises(ApiException) as err:
            create(widget(name, spec))
        assert err.value.status == 422, (name, err.value.body)
        assert needle in str(err.value.body), (name, err.value.body)


@pytest.mark.parametrize("path", REPO_CRDS, ids=[p.name for p in REPO_CRDS])
def test_repository_crd_is_accepted(cluster: ClusterInfo, api: client.ApiClient,
                                    path: Path) -> None:
    names = [doc["metadata"]["name"] for doc in yaml.safe_load_all(path.read_text())
             if doc and doc.get("kind") == "CustomResourceDefinition"]
    assert names, f"{path} holds no CustomResourceDefinition"
    kubectl(cluster, "apply", "--server-side", "--force-conflicts", "-f", str(path))
    ext = client.ApiextensionsV1Api(api)
    for name in names:
        wait_for(partial(established, ext, name), 30, what=f"CRD {name} Established")
