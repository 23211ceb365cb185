"""The chart's kubelet-plugin DaemonSet (draDriver.kubeletPlugin): the kubelet's plugin and
registration directories and the CDI directory from the host at the paths the plugin is told,
NODE_NAME from the downward API, a gRPC liveness probe on the health port the plugin serves;
off with draDriver or kubeletPlugin disabled. (Its RBAC: tests/chart/test_rbac.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.chart.helm import ALL_FEATURES, documents, render

NAME = "qbackbone-dra-kubelet-plugin"


def daemonset(text: str) -> dict[str, Any] | None:
    return next((d for d in documents(text) if d["kind"] == "DaemonSet"
                 and d["metadata"]["name"] == NAME), None)


def test_daemonset_mounts_probes_and_flags(k8s_bin_dir: Path) -> None:
    ds = daemonset(render(k8s_bin_dir, "--set", "draDriver.enabled=true",
                          "--set", "draDriver.kubeletPlugin.kubeletRoot=/data/kubelet",
                          "--set", "draDriver.kubeletPlugin.fakeQpus=3"))
    assert ds is not None
    pod = ds["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == NAME
    container = pod["containers"][0]
    args = container["args"]
    assert args[:2] == ["dra-driver", "kubelet-plugin"]
    assert {"--kubelet-root=/data/kubelet", "--node-name=$(NODE_NAME)",
            "--cdi-dir=/var/run/cdi", "--healthcheck-port=51515", "--fake-qpus=3"} <= set(args)
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    host = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    for name, path in (("plugin-dir", "/data/kubelet/plugins/qpu.qbackbone.io"),
                       ("plugins-registry", "/data/kubelet/plugins_registry"),
                       ("cdi", "/var/run/cdi")):
        assert mounts[name] == host[name] == path  # same path inside: GetInfo's endpoint
    probe = container["livenessProbe"]
    assert probe["grpc"] == {"port": 51515, "service": "liveness"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_all_features_and_off(k8s_bin_dir: Path) -> None:
    ds = daemonset(render(k8s_bin_dir, "-f", str(ALL_FEATURES)))
    assert ds is not None
    container = ds["spec"]["template"]["spec"]["containers"][0]
    assert "--credentials-host-dir=/etc/qbackbone/credentials" in container["args"]
    assert "--verbose" in container["args"]
    assert not any(a.startswith("--fake-qpus") for a in container["args"])
    assert daemonset(render(k8s_bin_dir)) is None
    assert daemonset(render(k8s_bin_dir, "--set", "draDriver.enabled=true", "--set",
                            "draDriver.kubeletPlugin.enabled=false")) is None
