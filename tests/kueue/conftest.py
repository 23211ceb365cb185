"""Fixtures of tests/kueue: a control plane of its own with the QPU node agent's nodes and
kueue (``hack/build-kueue.sh``) running against it as a host process (docs/kueue.md).

A control plane of its own, not the session's: kueue's pod webhook fails closed, and the other
cluster tests' pods must never depend on it. The real node is never started here.

kueue comes from ``$QB_KUEUE_BIN_DIR`` or the build script's cache. Without it the tests are
skipped with the reason, unless ``QB_REQUIRE_CLUSTER=1`` or ``QB_REQUIRE_KUEUE=1`` (CI), which
turn the skip into a failure (and a skipped cluster test fails a QB_REQUIRE_CLUSTER run anyway,
tests/cluster/fixtures.py).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from qbackbone.dev import ClusterInfo, LocalCluster
from qbackbone.dev.agentproc import start_node_agent
from qbackbone.dev.kueue import (
    KueueBinary,
    KueueInfo,
    KueueMissing,
    find_kueue,
    start_kueue,
    stop_kueue,
)
from qbackbone.dev.kueue_manifests import QPU_DEVICE_CLASS
from qbackbone.dev.procs import stop
from qbackbone.dev.waiting import wait_for

# Two stand-in nodes of the QPU node agent (names of their own: this is another cluster).
KUEUE_NODES = ("kq-host-a:kq-qpu-a", "kq-host-b:kq-qpu-b")
OPERATOR_NAMESPACE = "qbackbone-system"
# A per-QPU DeviceClass (its selector pins one device), also counted as a QPU by kueue.
PINNED_CLASS = "qpu-1.qpu.qbackbone.io"


def _required() -> bool:
    return "1" in (os.environ.get("QB_REQUIRE_CLUSTER"), os.environ.get("QB_REQUIRE_KUEUE"))


@pytest.fixture(scope="session")
def kueue_binary() -> KueueBinary:
    try:
        return find_kueue()
    except KueueMissing as exc:
        if _required():
            pytest.fail(f"QB_REQUIRE_CLUSTER/QB_REQUIRE_KUEUE=1 but {exc}", pytrace=False)
        pytest.skip(str(exc))


@dataclass
class KueueCluster:
    """The control plane, its API client, the node agent's node names and kueue."""

    info: ClusterInfo
    api: client.ApiClient
    nodes: tuple[str, ...]
    kueue: KueueInfo

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def namespace(self, stem: str) -> str:
        """A fresh namespace (with its default ServiceAccount, which pods need)."""
        name = f"{stem}-{uuid.uuid4().hex[:6]}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        wait_for(lambda: self.core.read_namespaced_service_account("default", name), 30,
                 what=f"default ServiceAccount in {name}")
        return name


@pytest.fixture(scope="package")  # torn down once tests/kueue is done
def kueue_cluster(kueue_binary: KueueBinary, k8s_bin_dir: Path,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[KueueCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("kueue-cluster"), k8s_bin_dir, tied=True)
    info = local.start()
    print(f"\nkueue's dev cluster up in {info.started_seconds}s; logs in {info.log_dir}")
    agent = None
    kueue = None
    try:
        agent = start_node_agent(info, KUEUE_NODES, tied=True)
        kueue = start_kueue(info, exclude_namespaces=(OPERATOR_NAMESPACE,), tied=True,
                            device_classes=(QPU_DEVICE_CLASS, PINNED_CLASS),
                            bin_dir=kueue_binary.executable.parent)
        print(f"kueue up in {kueue.started_seconds}s (webhooks {kueue.webhook_url}); "
              f"log {kueue.log}")
        api = config.new_client_from_config(config_file=info.kubeconfig)
        yield KueueCluster(info, api, tuple(n.split(":")[0] for n in KUEUE_NODES), kueue)
        api.close()
    finally:
        if kueue is not None:
            stop_kueue(info, kueue)
        if agent is not None:
            stop(agent[1], agent[0])
        local.stop()


def delete_quietly(call: object, *args: str) -> None:
    """Call a delete function, ignoring 404."""
    try:
        call(*args)  # type: ignore[operator]
    except ApiException as exc:
        if exc.status != 404:
            raise
