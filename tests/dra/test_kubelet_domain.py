"""The kubelet plugin's pure parts: what a QPU yields in a CDI spec (the device plugin's
environment, exactly), the checkpoint, reading a claim's allocation, resolving a device to its
QPUNode, the fake resource manager, and the ClaimManager's idempotence and per-claim errors."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from qbackbone.deviceplugin.allocate import container_allocation
from qbackbone.deviceplugin.config import QPU, SecretRef
from qbackbone.dra import cdi, checkpoint
from qbackbone.dra.attributes import DRIVER, device_name
from qbackbone.dra.checkpoint import CheckpointError, PreparedClaim, PreparedDevice
from qbackbone.dra.claims import ClaimManager
from qbackbone.dra.fake import FakeQPUs
from qbackbone.dra.prepare import (
    ClaimRef,
    PrepareError,
    allocated_devices,
    prepare,
    resolve_from_qpunodes,
)
from qbackbone.dra.slices import CLOUD_POOL, MANAGED_SELECTOR

UID = "0b7c9f5e-8d1a-4c61-9d8e-2f3a4b5c6d7e"
REF = ClaimRef("team-a", "qpu-claim", UID)
IBM = QPU(name="ibm-torino", provider="ibm-runtime", backend="ibm_torino",
          credentials=SecretRef(name="ibm-token", key="token"))
AER = QPU(name="sim", provider="aer", backend="aer_simulator")


def claim(results: list[dict[str, Any]], uid: str = UID, allocated: bool = True
          ) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"namespace": "team-a", "name": "qpu-claim", "uid": uid},
                           "spec": {}, "status": {}}
    if allocated:
        obj["status"]["allocation"] = {"devices": {"results": results}}
    return obj


def result(device: str, pool: str = "node-a", request: str = "qpu",
           driver: str = DRIVER) -> dict[str, Any]:
    return {"driver": driver, "pool": pool, "device": device, "request": request}


def qpunode(name: str, spec: dict[str, Any], ready: bool = True) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": spec,
            "status": {"conditions": [{"type": "Ready", "status": str(ready)}]}}


def env(spec: dict[str, Any], index: int = 0) -> dict[str, str]:
    return dict(e.split("=", 1) for e in spec["devices"][index]["containerEdits"]["env"])


# ----- CDI -----

def test_cdi_env_is_exactly_the_device_plugins() -> None:
    for qpu in (IBM, AER):
        for host_dir in (None, Path("/etc/qbackbone/creds")):
            spec = cdi.claim_spec(UID, [("dev", qpu)], host_dir)
            allocation = container_allocation(qpu, host_dir)
            assert env(spec) == allocation.envs
            mounts = spec["devices"][0]["containerEdits"].get("mounts", [])
            assert mounts == [{"hostPath": m.host_path, "containerPath": m.container_path,
                               "options": ["bind", "ro"]} for m in allocation.mounts]
    spec = cdi.claim_spec(UID, [("ibm-torino", IBM)], Path("/creds"))
    assert spec["cdiVersion"] == "0.6.0" and spec["kind"] == "qpu.qbackbone.io/qpu"
    assert spec["devices"][0]["name"] == f"{UID}-ibm-torino"
    assert env(spec) == {
        "QBACKBONE_QPU": "ibm-torino", "QBACKBONE_QPUS": "ibm-torino",
        "QBACKBONE_QPU_BACKEND": "ibm-runtime/ibm_torino",
        "QBACKBONE_QPU_RESOURCE": "qpu.qbackbone.io/ibm-torino",
        "QBACKBONE_QPU_CREDENTIALS_FILE": "/var/run/secrets/qbackbone/ibm-token/token",
        "QB_IBM_TOKEN_FILE": "/var/run/secrets/qbackbone/ibm-token/token"}
    assert spec["devices"][0]["containerEdits"]["mounts"] == [{
        "hostPath": "/creds/ibm-token", "containerPath": "/var/run/secrets/qbackbone/ibm-token",
        "options": ["bind", "ro"]}]
    # no credentials: no credential variables, no mounts
    assert set(env(cdi.claim_spec(UID, [("sim", AER)], Path("/creds")))) == {
        "QBACKBONE_QPU", "QBACKBONE_QPUS", "QBACKBONE_QPU_BACKEND", "QBACKBONE_QPU_RESOURCE"}


def test_cdi_claim_with_two_qpus_lists_both() -> None:
    spec = cdi.claim_spec(UID, [("sim", AER), ("ibm-torino", IBM)])
    assert [env(spec, i)["QBACKBONE_QPU"] for i in (0, 1)] == ["sim", "ibm-torino"]
    assert {env(spec, i)["QBACKBONE_QPUS"] for i in (0, 1)} == {"sim,ibm-torino"}


def test_cdi_files(tmp_path: Path) -> None:
    spec = cdi.claim_spec(UID, [("sim", AER)])
    path = cdi.write_spec(tmp_path / "cdi", UID, spec)
    assert path == tmp_path / "cdi" / f"qpu.qbackbone.io-{UID}.json"
    assert json.loads(path.read_text()) == spec == cdi.read_spec(tmp_path / "cdi", UID)
    assert [p.name for p in (tmp_path / "cdi").iterdir()] == [path.name]  # no temporary left
    assert cdi.device_id(UID, "sim") == f"qpu.qbackbone.io/qpu={UID}-sim"
    assert cdi.remove_spec(tmp_path / "cdi", UID) and not path.exists()
    assert not cdi.remove_spec(tmp_path / "cdi", UID)
    assert cdi.read_spec(tmp_path / "cdi", UID) is None
    for bad in ("../x", "a/b", "", ".hidden"):
        with pytest.raises(ValueError):
            cdi.spec_file(tmp_path, bad)


# ----- checkpoint -----

def test_checkpoint_round_trip_and_tampering(tmp_path: Path) -> None:
    claims = {UID: PreparedClaim(UID, "team-a", "c", (
        PreparedDevice(("qpu",), "node-a", "sim", (cdi.device_id(UID, "sim"),)),))}
    path = tmp_path / "checkpoint.json"
    assert checkpoint.load(path) == {}
    checkpoint.save(path, claims)
    assert checkpoint.load(path) == claims
    doc = json.loads(path.read_text())
    doc["claims"][UID]["name"] = "other"
    path.write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="checksum"):
        checkpoint.load(path)
    for text in ("{", "[]", json.dumps({"version": 2, "claims": {}})):
        with pytest.raises(CheckpointError):
            checkpoint.decode(text)


# ----- the claim's allocation -----

def test_allocated_devices_filters_driver_and_checks_uid() -> None:
    obj = claim([result("sim"), result("gpu-0", driver="gpu.example.com")])
    assert [(a.request, a.pool, a.device) for a in allocated_devices(REF, obj)] == [
        ("qpu", "node-a", "sim")]
    with pytest.raises(PrepareError, match="replaced"):
        allocated_devices(REF, claim([result("sim")], uid="another-uid"))
    with pytest.raises(PrepareError, match="not allocated"):
        allocated_devices(REF, claim([], allocated=False))
    with pytest.raises(PrepareError, match="malformed"):
        allocated_devices(REF, claim([{"driver": DRIVER, "pool": 1, "device": "x",
                                       "request": "qpu"}]))


def test_resolve_from_qpunodes_recomputes_publisher_names() -> None:
    nodes = [qpunode("qpu.fra.1", {"backend": {"provider": "aer", "name": "aer_simulator"},
                                   "nodeName": "node-a"}),
             qpunode("cloud-1", {"backend": {"provider": "fake", "name": "fake_manila"}}),
             qpunode("down", {"backend": {"provider": "aer", "name": "aer_simulator"}},
                     ready=False)]
    hosted = resolve_from_qpunodes(nodes, "node-a", device_name("qpu.fra.1"))
    assert hosted.name == "qpu.fra.1" and hosted.backend == "aer_simulator"
    assert resolve_from_qpunodes(nodes, CLOUD_POOL, "cloud-1").provider == "fake"
    with pytest.raises(PrepareError, match="no QPUNode"):
        resolve_from_qpunodes(nodes, "node-b", device_name("qpu.fra.1"))  # other pool
    with pytest.raises(PrepareError, match="not Ready"):
        resolve_from_qpunodes(nodes, CLOUD_POOL, "down")


def test_prepare_builds_devices_and_spec() -> None:
    qpus = {"sim": AER, "ibm-torino": IBM}
    obj = claim([result("sim", request="a"), result("ibm-torino", request="b"),
                 result("sim", request="c")])
    prepared, spec = prepare(REF, obj, lambda pool, device: qpus[device])
    assert [(d.requests, d.device, d.cdi_device_ids) for d in prepared.devices] == [
        (("a", "c"), "sim", (f"qpu.qbackbone.io/qpu={UID}-sim",)),
        (("b",), "ibm-torino", (f"qpu.qbackbone.io/qpu={UID}-ibm-torino",))]
    assert spec is not None and [d["name"] for d in spec["devices"]] == [
        f"{UID}-sim", f"{UID}-ibm-torino"]
    none, no_spec = prepare(REF, claim([result("x", driver="other")]), lambda p, d: AER)
    assert none.devices == () and no_spec is None


# ----- fake resource manager -----

def test_fake_qpus_resolve_and_slice() -> None:
    fake = FakeQPUs("node-a", 2)
    assert fake.pool == "node-a/fake" and fake.names() == ["fake-qpu-0", "fake-qpu-1"]
    assert fake.resolve("node-a/fake", "fake-qpu-1").name == "fake-qpu-1"
    with pytest.raises(PrepareError):
        fake.resolve("node-a/fake", "fake-qpu-2")
    with pytest.raises(PrepareError):
        fake.resolve("node-a", "fake-qpu-0")
    obj = fake.resource_slice()
    labels = obj["metadata"]["labels"]
    assert f"{next(iter(labels))}={labels[next(iter(labels))]}" != MANAGED_SELECTOR
    assert labels == {"qbackbone.io/dra-publisher": "kubelet-plugin",
                      "qbackbone.io/dra-node": "node-a"}
    assert obj["spec"]["nodeName"] == "node-a" and obj["spec"]["driver"] == DRIVER
    assert [d["name"] for d in obj["spec"]["devices"]] == fake.names()
    attrs = obj["spec"]["devices"][0]["attributes"]
    assert attrs["qpu"] == {"string": "fake-qpu-0"} and attrs["ideal"] == {"bool": True}
    assert len(FakeQPUs("n" * 100, 1).node_label()) == 63


# ----- the claim manager -----

class Claims:
    """ResourceClaims by (namespace, name); counts reads."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects, self.reads = objects, 0

    def read_claim(self, namespace: str, name: str) -> dict[str, Any]:
        self.reads += 1
        if (namespace, name) not in self.objects:
            raise RuntimeError(f"(404) resourceclaims {name} not found")
        return self.objects[(namespace, name)]


def test_claim_manager_idempotent_restart_and_errors(tmp_path: Path) -> None:
    fake = FakeQPUs("node-a", 1)
    source = Claims({("team-a", "qpu-claim"): claim([result("fake-qpu-0", "node-a/fake")])})
    cdi_dir, ckpt = tmp_path / "cdi", tmp_path / "plugin" / "checkpoint.json"
    manager = ClaimManager(source, lambda: fake.resolve, cdi_dir, ckpt)
    missing, other = ClaimRef("team-a", "gone", "u-2"), ClaimRef("team-a", "qpu-claim", "u-3")
    out = manager.prepare([REF, missing, other])
    first = out[UID]
    assert isinstance(first, PreparedClaim) and first.devices[0].device == "fake-qpu-0"
    assert "not found" in str(out["u-2"]) and "replaced" in str(out["u-3"])
    assert env(json.loads(cdi.spec_file(cdi_dir, UID).read_text())) == \
        container_allocation(fake.resolve(fake.pool, "fake-qpu-0")).envs
    # again: the same answer, not read again
    assert manager.prepare([REF])[UID] == first and source.reads == 3
    # a restarted plugin answers from the checkpoint, rewriting a lost spec
    cdi.remove_spec(cdi_dir, UID)
    again = ClaimManager(source, lambda: fake.resolve, cdi_dir, ckpt)
    assert again.prepared == {UID: first}
    assert again.prepare([REF])[UID] == first and cdi.read_spec(cdi_dir, UID) is not None
    assert again.unprepare([REF, missing]) == {UID: "", "u-2": ""}
    assert cdi.read_spec(cdi_dir, UID) is None and checkpoint.load(ckpt) == {}
    assert again.unprepare([REF]) == {UID: ""}  # twice: fine


def test_claim_manager_sets_a_bad_checkpoint_aside(tmp_path: Path) -> None:
    ckpt = tmp_path / "checkpoint.json"
    ckpt.write_text("{broken")
    manager = ClaimManager(Claims({}), lambda: (lambda p, d: AER), tmp_path, ckpt)
    assert manager.prepared == {} and (tmp_path / "checkpoint.json.bad").exists()


def test_only_the_api_modules_import_the_kubernetes_client() -> None:
    dra = Path(__file__).resolve().parents[2] / "operator/qbackbone/dra"

    def imports_kubernetes(path: Path) -> bool:
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n == "kubernetes" or n.startswith("kubernetes.") for n in names):
                return True
        return False

    importing = sorted(p.name for p in dra.glob("*.py") if imports_kubernetes(p))
    assert importing == ["kubeapi.py", "publisher.py"]
