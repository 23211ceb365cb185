"""Fixtures for tests against the real local control plane (DESIGN.md section 7).

Loaded as a plugin by the root conftest, so every directory that needs a cluster (cluster,
operator) shares one per session.

Binaries come from ``$QB_K8S_BIN_DIR`` or the cache filled by ``hack/build-k8s.sh``. Without
them the tests are skipped with the reason, unless ``QB_REQUIRE_CLUSTER=1`` (CI), which turns
the skip into a failure.

``QB_TEST_KUBECONFIG=<file>`` runs the same tests against any cluster instead (kind, e.g.
through pytest-kind, or a real one): the session's cluster is that kubeconfig's, and the QPU
node agent joins it as extra nodes from this machine. kubectl comes from ``$QB_K8S_BIN_DIR``,
the cache, or ``PATH``. Tests that need a control plane of their own (the chart install, the
real node) still start one from the binaries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from qbackbone.dev import BinariesMissing, ClusterInfo, LocalCluster, find_bin_dir
from qbackbone.dev.agentproc import start_node_agent
from qbackbone.dev.crds import install_crds
from qbackbone.dev.procs import stop
from qbackbone.dev.waiting import wait_for

# The agent's host carries two QPUs; a second host carries one.
AGENT_NODES = ("qpu-host-a:qpu-a,qpu-b", "qpu-host-c:qpu-c")

_state: dict[str, ClusterInfo] = {}
_skipped: list[str] = []
# Skips that are not about the cluster (e.g. no crds/*.yaml yet) do not fail CI.
_HARMLESS_SKIPS = ("got empty parameter set",)


def _require_cluster() -> bool:
    return os.environ.get("QB_REQUIRE_CLUSTER") == "1"


_CLUSTER_DIRS = (Path(__file__).parent, Path(__file__).parent.parent / "operator")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(d in Path(str(item.fspath)).parents for d in _CLUSTER_DIRS):
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    info = _state.get("cluster")
    if report.failed and info is not None:
        report.sections.append(("dev cluster", f"control-plane and node-agent logs: "
                                               f"{info.log_dir}"))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "cluster" in report.keywords:
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        if not any(h in reason for h in _HARMLESS_SKIPS):
            _skipped.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under ``QB_REQUIRE_CLUSTER=1`` (CI) a skipped cluster test fails the run."""
    if _require_cluster() and _skipped:
        print(f"\nQB_REQUIRE_CLUSTER=1 but {len(_skipped)} cluster test(s) were skipped:")
        for line in _skipped:
            print(f"  {line}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


EXTERNAL_KUBECONFIG = "QB_TEST_KUBECONFIG"


def external_kubeconfig() -> Path | None:
    """The kubeconfig of a cluster the tests should use instead of their own, if any."""
    value = os.environ.get(EXTERNAL_KUBECONFIG)
    return Path(value).expanduser() if value else None


@pytest.fixture(scope="session")
def k8s_bin_dir() -> Path:
    try:
        return find_bin_dir()
    except BinariesMissing as exc:
        kubectl = shutil.which("kubectl")
        if external_kubeconfig() is not None and kubectl is not None:
            return Path(kubectl).parent  # enough for the session cluster's tests
        if _require_cluster():
            pytest.fail(f"QB_REQUIRE_CLUSTER=1 but {exc}", pytrace=False)
        pytest.skip(str(exc))


def _server_of(kubeconfig: Path) -> str:
    loaded = yaml.safe_load(kubeconfig.read_text())
    context = next(c["context"] for c in loaded["contexts"]
                   if c["name"] == loaded["current-context"])
    return str(next(c["cluster"]["server"] for c in loaded["clusters"]
                    if c["name"] == context["cluster"]))


@pytest.fixture(scope="session")
def cluster(k8s_bin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """etcd, kube-apiserver, kube-controller-manager and kube-scheduler, once per session;
    or the cluster of ``$QB_TEST_KUBECONFIG``."""
    external = external_kubeconfig()
    if external is not None:
        state = tmp_path_factory.mktemp("external-cluster")
        (state / "logs").mkdir()
        info = ClusterInfo(str(state), str(external), _server_of(external), str(k8s_bin_dir))
        _state["cluster"] = info
        print(f"\nusing the cluster of {EXTERNAL_KUBECONFIG}={external} ({info.server})")
        yield info
        return
    local = LocalCluster(tmp_path_factory.mktemp("dev-cluster"), k8s_bin_dir, tied=True)
    info = local.start()
    _state["cluster"] = info
    print(f"\ndev cluster up in {info.started_seconds}s; logs in {info.log_dir}")
    yield info
    local.stop()


@pytest.fixture(scope="session")
def api(cluster: ClusterInfo) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=cluster.kubeconfig)
    yield api_client
    api_client.close()


@pytest.fixture(scope="session")
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture(scope="session")
def node_agent(cluster: ClusterInfo) -> Iterator[tuple[str, ...]]:
    """The QPU node agent serving ``AGENT_NODES``; yields the node names."""
    # Pods may reach the API server from any node, as with a service-account token on a
    # kubelet (the operator's worker pods can land here when both agents run).
    proc, record = start_node_agent(cluster, AGENT_NODES, tied=True,
                                    pod_env=[f"KUBECONFIG={cluster.kubeconfig}"])
    yield tuple(spec.split(":")[0] for spec in AGENT_NODES)
    stop(record, proc)


def run_kubectl(cluster: ClusterInfo, *args: str, stdin: str | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """kubectl against the test cluster; the caller judges the outcome."""
    return subprocess.run([str(Path(cluster.bin_dir) / "kubectl"),
                           f"--kubeconfig={cluster.kubeconfig}", *args],
                          capture_output=True, text=True, timeout=timeout, input=stdin,
                          check=False)


@pytest.fixture(scope="session")
def crds(cluster: ClusterInfo, api: client.ApiClient) -> None:
    """The generated CRDs (crds/, of which the chart's are a checked copy), applied once."""
    install_crds(cluster, api, Path(__file__).resolve().parents[2] / "crds")


@pytest.fixture()
def namespace(core: client.CoreV1Api, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace per test, with its default ServiceAccount (pods need it)."""
    name = f"t-{request.node.name[:40].lower().replace('_', '-').strip('-')}-"
    name = "".join(c for c in name if c.isalnum() or c == "-") + uuid.uuid4().hex[:6]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(lambda: core.read_namespaced_service_account("default", name), 30,
             what=f"default ServiceAccount in {name}")
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise
