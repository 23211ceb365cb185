"""The operator's ClusterRoles cover every (group, resource, verb) the operator uses, and the
worker Role every one the worker uses. The needs are derived from the code: each Kubernetes
client call found in operator/qbackbone/k8s and controllers must be in CALLS (so a new call
fails here until the chart grants it), plus what kopf itself does for the handlers."""

from __future__ import annotations

import re
from pathlib import Path

from tests.chart.helm import ALL_FEATURES, REPO, documents, render

Need = tuple[str, str, str]  # (apiGroup, resource, verb)
KINDS = ("quantumjobs", "qpunodes", "invocationpolicies")
G = "qbackbone.io"

# Client method -> what it needs (custom-object calls: for every qbackbone.io kind).
CALLS: dict[str, set[Need]] = {
    "create_namespaced_config_map": {("", "configmaps", "create")},
    "create_namespaced_pod": {("", "pods", "create")},
    "read_namespaced_config_map": {("", "configmaps", "get")},
    "list_namespaced_config_map": {("", "configmaps", "list")},
    "list_namespaced_pod": {("", "pods", "list")},
    "delete_namespaced_pod": {("", "pods", "delete")},
    "patch_namespaced_pod": {("", "pods", "patch")},
    "list_cluster_custom_object": {(G, k, "list") for k in KINDS},
    "list_namespaced_custom_object": {(G, k, "list") for k in KINDS},
    "patch_cluster_custom_object_status": {(G, f"{k}/status", "patch") for k in KINDS},
    "patch_namespaced_custom_object_status": {(G, f"{k}/status", "patch") for k in KINDS},
    "get_namespaced_custom_object": {("kueue.x-k8s.io", "workloads", "get")},  # Kube.workload
    "create_namespaced_resource_claim_template": {
        ("resource.k8s.io", "resourceclaimtemplates", "create")},
}
# Kube wrapper method -> client calls it makes (the worker uses the wrapper).
WRAPPER = {"create": {"create_namespaced_config_map", "create_namespaced_pod"},
           "configmap": {"read_namespaced_config_map"}}
# kopf, for handlers on a kind: list+watch (watch streams), patch (finalizer, annotation
# progress storage); kopf.event: create events; CRD watch (resource discovery).
KOPF_PER_KIND = ("list", "watch", "patch")
KOPF_ALWAYS: set[Need] = {("apiextensions.k8s.io", "customresourcedefinitions", "list"),
                          ("apiextensions.k8s.io", "customresourcedefinitions", "watch")}
# A client method (verb_...) on a client attribute; `x.events.append(` is a list, not a call.
CLIENT_CALL = re.compile(r"\.(?:core|custom|apps|batch|coordination|rbac|events|resource)\."
                         r"((?:create|read|list|patch|replace|delete|connect)_\w+)\(")
KOPF_HANDLER = re.compile(r"@kopf\.(?:on\.\w+|timer|daemon|index)\(GROUP, VERSION, (\w+)")
# kopf handlers on core kinds (e.g. fragment pods watched for QPU load): list+watch only
# (event and index handlers never patch).
KOPF_CORE_WATCH = re.compile(r'@kopf\.(?:on\.event|index)\("v1", "(\w+)"')
KIND_CONST = {"JOBS": "quantumjobs", "QPUNODES": "qpunodes", "POLICIES": "invocationpolicies"}


def _sources(*dirs: str) -> str:
    return "\n".join(p.read_text() for d in dirs for p in sorted((REPO / d).glob("*.py")))


def operator_needs() -> set[Need]:
    text = _sources("operator/qbackbone/k8s", "controllers")
    needs = set(KOPF_ALWAYS)
    for method in CLIENT_CALL.findall(text):
        assert method in CALLS, f"new API call {method}: add it to CALLS and to the chart's RBAC"
        needs |= CALLS[method]
    for const in KOPF_HANDLER.findall(text):
        needs |= {(G, KIND_CONST[const], verb) for verb in KOPF_PER_KIND}
    for plural in KOPF_CORE_WATCH.findall(text):
        needs |= {("", plural, "list"), ("", plural, "watch")}
    if "kopf.event(" in text:
        needs.add(("", "events", "create"))
    if '"blockOwnerDeletion": controller' in text:  # OwnerReferencesPermissionEnforcement
        needs.add((G, "quantumjobs/finalizers", "update"))
    return needs


def worker_needs() -> set[Need]:
    text = _sources("operator/qbackbone/worker")
    needs: set[Need] = set()
    for method in re.findall(r"\bkube\.(\w+)\(", text):
        assert method in WRAPPER, f"worker calls Kube.{method}: add it to WRAPPER and the chart"
        for call in WRAPPER[method]:
            needs |= {n for n in CALLS[call] if n[1] == "configmaps"}
    return needs


def granted(rules: list[dict[str, list[str]]]) -> set[Need]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"]}


def _roles(text: str) -> tuple[dict[str, set[Need]], list[dict[str, object]]]:
    docs = documents(text)
    roles = {f"{d['kind']}/{d['metadata'].get('namespace', '')}/{d['metadata']['name']}":
             granted(d["rules"]) for d in docs if d["kind"] in ("ClusterRole", "Role")}
    return roles, docs


def test_the_code_scan_finds_the_known_calls() -> None:
    needs = operator_needs()
    assert ("", "pods", "create") in needs and (G, "quantumjobs/status", "patch") in needs
    assert (G, "qpunodes", "watch") in needs and ("", "events", "create") in needs
    assert ("", "pods", "watch") in needs  # controllers/qpunode.py: fragment pods' events
    assert worker_needs() == {("", "configmaps", "get"), ("", "configmaps", "create")}


def test_operator_cluster_roles_cover_every_call(k8s_bin_dir: Path) -> None:
    roles, _ = _roles(render(k8s_bin_dir))
    have = roles["ClusterRole//qbackbone-operator-cluster"] | roles[
        "ClusterRole//qbackbone-operator"]
    missing = operator_needs() - have
    assert not missing, f"the operator's ClusterRoles lack {sorted(missing)}"


def test_operator_grants_nothing_broad(k8s_bin_dir: Path) -> None:
    for text in (render(k8s_bin_dir), render(k8s_bin_dir, "-f", str(ALL_FEATURES))):
        roles, _ = _roles(text)
        for name, have in roles.items():
            assert not {n for n in have if "*" in n}, f"{name} has a wildcard"
            assert not {n for n in have if n[1] == "secrets"}, f"{name} grants secrets"
            # Deleting a pod: only the operator, only pods (a failed fragment's attempt is
            # replaced, k8s/dispatch.py); nothing else is ever deleted by hand.
            deletes = {n for n in have if n[2] in ("delete", "deletecollection")}
            allowed = {("", "pods", "delete")} if name.endswith("/qbackbone-operator") else set()
            if name.endswith(("/qbackbone-dra-driver", "/qbackbone-dra-kubelet-plugin")):
                # its own slices, when a pool empties (the plugin: its fake slice on exit)
                allowed = {(DRA, "resourceslices", "delete")}
            if name.endswith("/qbackbone-dra-driver"):  # the class of a QPU that left
                allowed.add((DRA, "deviceclasses", "delete"))
            assert deletes <= allowed, (name, deletes)
            assert not {n for n in have if n[2] in ("escalate", "bind", "impersonate")}, name


def test_worker_role_is_exactly_what_the_worker_calls(k8s_bin_dir: Path) -> None:
    roles, docs = _roles(render(k8s_bin_dir))
    assert roles["Role/qbackbone-system/qbackbone-worker"] == worker_needs()
    binding = next(d for d in docs if d["kind"] == "RoleBinding"
                   and d["metadata"]["name"] == "qbackbone-worker")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "qbackbone-worker",
                                    "namespace": "qbackbone-system"}]


# ----- the DRA driver's publisher (operator/qbackbone/dra/publisher.py) -----

DRA = "resource.k8s.io"
DRA_VERBS = {"list_cluster_custom_object": "list", "get_cluster_custom_object": "get",
             "create_cluster_custom_object": "create", "replace_cluster_custom_object": "update",
             "delete_cluster_custom_object": "delete"}
# self.custom.<method>(GROUP, VERSION, PLURAL, ...) or partial(self.custom.<method>, GROUP, ...)
DRA_CALL = re.compile(r"self\.custom\.(\w+)[(,]\s*([A-Z_]+),\s*([A-Z_]+),\s*([A-Z_]+)")
DRA_WATCH = re.compile(r"self\._start_watch\(([A-Z_]+),\s*([A-Z_]+),\s*([A-Z_]+)")


def dra_driver_needs() -> set[Need]:
    from qbackbone.dra import publisher

    text = (REPO / "operator/qbackbone/dra/publisher.py").read_text()
    calls = DRA_CALL.findall(text)
    watches = text.count("w.stream(self.custom.list_cluster_custom_object")  # DRA_WATCH's
    assert len(calls) + watches == text.count("self.custom."), "a call the scan does not read"
    needs: set[Need] = set()
    for method, group, _version, plural in calls:
        assert method in DRA_VERBS, f"new API call {method}: add it to DRA_VERBS and the chart"
        needs.add((getattr(publisher, group), getattr(publisher, plural), DRA_VERBS[method]))
    for group, _version, plural in DRA_WATCH.findall(text):
        needs.add((getattr(publisher, group), getattr(publisher, plural), "watch"))
    return needs


def test_dra_driver_role_is_exactly_what_the_publisher_calls(k8s_bin_dir: Path) -> None:
    needs = dra_driver_needs()
    assert (G, "qpunodes", "watch") in needs and (DRA, "resourceslices", "update") in needs
    roles, _ = _roles(render(k8s_bin_dir, "--set", "draDriver.enabled=true"))
    assert roles["ClusterRole//qbackbone-dra-driver"] == needs
    docs = documents(render(k8s_bin_dir, "--set", "draDriver.enabled=true"))
    role = next(d for d in docs if d["kind"] == "ClusterRole"
                and d["metadata"]["name"] == "qbackbone-dra-driver")
    # reading and replacing DeviceClasses: only the driver's own
    named = [r for r in role["rules"] if set(r["verbs"]) & {"get", "update"}
             and r["resources"] == ["deviceclasses"]]
    assert [r.get("resourceNames") for r in named] == [["qpu.qbackbone.io"]]
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding"
                   and d["metadata"]["name"] == "qbackbone-dra-driver")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "qbackbone-dra-driver",
                                    "namespace": "qbackbone-system"}]
    without_class, _ = _roles(render(k8s_bin_dir, "--set", "draDriver.enabled=true",
                                     "--set", "draDriver.manageDeviceClass=false"))
    assert without_class["ClusterRole//qbackbone-dra-driver"] == {
        n for n in needs if n[1] != "deviceclasses"}


# ----- the DRA driver's kubelet plugin (operator/qbackbone/dra/kubeapi.py) -----

# self.custom.<method>(GROUP, VERSION, [namespace,] PLURAL, ...)
PLUGIN_CALL = re.compile(r"self\.custom\.(\w+)\(\s*([A-Z_]+),\s*([A-Z_]+),\s*(?:[a-z_]+,\s*)?"
                         r"([A-Z_]+)")
PLUGIN_VERBS = {**DRA_VERBS, "get_namespaced_custom_object": "get"}


def kubelet_plugin_needs() -> set[Need]:
    """Every call of the plugin's one API module; the ResourceSlice calls are its fake mode's."""
    from qbackbone.dra import kubeapi

    text = (REPO / "operator/qbackbone/dra/kubeapi.py").read_text()
    calls = PLUGIN_CALL.findall(text)
    assert len(calls) == text.count("self.custom."), "a call the scan does not read"
    needs: set[Need] = set()
    for method, group, _version, plural in calls:
        assert method in PLUGIN_VERBS, f"new API call {method}: add it to PLUGIN_VERBS and " \
            "the chart"
        needs.add((getattr(kubeapi, group), getattr(kubeapi, plural), PLUGIN_VERBS[method]))
    return needs


def test_dra_kubelet_plugin_role_is_exactly_what_the_plugin_calls(k8s_bin_dir: Path) -> None:
    needs = kubelet_plugin_needs()
    assert (DRA, "resourceclaims", "get") in needs and (G, "qpunodes", "list") in needs
    fake_only = {n for n in needs if n[1] == "resourceslices"}
    assert fake_only, "the fake mode's slice calls were not found"
    name = "ClusterRole//qbackbone-dra-kubelet-plugin"
    roles, docs = _roles(render(k8s_bin_dir, "--set", "draDriver.enabled=true"))
    assert roles[name] == needs - fake_only
    fake, _ = _roles(render(k8s_bin_dir, "--set", "draDriver.enabled=true",
                            "--set", "draDriver.kubeletPlugin.fakeQpus=2"))
    assert fake[name] == needs
    binding = next(d for d in docs if d["kind"] == "ClusterRoleBinding"
                   and d["metadata"]["name"] == "qbackbone-dra-kubelet-plugin")
    assert binding["subjects"] == [{"kind": "ServiceAccount",
                                    "name": "qbackbone-dra-kubelet-plugin",
                                    "namespace": "qbackbone-system"}]
    off, _ = _roles(render(k8s_bin_dir, "--set", "draDriver.enabled=true",
                           "--set", "draDriver.kubeletPlugin.enabled=false"))
    assert name not in off and "ClusterRole//qbackbone-dra-driver" in off
