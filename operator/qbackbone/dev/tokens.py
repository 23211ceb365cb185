"""Service-account tokens from the TokenRequest API, and kubeconfigs that carry them.

What a kubelet does for a pod's projected token (``serviceAccountToken`` volume): ask the API
server for a short-lived token of the pod's service account, bound to the pod, and hand it to
the containers. Here the token goes into a kubeconfig file, because the node agent's
processes have no ``/var/run/secrets`` mount.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

DEFAULT_EXPIRATION = 3600  # seconds; the API server's minimum is 600


def request_token(api: client.ApiClient, namespace: str, service_account: str,
                  expiration: int = DEFAULT_EXPIRATION, pod: Any = None) -> str:
    """A token for ``namespace/service_account`` (TokenRequest, the API server's default
    audiences); bound to ``pod`` (a V1Pod) when given, so it dies with the pod."""
    bound = None
    if pod is not None:
        bound = client.V1BoundObjectReference(api_version="v1", kind="Pod",
                                              name=pod.metadata.name, uid=pod.metadata.uid)
    body = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
        audiences=[], expiration_seconds=expiration, bound_object_ref=bound))
    made: Any = client.CoreV1Api(api).create_namespaced_service_account_token(
        service_account, namespace, body)
    return str(made.status.token)


def cluster_of(api: client.ApiClient) -> tuple[str, bytes]:
    """The server URL and CA bundle (PEM) an API client talks to."""
    conf = api.configuration
    ca_file = conf.ssl_ca_cert
    if not ca_file:
        raise ValueError("the API client has no CA bundle to hand on")
    return str(conf.host), Path(ca_file).read_bytes()


def write_token_kubeconfig(path: Path, server: str, ca_pem: bytes, token: str, user: str,
                           context: str = "qbackbone-dev", namespace: str | None = None) -> Path:
    """Write a single-context kubeconfig authenticating with a bearer ``token`` (mode 0600);
    ``namespace``: the context's default namespace (a pod's own, as in-cluster config has)."""
    doc = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": context, "cluster": {
            "server": server,
            "certificate-authority-data": base64.b64encode(ca_pem).decode("ascii")}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": context, "context": {
            "cluster": context, "user": user, **({"namespace": namespace} if namespace else {})}}],
        "current-context": context,
    }
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def service_account_kubeconfig(api: client.ApiClient, namespace: str, service_account: str,
                               path: Path, expiration: int = DEFAULT_EXPIRATION,
                               pod: Any = None) -> Path:
    """Mint a token for the service account and write a kubeconfig with it at ``path`` (its
    default namespace is the service account's, like a pod's in-cluster config)."""
    server, ca_pem = cluster_of(api)
    token = request_token(api, namespace, service_account, expiration, pod)
    return write_token_kubeconfig(path, server, ca_pem, token,
                                  f"system:serviceaccount:{namespace}:{service_account}",
                                  namespace=namespace)
