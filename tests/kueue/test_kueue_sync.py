"""`qbackbone dev cluster kueue-sync`: kueue reads its deviceClassMappings at start only, so a
QPU published after kueue started is counted once kueue is restarted with its class."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from qbackbone.dev.cli import _kueue_sync
from qbackbone.dev.cluster import LocalCluster
from qbackbone.dev.kueue import KueueBinary, KueueInfo, start_kueue, stop_kueue
from qbackbone.dev.kueue_manifests import QPU_DEVICE_CLASS
from qbackbone.dra.classes import qpu_class, qpu_class_name


def mapped(state_dir: Path) -> list[str]:
    info = KueueInfo.load(state_dir)
    assert info is not None and info.process is not None and info.process.alive()
    configuration = yaml.safe_load(Path(info.config).read_text())
    (mapping,) = configuration["resources"]["deviceClassMappings"]
    assert mapping["name"] == "qpu.qbackbone.io/qpus"
    return list(mapping["deviceClassNames"])


def test_kueue_sync_counts_the_qpu_classes_published_since_it_started(
        kueue_binary: KueueBinary, k8s_bin_dir: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    local = LocalCluster(tmp_path / "cluster", k8s_bin_dir, tied=True)
    info = local.start()
    try:
        start_kueue(info, exclude_namespaces=("qbackbone-system",), tied=True,
                    bin_dir=kueue_binary.executable.parent)
        assert mapped(Path(info.state_dir)) == [QPU_DEVICE_CLASS]
        api = config.new_client_from_config(config_file=info.kubeconfig)
        try:
            client.CustomObjectsApi(api).create_cluster_custom_object(
                "resource.k8s.io", "v1", "deviceclasses", qpu_class("late-qpu"))
        finally:
            api.close()
        monkeypatch.setenv("QB_KUEUE_BIN_DIR", str(kueue_binary.executable.parent))
        assert _kueue_sync(info) == 0
        assert mapped(Path(info.state_dir)) == [QPU_DEVICE_CLASS, qpu_class_name("late-qpu")]
        restarted = KueueInfo.load(Path(info.state_dir))
        assert restarted is not None and "qbackbone-system" in restarted.excluded_namespaces
    finally:
        stop_kueue(info)
        local.stop()
