"""The device plugin against a kubelet-like peer over real gRPC on unix sockets: serve, register,
stream health, allocate, re-register after a kubelet restart, shut down cleanly."""

from __future__ import annotations

import threading
from pathlib import Path

import grpc
import pytest

from qbackbone.deviceplugin import QPU, FakeResourceManager, PluginManager
from qbackbone.deviceplugin.v1beta1 import api_pb2
from tests.deviceplugin.conftest import POLL, streaming
from tests.deviceplugin.kubelet import FakeKubelet, wait_for

A = "qpu.qbackbone.io/qpu-a"
TORINO = "qpu.qbackbone.io/torino"


def test_registers_each_qpu_and_streams_its_device(manager: PluginManager,
                                                   kubelet: FakeKubelet) -> None:
    streaming(kubelet, A)
    streaming(kubelet, TORINO)
    requests = {r.resource_name: r for r in kubelet.registrations}
    assert set(requests) == {A, TORINO}
    assert requests[A].version == "v1beta1"
    assert requests[A].endpoint == "qbackbone-qpu-a.sock"
    assert (kubelet.plugin_dir / requests[A].endpoint).is_socket()
    endpoint = kubelet.endpoints[A]
    assert endpoint.options == api_pb2.DevicePluginOptions(
        pre_start_required=False, get_preferred_allocation_available=False)
    assert endpoint.devices == {"qpu-a": "Healthy"}
    assert kubelet.endpoints[TORINO].devices == {"torino": "Healthy"}


def test_allocate_points_the_container_at_its_qpu(manager: PluginManager,
                                                  kubelet: FakeKubelet) -> None:
    streaming(kubelet, A)
    streaming(kubelet, TORINO)
    (local,) = kubelet.allocate(A, "qpu-a").container_responses
    assert dict(local.envs) == {
        "QBACKBONE_QPU": "qpu-a",
        "QBACKBONE_QPUS": "qpu-a",
        "QBACKBONE_QPU_BACKEND": "aer/aer_simulator",
        "QBACKBONE_QPU_RESOURCE": A,
    }
    assert list(local.mounts) == [] and list(local.devices) == []

    (cloud,) = kubelet.allocate(TORINO, "torino").container_responses
    token_file = "/var/run/secrets/qbackbone/ibm-token/token"
    assert cloud.envs["QBACKBONE_QPU_BACKEND"] == "ibm-runtime/ibm_torino"
    assert cloud.envs["QB_IBM_TOKEN_FILE"] == token_file
    assert cloud.envs["QBACKBONE_QPU_CREDENTIALS_FILE"] == token_file
    # The Secret is mounted by the pod spec; without --credentials-host-dir no host mount.
    assert list(cloud.mounts) == []


def test_health_change_arrives_on_the_stream_and_recovers(
        manager: PluginManager, kubelet: FakeKubelet, resources: FakeResourceManager) -> None:
    streaming(kubelet, A)
    streaming(kubelet, TORINO)
    endpoint = kubelet.endpoints[A]
    resources.set_health("qpu-a", False, "calibration stale")
    wait_for(lambda: endpoint.devices == {"qpu-a": "Unhealthy"}, what="Unhealthy on the stream")
    resources.set_health("qpu-a", True)
    wait_for(lambda: endpoint.devices == {"qpu-a": "Healthy"}, what="Healthy again")
    assert endpoint.lists == [{"qpu-a": "Healthy"}, {"qpu-a": "Unhealthy"},
                              {"qpu-a": "Healthy"}]
    # Only the resource that changed was re-sent, on the same stream (no re-registration).
    assert kubelet.endpoints[TORINO].lists == [{"torino": "Healthy"}]
    assert kubelet.registered(A) == 1


def test_unknown_device_is_a_clear_grpc_error(manager: PluginManager,
                                              kubelet: FakeKubelet) -> None:
    streaming(kubelet, A)
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(A, "qpu-b")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    details = err.value.details() or ""
    assert "unknown device ID(s) 'qpu-b'" in details and "'qpu-a'" in details and A in details
    with pytest.raises(grpc.RpcError) as err:
        kubelet.allocate(A)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_preferred_allocation_and_prestart(manager: PluginManager, kubelet: FakeKubelet) -> None:
    streaming(kubelet, A)
    stub = kubelet.endpoints[A].stub
    response = stub.GetPreferredAllocation(api_pb2.PreferredAllocationRequest(
        container_requests=[api_pb2.ContainerPreferredAllocationRequest(
            available_deviceIDs=["qpu-a"], allocation_size=1)]), timeout=5)
    assert [list(r.deviceIDs) for r in response.container_responses] == [["qpu-a"]]
    assert stub.PreStartContainer(api_pb2.PreStartContainerRequest(devices_ids=["qpu-a"]),
                                  timeout=5) == api_pb2.PreStartContainerResponse()


def test_reregisters_when_the_kubelet_socket_is_recreated(
        manager: PluginManager, kubelet: FakeKubelet, plugin_dir: Path) -> None:
    streaming(kubelet, A)
    streaming(kubelet, TORINO)
    # A kubelet restart: its socket goes away, it clears the directory, then comes back.
    kubelet.stop(remove_socket=True)
    for sock in plugin_dir.glob("qbackbone-*.sock"):
        sock.unlink()
    wait_for(lambda: all(not p.registered for p in manager.plugins.values()),
             what="the plugins to notice the kubelet left")
    restarted = FakeKubelet(plugin_dir).start()
    try:
        streaming(restarted, A)
        streaming(restarted, TORINO)
        assert (plugin_dir / "qbackbone-qpu-a.sock").is_socket()
        (response,) = restarted.allocate(A, "qpu-a").container_responses
        assert response.envs["QBACKBONE_QPU"] == "qpu-a"
    finally:
        restarted.stop()


def test_registers_once_the_kubelet_appears(plugin_dir: Path,
                                            resources: FakeResourceManager) -> None:
    manager = PluginManager(resources, plugin_dir, poll_interval=POLL, register_timeout=2)
    manager.start()
    kubelet = FakeKubelet(plugin_dir)
    try:
        assert (plugin_dir / "qbackbone-qpu-a.sock").is_socket()  # serving before registering
        assert not manager.plugins["qpu-a"].registered
        kubelet.start()
        streaming(kubelet, A)
        streaming(kubelet, TORINO)
    finally:
        manager.stop()
        kubelet.stop()


def test_refused_registration_is_retried(plugin_dir: Path, kubelet: FakeKubelet) -> None:
    kubelet.rejections = 2
    manager = PluginManager(FakeResourceManager([QPU("qpu-a", "aer", "aer_simulator")]),
                            plugin_dir, poll_interval=POLL, register_timeout=2)
    manager.start()
    try:
        streaming(kubelet, A)
        assert [r.resource_name for r in kubelet.rejected] == [A, A]
        assert kubelet.registered(A) == 1
    finally:
        manager.stop()


def test_qpus_joining_and_leaving_the_list(manager: PluginManager, kubelet: FakeKubelet,
                                           resources: FakeResourceManager,
                                           plugin_dir: Path) -> None:
    streaming(kubelet, A)
    resources.set_qpus([QPU("qpu-a", "aer", "aer_simulator"),
                        QPU("sherbrooke", "fake", "fake_sherbrooke")])
    streaming(kubelet, "qpu.qbackbone.io/sherbrooke")
    wait_for(lambda: not (plugin_dir / "qbackbone-torino.sock").exists(),
             what="the torino plugin to be withdrawn")
    assert set(manager.plugins) == {"qpu-a", "sherbrooke"}
    # The kubelet sees the withdrawn plugin's stream end.
    torino = kubelet.endpoints[TORINO]
    wait_for(lambda: torino.thread is not None and not torino.thread.is_alive(),
             what="the torino stream to end")


def test_clean_shutdown(threads_before: set[threading.Thread], kubelet: FakeKubelet,
                        resources: FakeResourceManager, plugin_dir: Path) -> None:
    manager = PluginManager(resources, plugin_dir, poll_interval=POLL, register_timeout=2)
    manager.start()
    streaming(kubelet, A)
    streaming(kubelet, TORINO)
    endpoint = kubelet.endpoints[A]
    manager.stop()
    assert sorted(p.name for p in plugin_dir.iterdir()) == ["kubelet.sock"]
    assert manager.plugins == {}
    # Stopping ends the kubelet's ListAndWatch streams from the plugin side.
    wait_for(lambda: endpoint.thread is not None and not endpoint.thread.is_alive(),
             what="the kubelet's stream to end")
    kubelet.stop()
    wait_for(lambda: set(threading.enumerate()) <= threads_before,
             what="no threads left behind")
