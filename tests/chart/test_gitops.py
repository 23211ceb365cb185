"""GitOps: the policies in examples/gitops/ synced as they are (server-side apply, as Flux and
Argo CD's server-side mode do) into a namespace of the chart install; the operator validates
them, decides jobs with them and writes their status, and never touches what Git owns:
``kubectl diff --server-side`` finds nothing, ``spec`` and ``generation`` are unchanged, and
the operator's field managers own only ``status`` and kopf's two annotations
(``qbackbone.io/last-handled-configuration``, ``qbackbone.io/kopf-managed``), and no finalizer
is added."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from tests.chart.helm import REPO
from tests.chart.installed import QPUS, TEAM_NS, Install, healthy
from tests.cluster.fixtures import run_kubectl

pytestmark = pytest.mark.cluster

G, V = "qbackbone.io", "v1alpha1"
GITOPS = REPO / "examples" / "gitops"
POLICIES = ("default", "low-latency", "classical-only")
# Field manager of kubectl apply --server-side (Flux: kustomize-controller; Argo CD:
# argocd-controller)
GIT_MANAGER = "kubectl"
KOPF_ANNOTATIONS = {"qbackbone.io/last-handled-configuration", "qbackbone.io/kopf-managed"}
BELL = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0], q[1];\n'


def _policy(custom: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    return dict(custom.get_namespaced_custom_object(G, V, TEAM_NS, "invocationpolicies", name))


def _valid(custom: client.CustomObjectsApi, name: str) -> bool:
    obj = _policy(custom, name)
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Valid" and c["status"] == "True"
               and c["observedGeneration"] == obj["metadata"]["generation"] for c in conds)


def _finished(custom: client.CustomObjectsApi, name: str) -> dict[str, Any] | None:
    job = custom.get_namespaced_custom_object(G, V, TEAM_NS, "quantumjobs", name)
    phase = (job.get("status") or {}).get("phase")
    return dict(job) if phase in ("Succeeded", "Failed") else None


def _rendered(install: Install) -> dict[str, dict[str, Any]]:
    import yaml

    text = install.kubectl("kustomize", str(GITOPS))
    return {d["metadata"]["name"]: d for d in yaml.safe_load_all(text) if d}


def operator_owned(obj: dict[str, Any]) -> dict[str, list[str]]:
    """Top-level fields each non-Git field manager owns: 'status', or 'metadata.<field>' for
    the metadata fields (annotations, finalizers, labels) it set."""
    owned: dict[str, list[str]] = {}
    for entry in obj["metadata"].get("managedFields") or []:
        if entry["manager"] == GIT_MANAGER and entry.get("operation") == "Apply":
            continue
        fields = entry.get("fieldsV1") or {}
        where = [k[2:] for k in fields if k != "f:metadata"]
        where += [f"metadata.{k[2:]}" for k in fields.get("f:metadata", {})]
        key = f"{entry['manager']}/{entry.get('subresource', '')}"
        owned[key] = sorted(set(owned.get(key, [])) | set(where))
    return owned


def test_synced_policies_never_drift(install: Install) -> None:
    custom = client.CustomObjectsApi(install.api)
    wait_for(partial(healthy, install.health_url), 90, interval=0.3, what="operator /healthz")
    install.kubectl("apply", "--server-side", "-k", str(GITOPS), "-n", TEAM_NS)
    for name in POLICIES:
        wait_for(partial(_valid, custom, name), 60, what=f"policy {name} Valid")
    # The policies decide jobs (so the operator writes their usage status too).
    for name in QPUS:
        install.kubectl("apply", "--server-side", "-f", "-", stdin=json.dumps({
            "apiVersion": f"{G}/{V}", "kind": "QPUNode", "metadata": {"name": name},
            "spec": {"backend": {"provider": "aer", "name": "aer_simulator"}, "qubits": 8}}))
    for job, policy in (("fast", "low-latency"), ("dev", "classical-only")):
        install.kubectl("create", "-n", TEAM_NS, "-f", "-", stdin=json.dumps({
            "apiVersion": f"{G}/{V}", "kind": "QuantumJob", "metadata": {"name": job},
            "spec": {"circuit": {"qasm": BELL, "observables": ["ZZ", "XX"]}, "shots": 2000,
                     "policyRef": {"name": policy}}}))
    paths = {}
    for job in ("fast", "dev"):
        done = wait_for(partial(_finished, custom, job), 120, interval=0.3, what=f"job {job}")
        assert done["status"]["phase"] == "Succeeded", (done["status"], install.diagnostics())
        paths[job] = done["status"]["decision"]["path"]
    assert paths == {"fast": "SingleQPU", "dev": "Classical"}
    for name, share in (("low-latency", 1.0), ("classical-only", 0.0), ("default", 0.0)):
        want = 0 if name == "default" else 1
        wait_for(lambda n=name, w=want: _policy(custom, n)["status"].get("jobsDecided") == w,
                 30, what=f"{name} jobsDecided")
        assert _policy(custom, name)["status"]["quantumShare"] == share

    # No drift: the server-side diff of the Git state against the live objects is empty.
    proc = run_kubectl(install.cluster, "diff", "--server-side", "-k", str(GITOPS),
                       "-n", TEAM_NS)
    assert proc.returncode == 0 and not proc.stdout, proc.stdout + proc.stderr
    rendered = _rendered(install)
    for name in POLICIES:
        live = _policy(custom, name)
        assert live["metadata"]["generation"] == 1, name  # spec never written
        assert live["spec"] == _defaults_applied(live["spec"], rendered[name]["spec"]), name
        owned = operator_owned(live)
        # The status writer owns status only; kopf owns only its annotations; no finalizer
        # (policies have no delete handler and no timer).
        assert owned == {"OpenAPI-Generator/status": ["status"],
                         "kopf/": ["metadata.annotations"]}, (name, owned)
        # kopf's: the spec last handled (its diff base) and its marker (docs/gitops.md).
        assert set(live["metadata"].get("annotations") or {}) == set(kopf_annotations(live)) \
            == KOPF_ANNOTATIONS, live["metadata"]
        assert not live["metadata"].get("finalizers"), live["metadata"]


def kopf_annotations(obj: dict[str, Any]) -> list[str]:
    """The annotation keys kopf's field manager owns."""
    keys: list[str] = []
    for entry in obj["metadata"].get("managedFields") or []:
        if entry["manager"] == "kopf":
            annotations = (entry.get("fieldsV1") or {}).get("f:metadata", {}).get(
                "f:annotations", {})
            keys += [k[2:] for k in annotations if k.startswith("f:")]
    return keys


def _defaults_applied(live: dict[str, Any], git: dict[str, Any]) -> dict[str, Any]:
    """Git's spec with the CRD's defaults the API server filled in (taken from ``live`` where
    Git says nothing), so that only a changed value counts as a difference."""
    merged = dict(live)
    for key, value in git.items():
        merged[key] = (_defaults_applied(live.get(key) or {}, value)
                       if isinstance(value, dict) else value)
    return merged
