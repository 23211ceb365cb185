"""``--qpunodes``: QPUNodes applied to the cluster are advertised by the plugin of the node
they name (or by every plugin when they name none), beside the QPU list file."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qbackbone.deviceplugin import ConfigResourceManager
from qbackbone.deviceplugin.qpunodes import QPUNodeResourceManager, qpu_of


def qpunode(name: str, provider: str = "aer", backend: str = "aer_simulator",
            **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"backend": {"provider": provider, "name": backend}, **spec}}


class Cluster:
    """The QPUNodes the fake API returns, or the error it raises."""

    def __init__(self, *objects: Mapping[str, Any]) -> None:
        self.objects: list[Mapping[str, Any]] = list(objects)
        self.error: Exception | None = None

    def __call__(self) -> Sequence[Mapping[str, Any]]:
        if self.error is not None:
            raise self.error
        return self.objects


def manager(tmp_path: Path, cluster: Cluster, node: str = "host-1",
            listed: str = "qpus: []") -> QPUNodeResourceManager:
    config = tmp_path / "qpus.yaml"
    config.write_text(listed)
    return QPUNodeResourceManager(ConfigResourceManager(config, node=node), node, cluster,
                                  min_interval=0.0)


def test_qpunodes_on_this_node_or_on_none_are_served(tmp_path: Path) -> None:
    cluster = Cluster(qpunode("mine", nodeName="host-1"), qpunode("theirs", nodeName="host-2"),
                      qpunode("anywhere", "fake", "fake_manila"))
    states = manager(tmp_path, cluster).states()
    assert sorted(states) == ["anywhere", "mine"]
    assert states["anywhere"].qpu.provider == "fake"
    assert states["anywhere"].qpu.resource_name == "qpu.qbackbone.io/anywhere"


def test_a_qpunode_applied_later_is_served_and_a_deleted_one_withdrawn(tmp_path: Path) -> None:
    cluster = Cluster(qpunode("first"))
    resources = manager(tmp_path, cluster)
    cluster.objects = [qpunode("second")]
    resources.refresh()
    assert sorted(resources.states()) == ["second"]


def test_the_file_wins_and_the_last_list_stays_when_the_api_is_down(tmp_path: Path) -> None:
    cluster = Cluster(qpunode("shared", "fake", "fake_manila"), qpunode("only-api"))
    resources = manager(tmp_path, cluster, listed="qpus: [{name: shared, provider: aer, "
                        "backend: aer_simulator, healthy: false}]")
    assert resources.states()["shared"].qpu.provider == "aer"
    assert not resources.states()["shared"].healthy
    cluster.error = ConnectionError("API server unreachable")
    resources.refresh()
    assert sorted(resources.states()) == ["only-api", "shared"]
    assert resources.last_error == "API server unreachable"


def test_a_qpunode_that_cannot_be_a_qpu_is_skipped(tmp_path: Path) -> None:
    bad = {"metadata": {"name": "Bad_Name"}, "spec": {"backend": {"provider": "aer",
                                                                  "name": "aer_simulator"}}}
    cloud = qpunode("cloud", "ibm-runtime", "ibm_torino",
                    credentialsSecretRef={"name": "ibm-token"})
    states = manager(tmp_path, Cluster(bad, cloud)).states()
    assert sorted(states) == ["cloud"]
    assert qpu_of(cloud).credentials is not None
