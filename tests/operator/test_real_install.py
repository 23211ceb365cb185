"""The chart installed for real (issue 16): `helm install` with values-dev.yaml on a control
plane whose node is real (kubelet, containerd, runc, kube-proxy), the image built without
Docker and imported into containerd. The operator runs as a container under its own service
account, the device-plugin DaemonSet registers the QPUs with the kubelet (QPUNodes applied
with kubectl included), fragment pods run as containers. A SingleQPU job, a Distributed job
with LOCC precedence and a problem job reach verified results; deleting the operator pod
mid-job loses and repeats nothing; deleting a QPUNode mid-job moves its work or fails it
with the reason.

Skips (a failure under QB_REQUIRE_REAL_NODE=1) only when this host cannot run a real node.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from qbackbone.dev import ClusterInfo
from qbackbone.dev.realnode import (
    QPU_HOST_LABEL,
    RealNode,
    real_node_unavailable,
    start_real_node,
)
from qbackbone.dev.waiting import wait_for
from qbackbone.k8s.names import LABEL_QPU
from tests.chart.helm import CHART
from tests.cluster.fixtures import run_kubectl
from tests.operator.kit import condition, qpunode, quantum_job
from tests.operator.realnode_kit import cannot, k8s_binaries, real_control_plane
from tests.operator.test_jobs import exact

pytestmark = pytest.mark.slow

RELEASE, NS = "qbackbone", "qbackbone-system"
JOBS = "default"  # values-dev.yaml lets jobs run here
NODE = "qb-install-node"
G, V = "qbackbone.io", "v1alpha1"
GHZ8 = "\n".join(["OPENQASM 2.0;", 'include "qelib1.inc";', "qreg q[8];", "h q[0];",
                  *[f"cx q[{i}], q[{i + 1}];" for i in range(7)]]) + "\n"
GHZ8_OBSERVABLES = ["ZZZZZZZZ", "IIIIIIZZ", "XXXXXXXX"]
BELL4 = """OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
h q[0];
cx q[0], q[1];
ry(0.6) q[2];
cx q[2], q[3];
"""
BELL4_OBSERVABLES = ["ZZII", "IIZZ", "XXII"]
LOCC_ONLY = {"apiVersion": f"{G}/{V}", "kind": "InvocationPolicy",
             "metadata": {"name": "locc-only"},
             "spec": {"cutting": {"allowedCutKinds": ["loccWire"]}}}


@pytest.fixture(scope="module")
def image_archive() -> Path:
    """The project's image (`qbackbone dev image`: cached by content, built when missing:
    about 2 minutes cold, 8 s when only the project changed)."""
    from qbackbone.dev.image import build, plan

    reason = real_node_unavailable()
    if reason is not None:
        cannot(f"no real node on this host: {reason}")
    record = build(plan())
    print(f"\nimage {record['build']['kind']} in {record['build']['seconds']} s")
    return Path(record["archive"])


HISTORY_CLASS = "qb-history-hostpath"  # a PersistentVolume made here: no provisioner


@pytest.fixture(scope="module")
def history_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The host directory behind the history's PersistentVolume (the node is this host)."""
    path = tmp_path_factory.mktemp("history-volume")
    path.chmod(0o777)  # hostPath volumes get no fsGroup: the non-root operator writes here
    return path


@pytest.fixture(scope="module")
def install(image_archive: Path, history_dir: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """Control plane + real node + image + `helm install -f values-dev.yaml` with the job
    history on a claim (bound to a hostPath volume made here), Ready."""
    with real_control_plane(tmp_path_factory.mktemp("real-install")) as info:
        yield from _installed(info, k8s_binaries(), image_archive, history_dir)


def _history_volume(path: Path) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "qb-history"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": HISTORY_CLASS,
                     "persistentVolumeReclaimPolicy": "Retain",
                     "hostPath": {"path": str(path), "type": "Directory"}}}


def _installed(info: ClusterInfo, k8s_bins: Path, image_archive: Path,
               history: Path | None = None) -> Iterator[ClusterInfo]:
    node: RealNode | None = None
    try:
        node = start_real_node(info, name=NODE, tied=True, timeout=90,
                               labels={QPU_HOST_LABEL: "true"})
        t0 = time.monotonic()
        node.import_image(image_archive)
        print(f"\nimage imported in {time.monotonic() - t0:.1f}s")
        extra: list[str] = []
        if history is not None:
            kubectl(info, "apply", "-f", "-", stdin=yaml.safe_dump(_history_volume(history)))
            extra = ["--set", "history.enabled=true",
                     "--set", f"history.storageClassName={HISTORY_CLASS}"]
        helm(info, k8s_bins, "install", RELEASE, str(CHART), "--namespace", NS,
             "--create-namespace", "-f", str(CHART / "values-dev.yaml"), *extra, "--wait",
             "--timeout", "5m")
        # A policy for the cut jobs: LOCC wire cuts only (precedence through scheduling gates).
        kubectl(info, "apply", "-n", JOBS, "-f", "-", stdin=yaml.safe_dump(LOCC_ONLY))
        yield info
    finally:
        if node is not None:
            node.stop()


def helm(info: ClusterInfo, bins: Path, *args: str) -> str:
    done = subprocess.run([str(bins / "helm"), "--kubeconfig", info.kubeconfig, *args],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"helm {' '.join(args)}: {done.stderr}\n{done.stdout}"
    return done.stdout


def kubectl(info: ClusterInfo, *args: str, stdin: str | None = None) -> str:
    done = run_kubectl(info, *args, stdin=stdin)
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def api(install: ClusterInfo) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(config_file=install.kubeconfig)
    yield api_client
    api_client.close()


def apply(info: ClusterInfo, *objects: dict[str, Any]) -> None:
    """As a user does: kubectl apply of the manifests."""
    kubectl(info, "apply", "-n", JOBS, "-f", "-",
            stdin=yaml.safe_dump_all(objects, sort_keys=False))


def job(api: client.ApiClient, name: str) -> dict[str, Any]:
    found: dict[str, Any] = client.CustomObjectsApi(api).get_namespaced_custom_object(
        G, V, JOBS, "quantumjobs", name)
    return found


def finished(api: client.ApiClient, name: str, timeout: float = 300) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        found = job(api, name)
        return found if (found.get("status") or {}).get("phase") in (
            "Succeeded", "Failed") else None

    result: dict[str, Any] = wait_for(done, timeout, interval=0.5,
                                      what=f"QuantumJob {name} finished")
    return result


def pods_of(core: client.CoreV1Api, name: str) -> list[Any]:
    return list(core.list_namespaced_pod(JOBS, label_selector=f"qbackbone.io/job={name}").items)


def check_verified(found: dict[str, Any], qasm: str, observables: list[str]) -> None:
    status = found["status"]
    assert status["phase"] == "Succeeded", json.dumps(status.get("conditions"), indent=1)
    verified = condition(found, "Verified")
    assert verified is not None and verified["status"] == "True", verified
    for ev, want in zip(status["result"]["expectationValues"], exact(qasm, observables),
                        strict=True):
        sigma = math.hypot(ev["stdError"], ev.get("systematicError") or 0.0)
        assert abs(ev["value"] - want) <= 4 * sigma + 1e-9, (ev, want)


def containers_on_the_real_node(pods: list[Any]) -> None:
    assert pods
    for pod in pods:
        assert pod.spec.node_name == NODE, pod.metadata.name
        for status in pod.status.container_statuses or []:
            assert status.container_id.startswith("containerd://"), status


def test_the_operator_and_the_device_plugin_run_as_containers(install: ClusterInfo,
                                                               api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    operator = core.list_namespaced_pod(
        NS, label_selector="app.kubernetes.io/component=operator").items
    containers_on_the_real_node(operator)
    assert operator[0].spec.service_account_name == "qbackbone-operator"
    plugin = core.list_namespaced_pod(
        NS, label_selector="app.kubernetes.io/component=device-plugin").items
    containers_on_the_real_node(plugin)
    # A QPUNode applied with kubectl is advertised by the DaemonSet's plugin (--qpunodes).
    kubectl(install, "apply", "-f", "-", stdin=yaml.safe_dump(
        qpunode("user-qpu", "aer", "aer_simulator", qubits=5)))

    def advertised() -> bool:
        allocatable = core.read_node(NODE).status.allocatable or {}
        return all(allocatable.get(f"qpu.qbackbone.io/{q}") == "1"
                   for q in ("dev-ideal-a", "dev-ideal-b", "dev-noisy", "user-qpu"))

    wait_for(advertised, 60, what="the node advertises every QPUNode")


def test_single_qpu_distributed_and_problem_jobs_reach_verified_results(
        install: ClusterInfo, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    single = quantum_job("single", BELL4, BELL4_OBSERVABLES, shots=2000,
                         execution={"mode": "SingleQPU",
                                    "qpuSelector": {"names": ["dev-ideal-a"]}})
    cut = quantum_job("cut", GHZ8, GHZ8_OBSERVABLES, shots=2000, policyRef={"name": "locc-only"},
                      execution={"mode": "Distributed",
                                 "qpuSelector": {"names": ["dev-ideal-a", "dev-ideal-b"]}})
    problem = {"apiVersion": f"{G}/{V}", "kind": "QuantumJob", "metadata": {"name": "slices"},
               "spec": {"problem": {"sliceAdmission": {
                   "slackBits": 2, "resources": [{"name": "pop", "capacity": 10}],
                   "slices": [{"name": n, "revenue": r, "demands": {"pop": d}}
                              for n, r, d in (("a", 3, 4), ("b", 4, 5), ("c", 5, 6))]}},
                        "shots": 1000, "execution": {"mode": "SingleQPU"}}}
    t0 = time.monotonic()
    apply(install, single, cut, problem)
    check_verified(finished(api, "single"), BELL4, BELL4_OBSERVABLES)
    cut_job = finished(api, "cut")
    check_verified(cut_job, GHZ8, GHZ8_OBSERVABLES)
    assert cut_job["status"]["result"]["path"] == "Distributed"
    assert "loccWire" in cut_job["status"]["plan"]["cutKinds"]
    solved = finished(api, "slices")
    assert solved["status"]["phase"] == "Succeeded", solved["status"].get("conditions")
    assert condition(solved, "Verified")["reason"] == "ConstraintsSatisfied"  # type: ignore[index]
    assert solved["status"]["result"]["solution"]["objective"] == 8  # a + c fill the 10
    print(f"\nthree jobs applied -> finished in {time.monotonic() - t0:.1f}s")
    for name in ("single", "cut", "slices"):
        containers_on_the_real_node(pods_of(core, name))


def test_prometheus_scrapes_the_operator_and_answers_every_dashboard_query(
        install: ClusterInfo, api: client.ApiClient,
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """A Prometheus built from source scrapes the operator's container (pod IP, metrics
    port) after the jobs above; every panel's query is evaluated by it without error, and the
    job counters have data."""
    from qbackbone.dev.prometheus import PrometheusMissing, grafana_expr, start_prometheus
    from tests.observability.test_dashboard import exprs

    core = client.CoreV1Api(api)
    (operator,) = core.list_namespaced_pod(
        NS, label_selector="app.kubernetes.io/component=operator").items
    port = yaml.safe_load((CHART / "values-dev.yaml").read_text()).get("metrics", {}).get(
        "port", 8081)
    try:
        prometheus = start_prometheus(tmp_path_factory.mktemp("prometheus"),
                                      [f"{operator.status.pod_ip}:{port}"], interval=0.5)
    except PrometheusMissing as exc:
        cannot(str(exc))
    with prometheus:
        prometheus.wait_scrapes("qbackbone", 4)
        answered = {expr: prometheus.query(grafana_expr(expr, "5s", "1m")) for expr in exprs()}
        assert any(answered.values())
        decisions = prometheus.query("sum(qbackbone_qip_decisions_total)")
        assert decisions and decisions[0].value >= 3, decisions  # the three jobs above


def test_deleting_the_operator_pod_mid_job_loses_and_repeats_nothing(
        install: ClusterInfo, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    apply(install, quantum_job("restart", GHZ8, GHZ8_OBSERVABLES, shots=4000,
                               policyRef={"name": "locc-only"},
                               execution={"mode": "Distributed",
                                          "qpuSelector": {"names": ["dev-ideal-a",
                                                                    "dev-ideal-b"]}}))
    wait_for(lambda: pods_of(core, "restart"), 120, interval=0.2,
             what="the first fragment pod of job restart")
    (operator,) = core.list_namespaced_pod(
        NS, label_selector="app.kubernetes.io/component=operator").items
    core.delete_namespaced_pod(operator.metadata.name, NS, grace_period_seconds=0)
    before = {p.metadata.name: p.metadata.uid for p in pods_of(core, "restart")}
    found = finished(api, "restart", timeout=400)
    check_verified(found, GHZ8, GHZ8_OBSERVABLES)
    after = pods_of(core, "restart")
    # Nothing repeated: the pods that existed are the same objects, and every pod is its
    # fragment's first attempt; nothing lost: the result verified above.
    assert {n: u for n, u in before.items()} == {
        p.metadata.name: p.metadata.uid for p in after if p.metadata.name in before}
    assert all(p.metadata.labels["qbackbone.io/attempt"] == "0" for p in after), [
        (p.metadata.name, p.metadata.labels) for p in after]
    replaced = core.list_namespaced_pod(
        NS, label_selector="app.kubernetes.io/component=operator").items
    assert [p.metadata.name for p in replaced] != [operator.metadata.name]


def test_deleting_a_qpunode_mid_job_moves_its_work_or_fails_it_with_the_reason(
        install: ClusterInfo, api: client.ApiClient) -> None:
    """A QPUNode hosted on a node that is not there: its fragment pods wait (Pending) until
    it is deleted. With another eligible QPU the work moves there and the job verifies; with
    none the job fails with the reason."""
    core = client.CoreV1Api(api)
    for name in ("away-a", "away-b"):  # modelled fast, so the plans prefer them
        kubectl(install, "apply", "-f", "-", stdin=yaml.safe_dump(
            qpunode(name, "aer", "aer_simulator", qubits=6, nodeName="elsewhere",
                    shotTime="1us", setupTime="10ms")))
    apply(install,
          quantum_job("stranded", BELL4, BELL4_OBSERVABLES, shots=2000,
                      execution={"mode": "SingleQPU", "qpuSelector": {"names": ["away-a"]}}),
          quantum_job("moved", GHZ8, GHZ8_OBSERVABLES, shots=2000, policyRef={"name": "locc-only"},
                      execution={"mode": "Distributed",
                                 "qpuSelector": {"names": ["away-b", "dev-ideal-b"]}}))
    wait_for(lambda: pods_of(core, "stranded"), 120, interval=0.2, what="stranded's pod")
    wait_for(lambda: pods_of(core, "moved"), 120, interval=0.2, what="moved's first pod")
    on_away_b = wait_for(lambda: [p.metadata.name for p in pods_of(core, "moved")
                                  if p.metadata.labels.get(LABEL_QPU) == "away-b"], 60,
                         interval=0.2, what="a fragment of job moved placed on away-b")
    kubectl(install, "delete", "qpunode", "away-a", "away-b")
    stranded = finished(api, "stranded", timeout=120)
    failed = condition(stranded, "Failed")
    assert stranded["status"]["phase"] == "Failed" and failed is not None, stranded["status"]
    assert failed["reason"] == "QPUUnavailable" and "away-a" in failed["message"], failed
    moved = finished(api, "moved", timeout=400)
    check_verified(moved, GHZ8, GHZ8_OBSERVABLES)
    assert on_away_b, "the plan put nothing on away-b: the move was not exercised"
    assert moved["status"]["result"]["qpus"] == ["dev-ideal-b"], moved["status"]["result"]


def test_the_job_history_on_its_claim_outlives_the_operator_pod(
        install: ClusterInfo, api: client.ApiClient, history_dir: Path,
        tmp_path: Path) -> None:
    """Jobs finished before and after the operator pod was replaced (the tests above) are
    all in the history file on the claim's volume: it is kept across operator restarts."""
    import shutil

    from qbackbone.core.history import HistoryStore

    done = [j["metadata"]["name"] for j in client.CustomObjectsApi(api)
            .list_namespaced_custom_object(G, V, JOBS, "quantumjobs")["items"]
            if (j.get("status") or {}).get("phase") in ("Succeeded", "Failed")]
    assert "restart" in done  # finished by the replacement operator pod

    def recorded() -> set[str] | None:
        copy = tmp_path / "copy"  # read a copy: nothing here touches the operator's files
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(history_dir, copy)
        with HistoryStore(copy / "history.sqlite3") as store:
            names = {r.name for r in store.recent()}
        return names if set(done) <= names else None

    names = wait_for(recorded, 60, interval=1.0, what="every finished job in the history")
    assert "restart" in names and len(names) >= len(done) >= 4
