"""The kubelet plugin over real unix sockets, with a test-side fake kubelet using the
generated clients: registration (GetInfo, NotifyRegistrationStatus), NodePrepareResources and
NodeUnprepareResources (CDI spec written and removed, per-claim errors), the health service on
the DRA socket and on a TCP port, re-registration when the registration socket is removed, and
the CLI process: SIGTERM removes its sockets and exits 0."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from qbackbone.dev.waiting import wait_for
from qbackbone.dra import cdi, health
from qbackbone.dra.attributes import DRIVER
from qbackbone.dra.claims import ClaimManager
from qbackbone.dra.fake import FakeQPUs
from qbackbone.dra.kubeletapi.drav1 import api_pb2 as dra_pb2
from qbackbone.dra.kubeletapi.drav1 import api_pb2_grpc as dra_grpc
from qbackbone.dra.kubeletapi.registration import api_pb2 as reg_pb2
from qbackbone.dra.kubeletapi.registration import api_pb2_grpc as reg_grpc
from qbackbone.dra.kubeletplugin import KubeletPlugin, Paths
from tests.dra.test_kubelet_domain import UID, Claims, claim, result

NODE = "node-a"


@pytest.fixture()
def root() -> Iterator[Path]:
    """A short directory (unix socket paths are limited to 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="qbdra-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture()
def plugin(root: Path) -> Iterator[KubeletPlugin]:
    fake = FakeQPUs(NODE, 2)
    source = Claims({("team-a", "qpu-claim"): claim([result("fake-qpu-1", fake.pool)]),
                     ("team-a", "other"): claim([result("gpu-0", driver="gpu.example.com")],
                                                uid="u-other")})
    paths = Paths(root / "kubelet")
    manager = ClaimManager(source, lambda: fake.resolve, root / "cdi", paths.checkpoint)
    plugin = KubeletPlugin(paths, manager, health_port=0, health_address="127.0.0.1",
                           interval=0.2)
    plugin.start()
    yield plugin
    plugin.stop()


def channel(path: Path) -> grpc.Channel:
    return grpc.insecure_channel(f"unix://{path}")


def test_fake_kubelet_registers_prepares_and_unprepares(plugin: KubeletPlugin,
                                                        root: Path) -> None:
    paths = plugin.paths
    assert paths.registration_socket == root / "kubelet/plugins_registry/qpu.qbackbone.io-reg.sock"
    assert paths.dra_socket == root / "kubelet/plugins/qpu.qbackbone.io/dra.sock"
    # the plugin watcher's side
    with channel(paths.registration_socket) as ch:
        registration = reg_grpc.RegistrationStub(ch)
        info = registration.GetInfo(reg_pb2.InfoRequest(), timeout=5)
        assert (info.type, info.name, info.endpoint, list(info.supported_versions)) == (
            "DRAPlugin", DRIVER, str(paths.dra_socket), ["v1.DRAPlugin"])
        registration.NotifyRegistrationStatus(
            reg_pb2.RegistrationStatus(plugin_registered=True), timeout=5)
    assert plugin.registration.registered.is_set()

    # the DRA manager's side
    claims = [dra_pb2.Claim(namespace="team-a", name="qpu-claim", uid=UID),
              dra_pb2.Claim(namespace="team-a", name="qpu-claim", uid="stale-uid"),
              dra_pb2.Claim(namespace="team-a", name="missing", uid="u-missing"),
              dra_pb2.Claim(namespace="team-a", name="other", uid="u-other")]
    with channel(paths.dra_socket) as ch:
        dra = dra_grpc.DRAPluginStub(ch)
        response = dra.NodePrepareResources(dra_pb2.NodePrepareResourcesRequest(claims=claims),
                                            timeout=5)
        assert set(response.claims) == {UID, "stale-uid", "u-missing", "u-other"}
        ok = response.claims[UID]
        assert ok.error == ""
        assert [(list(d.request_names), d.pool_name, d.device_name, list(d.cdi_device_ids))
                for d in ok.devices] == [
            (["qpu"], f"{NODE}/fake", "fake-qpu-1", [f"qpu.qbackbone.io/qpu={UID}-fake-qpu-1"])]
        assert "replaced" in response.claims["stale-uid"].error
        assert "not found" in response.claims["u-missing"].error
        assert response.claims["u-other"].error == ""  # no device of ours: nothing to do
        assert list(response.claims["u-other"].devices) == []
        spec = json.loads(cdi.spec_file(root / "cdi", UID).read_text())
        envs = dict(e.split("=", 1) for e in spec["devices"][0]["containerEdits"]["env"])
        assert envs["QBACKBONE_QPU"] == "fake-qpu-1"
        # again: the same answer (idempotent)
        again = dra.NodePrepareResources(dra_pb2.NodePrepareResourcesRequest(claims=claims[:1]),
                                         timeout=5)
        assert again.claims[UID] == ok
        assert health.check(ch, "") == health.SERVING
        unprepared = dra.NodeUnprepareResources(
            dra_pb2.NodeUnprepareResourcesRequest(claims=claims[:1]), timeout=5)
        assert unprepared.claims[UID].error == ""
    assert not cdi.spec_file(root / "cdi", UID).exists()
    assert UID not in json.loads(paths.checkpoint.read_text())["claims"]


def test_health_port_and_re_registration(plugin: KubeletPlugin) -> None:
    assert plugin.health_port
    with grpc.insecure_channel(f"127.0.0.1:{plugin.health_port}") as ch:
        assert health.check(ch, "liveness") == health.SERVING
        with pytest.raises(grpc.RpcError) as err:
            health.check(ch, "no-such-service")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        # a kubelet restart may wipe plugins_registry: the socket comes back, a new one
        reg = plugin.paths.registration_socket
        shutil.rmtree(reg.parent)
        assert health.check(ch, "liveness") == health.NOT_SERVING or reg.exists()
        # (the new socket may get the old one's inode number: count the registrations)
        wait_for(lambda: reg.exists() and plugin.registrations == 2, 10,
                 what="registration socket re-created")
        with channel(reg) as rc:
            assert reg_grpc.RegistrationStub(rc).GetInfo(reg_pb2.InfoRequest(),
                                                         timeout=5).name == DRIVER
        wait_for(lambda: health.check(ch, "liveness") == health.SERVING, 10,
                 what="serving again")
    plugin.stop()
    assert not plugin.paths.dra_socket.exists() and not reg.exists()


def test_cli_serves_until_sigterm_and_removes_sockets(root: Path) -> None:
    kubeconfig = root / "kubeconfig"  # never called: no fake slice, no claim
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    paths = Paths(root / "kubelet")
    argv = [str(Path(sys.executable).parent / "qbackbone"), "dra-driver", "kubelet-plugin",
            f"--kubelet-root={paths.kubelet_root}", f"--cdi-dir={root / 'cdi'}",
            f"--kubeconfig={kubeconfig}", "--fake-qpus=1", "--no-fake-slice"]
    env = {**os.environ, "NODE_NAME": NODE}
    log = root / "plugin.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for(lambda: paths.registration_socket.exists() or proc.poll() is not None, 60,
                 what="registration socket")
        assert proc.poll() is None, log.read_text()
        with channel(paths.dra_socket) as ch:
            assert health.check(ch) == health.SERVING
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not paths.registration_socket.exists() and not paths.dra_socket.exists()
    assert "kubelet plugin stopped" in log.read_text()
