"""Builders and waits for the operator tests."""

from __future__ import annotations

import subprocess
import threading
import urllib.request
from pathlib import Path
from typing import Any

from kubernetes import client, watch

from qbackbone.dev import ClusterInfo
from qbackbone.dev.waiting import wait_for
from tests.cluster.fixtures import run_kubectl

REPO = Path(__file__).resolve().parents[2]
# A 3-qubit entangled circuit whose expectation values are neither 0 nor +-1.
ENTANGLED_QASM = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[3];
ry(0.7) q[0];
cx q[0], q[1];
rx(1.1) q[2];
cx q[1], q[2];
"""
G, V = "qbackbone.io", "v1alpha1"


def serving(url: str, proc: subprocess.Popen[bytes]) -> bool:
    """Whether ``url`` answers 200, or the process has exited (the caller reports that)."""
    if proc.poll() is not None:
        return True
    with urllib.request.urlopen(url, timeout=2) as response:
        return bool(response.status == 200)


def kubectl(cluster: ClusterInfo, *args: str) -> str:
    proc = run_kubectl(cluster, *args, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def qpunode(name: str, provider: str, backend: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{G}/{V}", "kind": "QPUNode", "metadata": {"name": name},
            "spec": {"backend": {"provider": provider, "name": backend}, **spec}}


def quantum_job(name: str, qasm: str, observables: list[str] | None = None,
                **spec: Any) -> dict[str, Any]:
    circuit: dict[str, Any] = {"qasm": qasm}
    if observables is None:
        circuit["sampling"] = True
    else:
        circuit["observables"] = observables
    return {"apiVersion": f"{G}/{V}", "kind": "QuantumJob", "metadata": {"name": name},
            "spec": {"circuit": circuit, **spec}}


def policy(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{G}/{V}", "kind": "InvocationPolicy", "metadata": {"name": name},
            "spec": spec}


def create(api: client.ApiClient, namespace: str, body: dict[str, Any]) -> Any:
    plural = {"QuantumJob": "quantumjobs", "InvocationPolicy": "invocationpolicies"}[body["kind"]]
    return client.CustomObjectsApi(api).create_namespaced_custom_object(G, V, namespace, plural,
                                                                        body)


def get_job(api: client.ApiClient, namespace: str, name: str) -> Any:
    return client.CustomObjectsApi(api).get_namespaced_custom_object(G, V, namespace,
                                                                     "quantumjobs", name)


def wait_job(api: client.ApiClient, namespace: str, name: str,
             timeout: float = 120.0) -> dict[str, Any]:
    """Wait for the job to reach Succeeded or Failed; return the whole object."""

    def done() -> Any:
        job = get_job(api, namespace, name)
        phase = (job.get("status") or {}).get("phase")
        return job if phase in ("Succeeded", "Failed") else None

    result: dict[str, Any] = wait_for(done, timeout, interval=0.3,
                                      what=f"QuantumJob {namespace}/{name} finished")
    return result


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return None


def ready_status(custom: client.CustomObjectsApi, name: str, want: str) -> dict[str, Any] | None:
    obj = custom.get_cluster_custom_object(G, V, "qpunodes", name)
    cond = condition(obj, "Ready")
    return obj if cond is not None and cond["status"] == want else None


def create_ready_qpunode(api: client.ApiClient, name: str, **spec: Any) -> None:
    """Create an aer QPUNode and wait until the operator has made it Ready."""
    custom = client.CustomObjectsApi(api)
    custom.create_cluster_custom_object(G, V, "qpunodes",
                                        qpunode(name, "aer", "aer_simulator", **spec))
    wait_for(lambda: ready_status(custom, name, "True"), 60, what=f"QPUNode {name} Ready")


def delete_qpunode(api: client.ApiClient, name: str) -> None:
    """Delete a QPUNode; gone already is fine."""
    try:
        client.CustomObjectsApi(api).delete_cluster_custom_object(G, V, "qpunodes", name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


class PodWatch:
    """Every pod of a namespace as first seen (ADDED) and how often each name was added."""

    def __init__(self, core: client.CoreV1Api, namespace: str) -> None:
        self.core, self.namespace = core, namespace
        self.first: dict[str, Any] = {}
        self.added: dict[str, int] = {}
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rv = self.core.list_namespaced_pod(self.namespace).metadata.resource_version
        self.ready.set()
        while not self.stopping.is_set():
            w = watch.Watch()
            for event in w.stream(self.core.list_namespaced_pod, self.namespace,
                                  resource_version=rv, timeout_seconds=2):
                pod = event["object"]
                rv = pod.metadata.resource_version
                if event["type"] == "ADDED":
                    self.first.setdefault(pod.metadata.name, pod)
                    self.added[pod.metadata.name] = self.added.get(pod.metadata.name, 0) + 1
                if self.stopping.is_set():
                    w.stop()

    def __enter__(self) -> PodWatch:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(10)
