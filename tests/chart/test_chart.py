"""The chart lints, renders what issue 9 asks for, refuses wrong values with a clear message,
and its CRDs are exactly crds/ (hack/verify-chart.sh fails on drift)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from qbackbone.dev.realnode import QPU_HOST_LABEL
from tests.chart.helm import ALL_FEATURES, CHART, REPO, documents, helm, render


def test_helm_lint_passes_with_default_and_all_features(k8s_bin_dir: Path) -> None:
    for extra in ([], ["-f", str(ALL_FEATURES)]):
        proc = helm(k8s_bin_dir, "lint", "--strict", str(CHART), *extra)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_chart_crds_are_the_generated_ones() -> None:
    ours = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert ours == sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    for name in ours:
        assert (CHART / "crds" / name).read_bytes() == (REPO / "crds" / name).read_bytes(), name


def test_verify_script_fails_on_crd_drift(k8s_bin_dir: Path, tmp_path: Path) -> None:
    for part in ("crds", "charts", "hack"):
        shutil.copytree(REPO / part, tmp_path / part)
    env = {**os.environ, "QB_K8S_BIN_DIR": str(k8s_bin_dir)}
    script = str(tmp_path / "hack" / "verify-chart.sh")
    ok = subprocess.run([script], capture_output=True, text=True, env=env, timeout=120,
                        check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    drifted = tmp_path / "charts" / "qbackbone" / "crds" / "qbackbone.io_qpunodes.yaml"
    drifted.write_text(drifted.read_text() + "# edited by hand\n")
    bad = subprocess.run([script], capture_output=True, text=True, env=env, timeout=120,
                         check=False)
    assert bad.returncode == 1
    assert "differs from crds/" in bad.stderr and "qbackbone.io_qpunodes.yaml" in bad.stderr


@pytest.mark.parametrize(("setting", "message"), [
    ("operator.replicas=-1", "at '/operator/replicas': minimum: got -1, want 0"),
    ("operator.replicas=2", "at '/operator/replicas': maximum: got 2, want 1"),
    ("operator.replica=1", "at '/operator': additional properties 'replica' not allowed"),
    ("imagee.tag=x", "additional properties 'imagee' not allowed"),
    ("image.pullPolicy=Sometimes", "at '/image/pullPolicy'"),
    ("operator.healthPort=70000", "at '/operator/healthPort': maximum"),
    ("devicePlugin.qpus[0].name=Bad_Name", "at '/devicePlugin/qpus/0/name'"),
    ("operator.watchNamespaces[0]=Not A Namespace", "at '/operator/watchNamespaces/0'"),
    ("operator.schedulerPolicy=a/b/c", "at '/operator/schedulerPolicy'"),
    ("draDriver.resync=0", "at '/draDriver/resync'"),
    ("draDriver.enable=true", "at '/draDriver': additional properties 'enable' not allowed"),
    ("metrics.serviceMonitor.enabled=true",
     "metrics.serviceMonitor.enabled needs metrics.enabled: true"),
    ("history.maxAge=1w", "at '/history/maxAge'"),
    ("history.maxJobs=0", "at '/history/maxJobs': minimum: got 0, want 1"),
    ("history.size=lots", "at '/history/size'"),
    ("history.storageClassName=Not_A_Class", "at '/history/storageClassName'"),
    ("history.enable=false", "at '/history': additional properties 'enable' not allowed"),
])
def test_wrong_values_are_rejected_with_the_path(k8s_bin_dir: Path, setting: str,
                                                 message: str) -> None:
    proc = helm(k8s_bin_dir, "template", "qbackbone", str(CHART), "--set", setting)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr


def test_every_value_is_commented() -> None:
    """Each value of values.yaml has a comment line right above it, or above the map holding
    it (e.g. ``resources`` documents its ``requests.cpu``)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    ancestors: list[tuple[int, bool]] = []  # (indent, commented) of the open maps
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "- ")) or ":" not in stripped:
            continue
        indent = len(line) - len(line.lstrip())
        while ancestors and ancestors[-1][0] >= indent:
            ancestors.pop()
        commented = i > 0 and lines[i - 1].strip().startswith("#")
        if stripped.endswith(":"):
            ancestors.append((indent, commented))
            continue
        assert commented or any(c for _, c in ancestors), \
            f"values.yaml line {i + 1} ({stripped!r}) has no comment"


def test_schema_knows_every_default_value() -> None:
    """values.yaml and values.schema.json describe the same keys (no undocumented value)."""
    import json
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: object, sch: dict[str, object], path: str) -> None:
        if isinstance(node, dict) and isinstance(sch.get("properties"), dict):
            props = sch["properties"]
            assert isinstance(props, dict)
            for key, value in node.items():
                assert key in props, f"{path}{key} is not in values.schema.json"
                walk(value, props[key], f"{path}{key}.")
    walk(values, schema, "")


def test_default_render_is_secure_and_single_replica(k8s_bin_dir: Path) -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in documents(render(k8s_bin_dir))}
    deploy = docs[("Deployment", "qbackbone-operator")]
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}
    pod = deploy["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["resources"]["requests"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["command"] == ["qbackbone"]
    assert container["args"][:5] == [
        "operator", "--liveness=http://0.0.0.0:8080/healthz",
        "--worker-image=qbackbone:0.1.0", "--worker-image-pull-policy=IfNotPresent",
        "--worker-command=qbackbone"]
    assert "--worker-service-account=qbackbone-worker" in container["args"]
    # the chart's (default) policy, created or not, governs the joint plan
    assert "--scheduler-policy=qbackbone-system/default" in container["args"]
    assert ("ServiceAccount", "qbackbone-worker") in docs
    plugin = docs[("DaemonSet", "qbackbone-device-plugin")]["spec"]["template"]["spec"]
    assert plugin["automountServiceAccountToken"] is False
    assert {"name": "device-plugins", "hostPath": {
        "path": "/var/lib/kubelet/device-plugins", "type": "Directory"}} in plugin["volumes"]
    assert plugin["containers"][0]["args"][:3] == [
        "device-plugin", "--config=/etc/qbackbone/qpus.yaml",
        "--plugin-dir=/var/lib/kubelet/device-plugins"]
    assert "--qpunodes" not in plugin["containers"][0]["args"]
    kinds = {kind for kind, _ in docs}
    assert not kinds & {"QPUNode", "InvocationPolicy", "Service", "ServiceMonitor"}
    assert ("ClusterRole", "qbackbone-device-plugin") not in docs
    assert not {name for _, name in docs if "dra-driver" in name}  # draDriver: off by default


def test_dra_driver_renders_when_enabled(k8s_bin_dir: Path) -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in documents(render(
        k8s_bin_dir, "--set", "draDriver.enabled=true", "--set", "draDriver.resync=12"))}
    deploy = docs[("Deployment", "qbackbone-dra-driver")]
    assert deploy["spec"]["replicas"] == 1
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}  # never two publishers
    pod = deploy["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "qbackbone-dra-driver"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["command"] == ["qbackbone"]
    assert container["args"] == ["dra-driver", "--resync=12"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert ("ServiceAccount", "qbackbone-dra-driver") in docs
    off = documents(render(k8s_bin_dir, "--set", "draDriver.enabled=true", "--set",
                           "draDriver.manageDeviceClass=false"))
    args = next(d for d in off if d["kind"] == "Deployment"
                and d["metadata"]["name"] == "qbackbone-dra-driver")[
        "spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--no-device-class" in args


def test_dev_values_render_for_the_dev_clusters_real_node(k8s_bin_dir: Path) -> None:
    """values-dev.yaml: the imported image, never pulled; the plugin serves QPUNodes (with
    read access to them) on the one node; workers may run in default too."""
    docs = {(d["kind"], d["metadata"]["name"]): d for d in documents(
        render(k8s_bin_dir, "-f", str(CHART / "values-dev.yaml")))}
    operator = docs[("Deployment", "qbackbone-operator")]["spec"]["template"]["spec"]
    (container,) = operator["containers"]
    assert container["image"] == "qbackbone:dev" and container["imagePullPolicy"] == "Never"
    assert "--worker-image-pull-policy=Never" in container["args"]
    plugin = docs[("DaemonSet", "qbackbone-device-plugin")]["spec"]["template"]["spec"]
    assert plugin["automountServiceAccountToken"] is True
    assert plugin["nodeSelector"] == {QPU_HOST_LABEL: "true"}  # cluster up labels its node
    assert "--qpunodes" in plugin["containers"][0]["args"]
    role = docs[("ClusterRole", "qbackbone-device-plugin")]
    assert role["rules"] == [{"apiGroups": ["qbackbone.io"], "resources": ["qpunodes"],
                              "verbs": ["get", "list", "watch"]}]
    assert {(kind, name) for kind, name in docs if kind == "QPUNode"} == {
        ("QPUNode", "dev-ideal-a"), ("QPUNode", "dev-ideal-b"), ("QPUNode", "dev-noisy")}
    assert docs[("RoleBinding", "qbackbone-worker")]["metadata"]["namespace"] in (
        "qbackbone-system", "default")


def test_all_features_render(k8s_bin_dir: Path) -> None:
    docs = documents(render(k8s_bin_dir, "-f", str(ALL_FEATURES)))
    kinds = [d["kind"] for d in docs]
    assert kinds.count("QPUNode") == 2 and "InvocationPolicy" in kinds
    assert "Service" in kinds and "ServiceMonitor" in kinds
    bindings = [d for d in docs if d["kind"] == "RoleBinding"
                and d["metadata"]["name"] == "qbackbone-operator"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["qb-jobs-a", "qb-jobs-b"]
    workers = [d for d in docs if d["kind"] == "ServiceAccount"
               and d["metadata"]["name"] == "qbackbone-worker"]
    assert sorted(w["metadata"]["namespace"] for w in workers) == ["qb-jobs-a", "qb-jobs-b"]


def test_the_scheduler_policy_is_the_charts_policy_unless_named(k8s_bin_dir: Path) -> None:
    def args(*settings: str) -> list[str]:
        docs = documents(render(k8s_bin_dir, *(a for s in settings for a in ("--set", s))))
        deploy = next(d for d in docs if d["kind"] == "Deployment"
                      and d["metadata"]["name"] == "qbackbone-operator")
        return list(deploy["spec"]["template"]["spec"]["containers"][0]["args"])

    assert "--scheduler-policy=team-a/cluster" in args("invocationPolicy.namespace=team-a",
                                                        "invocationPolicy.name=cluster")
    assert "--scheduler-policy=ops/main" in args("operator.schedulerPolicy=ops/main")


def _operator_and_claims(k8s_bin_dir: Path, *settings: str) -> tuple[dict, list[dict]]:
    docs = documents(render(k8s_bin_dir, *(a for s in settings for a in ("--set", s))))
    (deploy,) = [d for d in docs if d["kind"] == "Deployment"
                 and d["metadata"]["name"] == "qbackbone-operator"]
    return deploy["spec"]["template"]["spec"], [
        d for d in docs if d["kind"] == "PersistentVolumeClaim"]


def test_history_is_a_claim_mounted_in_the_non_root_operator(k8s_bin_dir: Path) -> None:
    """history.enabled (default): a ReadWriteOnce claim of history.size mounted at
    /var/lib/qbackbone, QBACKBONE_HISTORY naming the file on it, retention from the values,
    and fsGroup making the volume writable by the non-root operator."""
    pod, claims = _operator_and_claims(k8s_bin_dir)
    (claim,) = claims
    assert claim["metadata"]["name"] == "qbackbone-history"
    assert claim["metadata"]["namespace"] == "qbackbone-system"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"] == {"requests": {"storage": "1Gi"}}
    assert "storageClassName" not in claim["spec"]  # the cluster's default class
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsGroup"] == 10001
    assert {"name": "history", "persistentVolumeClaim": {"claimName": "qbackbone-history"}} \
        in pod["volumes"]
    (container,) = pod["containers"]
    assert {"name": "history", "mountPath": "/var/lib/qbackbone"} in container["volumeMounts"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["QBACKBONE_HISTORY"] == "/var/lib/qbackbone/history.sqlite3"
    assert (env["QBACKBONE_HISTORY_MAX_AGE"], env["QBACKBONE_HISTORY_MAX_JOBS"]) == (
        "30d", "10000")
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_history_values_reach_the_claim_and_the_operator(k8s_bin_dir: Path) -> None:
    pod, claims = _operator_and_claims(
        k8s_bin_dir, "history.size=5Gi", "history.storageClassName=fast-ssd",
        "history.maxAge=7d", "history.maxJobs=2500")
    (claim,) = claims
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert (env["QBACKBONE_HISTORY_MAX_AGE"], env["QBACKBONE_HISTORY_MAX_JOBS"]) == (
        "7d", "2500")
    from qbackbone.k8s.history import retention_from_env  # the operator reads them so
    retention = retention_from_env(env)
    assert (retention.max_age_seconds, retention.max_jobs) == (7 * 86_400.0, 2500)


def test_history_disabled_has_no_claim_and_no_history(k8s_bin_dir: Path) -> None:
    pod, claims = _operator_and_claims(k8s_bin_dir, "history.enabled=false")
    assert claims == []
    assert [v["name"] for v in pod["volumes"]] == ["tmp"]
    (container,) = pod["containers"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp"]
    assert not [e for e in container["env"] if e["name"].startswith("QBACKBONE_HISTORY")]
    dev = documents(render(k8s_bin_dir, "-f", str(CHART / "values-dev.yaml")))
    assert not [d for d in dev if d["kind"] == "PersistentVolumeClaim"]  # no provisioner there
