"""The chart's device plugin: one QPU list for all nodes, each plugin told its node name, so
it advertises only the QPUs on its node (docs/device-plugin.md)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from qbackbone.deviceplugin import for_node, parse_config
from tests.chart.helm import CHART, documents, helm, render

QPUS = [{"name": "qpu-a", "provider": "aer", "backend": "aer_simulator", "nodes": ["host-1"]},
        {"name": "qpu-b", "provider": "fake", "backend": "fake_nairobi",
         "nodes": ["host-2", "host-3"]},
        {"name": "shared", "provider": "aer", "backend": "aer_simulator"}]


def test_each_plugin_knows_its_node_and_reads_the_shared_list(k8s_bin_dir: Path) -> None:
    docs = documents(render(k8s_bin_dir, "--set-json", f"devicePlugin.qpus={json.dumps(QPUS)}"))
    daemonset = next(d for d in docs if d["kind"] == "DaemonSet")
    container = daemonset["spec"]["template"]["spec"]["containers"][0]
    assert "--node-name=$(NODE_NAME)" in container["args"]
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} \
        in container["env"]
    configmap = next(d for d in docs if d["kind"] == "ConfigMap"
                     and d["metadata"]["name"] == "qbackbone-device-plugin")
    qpus = parse_config(yaml.safe_load(configmap["data"]["qpus.yaml"]), "rendered")
    assert [q.name for q in for_node(qpus, "host-1")] == ["qpu-a", "shared"]
    assert [q.name for q in for_node(qpus, "host-3")] == ["qpu-b", "shared"]


def test_schema_refuses_a_bad_node_list(k8s_bin_dir: Path) -> None:
    for nodes, where in (([], "/devicePlugin/qpus/0/nodes"),
                         (["Host_1"], "/devicePlugin/qpus/0/nodes/0")):
        bad = [{**QPUS[0], "nodes": nodes}]
        proc = helm(k8s_bin_dir, "template", "qbackbone", str(CHART),
                    "--set-json", f"devicePlugin.qpus={json.dumps(bad)}")
        assert proc.returncode != 0 and f"at '{where}'" in proc.stderr, proc.stderr
