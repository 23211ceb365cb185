"""A kubelet-like peer for the device plugin: the Registration service on a unix socket, and,
for every registration, a client that connects back to the plugin the way the kubelet's device
manager does (GetDevicePluginOptions, then a ListAndWatch stream kept open)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from qbackbone.deviceplugin.v1beta1 import api_pb2, api_pb2_grpc


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
             what: str = "condition") -> None:
    """Poll ``predicate`` until it is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Endpoint:
    """The kubelet's view of one registered plugin."""

    request: api_pb2.RegisterRequest
    channel: grpc.Channel
    options: api_pb2.DevicePluginOptions | None = None
    lists: list[dict[str, str]] = field(default_factory=list)  # device ID -> health, per update
    stream: grpc.Future | None = None
    thread: threading.Thread | None = None
    error: grpc.RpcError | None = None

    @property
    def stub(self) -> api_pb2_grpc.DevicePluginStub:
        return api_pb2_grpc.DevicePluginStub(self.channel)

    @property
    def devices(self) -> dict[str, str] | None:
        return self.lists[-1] if self.lists else None


class FakeKubelet(api_pb2_grpc.RegistrationServicer):
    """Serves Registration at ``plugin_dir/kubelet.sock``; records and dials back."""

    def __init__(self, plugin_dir: Path, socket_name: str = "kubelet.sock") -> None:
        self.plugin_dir = plugin_dir
        self.socket = plugin_dir / socket_name
        self.registrations: list[api_pb2.RegisterRequest] = []  # the accepted ones
        self.rejections = 0  # how many of the next Register calls to refuse
        self.rejected: list[api_pb2.RegisterRequest] = []
        self.endpoints: dict[str, Endpoint] = {}  # by resource name, latest registration
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._old: list[Endpoint] = []

    def start(self) -> FakeKubelet:
        self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fake-kubelet")
        self._server = grpc.server(self._executor)
        api_pb2_grpc.add_RegistrationServicer_to_server(self, self._server)
        self._server.add_insecure_port(f"unix://{self.socket}")
        self._server.start()
        return self

    def Register(self, request: api_pb2.RegisterRequest,
                 context: grpc.ServicerContext) -> api_pb2.Empty:
        if request.version != "v1beta1":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"unsupported version {request.version}")
        with self._lock:
            reject = self.rejections > 0
            self.rejections -= int(reject)
            if reject:
                self.rejected.append(request)
        if reject:
            context.abort(grpc.StatusCode.UNAVAILABLE, "kubelet device manager not ready")
        endpoint = Endpoint(request, grpc.insecure_channel(
            f"unix://{self.plugin_dir / request.endpoint}"))
        with self._lock:
            self.registrations.append(request)
            old = self.endpoints.get(request.resource_name)
            if old is not None:
                self._old.append(old)
            self.endpoints[request.resource_name] = endpoint
        # Like the kubelet, answer first and connect back asynchronously.
        endpoint.thread = threading.Thread(target=self._run_endpoint, args=(endpoint,),
                                           name=f"fake-kubelet-{request.resource_name}")
        endpoint.thread.start()
        return api_pb2.Empty()

    def _run_endpoint(self, endpoint: Endpoint) -> None:
        try:
            endpoint.options = endpoint.stub.GetDevicePluginOptions(api_pb2.Empty(), timeout=5)
            stream = endpoint.stub.ListAndWatch(api_pb2.Empty())
            endpoint.stream = stream
            for response in stream:
                endpoint.lists.append({d.ID: d.health for d in response.devices})
        except grpc.RpcError as exc:
            endpoint.error = exc

    def registered(self, resource: str) -> int:
        """How many times ``resource`` was registered."""
        with self._lock:
            return sum(r.resource_name == resource for r in self.registrations)

    def allocate(self, resource: str, *device_ids: str) -> api_pb2.AllocateResponse:
        request = api_pb2.AllocateRequest(container_requests=[
            api_pb2.ContainerAllocateRequest(devices_ids=list(device_ids))])
        response: api_pb2.AllocateResponse = self.endpoints[resource].stub.Allocate(
            request, timeout=5)
        return response

    def stop(self, remove_socket: bool = True) -> None:
        """Stop serving and drop every connection to the plugins (as a dying kubelet does)."""
        if self._server is not None and self._executor is not None:
            self._server.stop(None).wait()
            self._executor.shutdown(wait=True)
            self._server = self._executor = None
        with self._lock:
            endpoints = [*self._old, *self.endpoints.values()]
            self._old = []
        for endpoint in endpoints:
            if endpoint.stream is not None:
                endpoint.stream.cancel()
            endpoint.channel.close()
            if endpoint.thread is not None:
                endpoint.thread.join(timeout=10)
        if remove_socket:
            self.socket.unlink(missing_ok=True)
