"""One QPU list for every node: the plugin on a node advertises only the QPUs whose ``nodes``
name it (and those tied to no node); a QPU moved to another node in the list is withdrawn."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from qbackbone.deviceplugin import QPU, ConfigError, ConfigResourceManager, for_node, parse_config
from tests.deviceplugin.conftest import streaming
from tests.deviceplugin.kubelet import FakeKubelet, wait_for

LIST = """qpus:
  - {name: qpu-a, provider: aer, backend: aer_simulator, nodes: [host-1]}
  - {name: qpu-b, provider: fake, backend: fake_nairobi, nodes: [host-2]}
  - {name: torino, provider: ibm-runtime, backend: ibm_torino,
     credentialsSecretRef: {name: ibm-token}, nodes: [host-1, host-2]}
  - {name: shared, provider: aer, backend: aer_simulator}
"""


def names(qpus: Any) -> list[str]:
    return sorted(q.name if isinstance(q, QPU) else q for q in qpus)


def test_each_node_gets_its_own_qpus_and_the_untied_ones() -> None:
    qpus = parse_config(yaml.safe_load(LIST), "cfg")
    by_name = {q.name: q for q in qpus}
    assert by_name["qpu-a"].nodes == ("host-1",) and by_name["shared"].nodes == ()
    assert by_name["torino"].nodes == ("host-1", "host-2")
    assert names(for_node(qpus, "host-1")) == ["qpu-a", "shared", "torino"]
    assert names(for_node(qpus, "host-2")) == ["qpu-b", "shared", "torino"]
    assert names(for_node(qpus, "host-3")) == ["shared"]
    assert names(for_node(qpus, None)) == ["shared"]  # a plugin that does not know its node


@pytest.mark.parametrize(("nodes", "message"), [
    ([], "nodes must be a non-empty list"),
    ("host-1", "nodes must be a non-empty list"),
    (["Host_1"], "'Host_1' is not a node name"),
    (["host-1", "host-1"], "lists a node twice"),
])
def test_bad_node_lists_are_rejected_precisely(nodes: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=r"^cfg: qpus\[0\] \(qpu-a\)") as err:
        parse_config([{"name": "qpu-a", "provider": "aer", "backend": "x", "nodes": nodes}],
                     "cfg")
    assert message in str(err.value)


def test_config_manager_serves_its_node_and_follows_moves(tmp_path: Path) -> None:
    path = tmp_path / "qpus.yaml"
    path.write_text(LIST)
    host1 = ConfigResourceManager(path, node="host-1")
    host2 = ConfigResourceManager(path, node="host-2")
    assert names(host1.states()) == ["qpu-a", "shared", "torino"]
    assert names(host2.states()) == ["qpu-b", "shared", "torino"]
    tmp = tmp_path / "next.yaml"  # qpu-a moves to host-2 (a ConfigMap update swaps the file)
    tmp.write_text(LIST.replace("nodes: [host-1]}", "nodes: [host-2]}"))
    os.replace(tmp, path)
    host1.refresh(force=True)
    host2.refresh(force=True)
    assert names(host1.states()) == ["shared", "torino"]
    assert names(host2.states()) == ["qpu-a", "qpu-b", "shared", "torino"]


def test_the_process_registers_only_its_nodes_qpus(kubelet: FakeKubelet, plugin_dir: Path,
                                                   tmp_path: Path) -> None:
    config = tmp_path / "qpus.yaml"
    config.write_text(LIST)
    env = {**os.environ, "NODE_NAME": "host-2"}  # as the DaemonSet sets it (spec.nodeName)
    proc = subprocess.Popen([sys.executable, "-m", "qbackbone.deviceplugin", "--config",
                             str(config), "--plugin-dir", str(plugin_dir),
                             "--poll-interval", "0.1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for qpu in ("qpu-b", "torino", "shared"):
            streaming(kubelet, f"qpu.qbackbone.io/{qpu}")
        assert kubelet.registered("qpu.qbackbone.io/qpu-a") == 0
        # Moving torino off this node withdraws it (its socket goes away).
        config.write_text(LIST.replace("nodes: [host-1, host-2]", "nodes: [host-1]"))
        wait_for(lambda: not (plugin_dir / "qbackbone-torino.sock").exists(), 10)
        assert (plugin_dir / "qbackbone-qpu-b.sock").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert "device plugin on node host-2 serving" in err
    assert "qpu.qbackbone.io/qpu-a" not in err
