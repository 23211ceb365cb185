"""One device plugin: the gRPC DevicePlugin service for one QPU's extended resource.

Each QPU is its own resource (``qpu.qbackbone.io/<name>``) with one device, so each gets a
server on its own unix socket in the kubelet's device-plugin directory. The life cycle follows
the NVIDIA device plugin: :meth:`QPUPlugin.start` serves, :meth:`QPUPlugin.register` then tells
the kubelet, which connects back and keeps a ListAndWatch stream open; health changes are pushed
on that stream by :meth:`QPUPlugin.update`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from qbackbone.deviceplugin.allocate import container_allocation
from qbackbone.deviceplugin.resources import QPUState
from qbackbone.deviceplugin.v1beta1 import api_pb2, api_pb2_grpc

log = logging.getLogger(__name__)

API_VERSION = "v1beta1"
HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"
# How often a ListAndWatch stream re-checks that its client is still there, besides being woken
# by updates and cancellation callbacks.
_STREAM_CHECK_SECONDS = 1.0


def socket_name(qpu_name: str) -> str:
    """The plugin's socket file name in the device-plugin directory."""
    return f"qbackbone-{qpu_name}.sock"


class QPUPlugin(api_pb2_grpc.DevicePluginServicer):
    """The device plugin of one QPU; restartable (stop, then start again)."""

    def __init__(self, state: QPUState, plugin_dir: Path,
                 credentials_host_dir: Path | None = None) -> None:
        self.resource_name = state.qpu.resource_name
        self.socket_path = plugin_dir / socket_name(state.qpu.name)
        self.credentials_host_dir = credentials_host_dir
        self._cond = threading.Condition()
        self._state = state
        self._version = 0
        self._stopping = False
        self._server: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._socket_inode: int | None = None
        self.registered = False

    # --- state ---------------------------------------------------------------------------

    @property
    def state(self) -> QPUState:
        with self._cond:
            return self._state

    def update(self, state: QPUState) -> bool:
        """Take a new state; ListAndWatch streams send the new device list if it changed."""
        with self._cond:
            if state == self._state:
                return False
            if state.healthy != self._state.healthy:
                if state.healthy:
                    log.info("%s is healthy again", self.resource_name)
                else:
                    log.warning("%s is unhealthy: %s", self.resource_name, state.reason)
            self._state = state
            self._version += 1
            self._cond.notify_all()
            return True

    def options(self) -> api_pb2.DevicePluginOptions:
        return api_pb2.DevicePluginOptions(pre_start_required=False,
                                           get_preferred_allocation_available=False)

    def _devices(self) -> api_pb2.ListAndWatchResponse:
        state = self._state
        return api_pb2.ListAndWatchResponse(devices=[api_pb2.Device(
            ID=state.qpu.device_id, health=HEALTHY if state.healthy else UNHEALTHY)])

    # --- the DevicePlugin service --------------------------------------------------------

    def GetDevicePluginOptions(self, request: api_pb2.Empty,
                               context: grpc.ServicerContext) -> api_pb2.DevicePluginOptions:
        return self.options()

    def ListAndWatch(self, request: api_pb2.Empty,
                     context: grpc.ServicerContext) -> Iterator[api_pb2.ListAndWatchResponse]:
        """The device list now, then again whenever it changes, until the client goes away or
        the plugin stops."""
        gone = threading.Event()

        def wake() -> None:
            gone.set()
            with self._cond:
                self._cond.notify_all()

        context.add_callback(wake)
        sent = -1

        def due() -> bool:
            return self._version != sent or self._stopping or gone.is_set()

        while True:
            with self._cond:
                self._cond.wait_for(due, timeout=_STREAM_CHECK_SECONDS)
                if self._stopping or gone.is_set() or not context.is_active():
                    return
                if self._version == sent:
                    continue
                sent, response = self._version, self._devices()
            yield response

    def GetPreferredAllocation(
        self, request: api_pb2.PreferredAllocationRequest, context: grpc.ServicerContext
    ) -> api_pb2.PreferredAllocationResponse:
        """Not advertised (one device per resource leaves no choice); answers sensibly anyway:
        the devices that must be included, then the first available ones."""
        responses = []
        for req in request.container_requests:
            chosen = list(dict.fromkeys(req.must_include_deviceIDs))
            chosen += [d for d in req.available_deviceIDs if d not in chosen]
            responses.append(api_pb2.ContainerPreferredAllocationResponse(
                deviceIDs=chosen[:max(req.allocation_size, len(req.must_include_deviceIDs))]))
        return api_pb2.PreferredAllocationResponse(container_responses=responses)

    def Allocate(self, request: api_pb2.AllocateRequest,
                 context: grpc.ServicerContext) -> api_pb2.AllocateResponse:
        """Env (and mounts) pointing each container at its QPU; see
        :mod:`qbackbone.deviceplugin.allocate` for the contract."""
        state = self.state
        responses = []
        for i, req in enumerate(request.container_requests):
            ids = list(req.devices_ids)
            if not ids:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                              f"{self.resource_name}: container request {i} names no device")
            unknown = [d for d in ids if d != state.qpu.device_id]
            if unknown:
                context.abort(grpc.StatusCode.NOT_FOUND,
                              f"{self.resource_name}: unknown device ID(s) "
                              f"{', '.join(map(repr, unknown))}; this plugin serves only "
                              f"{state.qpu.device_id!r}")
            if not state.healthy:
                # The kubelet only hands out healthy devices; a race with a health change is
                # possible, and the container would then find out from the backend itself.
                log.warning("allocating %s while unhealthy: %s", self.resource_name,
                            state.reason)
            allocation = container_allocation(state.qpu, self.credentials_host_dir)
            responses.append(api_pb2.ContainerAllocateResponse(
                envs=allocation.envs,
                mounts=[api_pb2.Mount(container_path=m.container_path, host_path=m.host_path,
                                      read_only=m.read_only) for m in allocation.mounts]))
            log.info("allocated %s to a container", self.resource_name)
        return api_pb2.AllocateResponse(container_responses=responses)

    def PreStartContainer(
        self, request: api_pb2.PreStartContainerRequest, context: grpc.ServicerContext
    ) -> api_pb2.PreStartContainerResponse:
        return api_pb2.PreStartContainerResponse()

    # --- life cycle ----------------------------------------------------------------------

    @property
    def serving(self) -> bool:
        return self._server is not None

    def socket_replaced(self) -> bool:
        """True when serving but the socket file is gone or is no longer ours (the kubelet
        clears the directory when it restarts)."""
        if self._server is None:
            return False
        try:
            return self.socket_path.stat().st_ino != self._socket_inode
        except OSError:
            return True

    def start(self) -> None:
        """Serve on the plugin's socket (replacing a stale socket file)."""
        if self._server is not None:
            return
        self.socket_path.unlink(missing_ok=True)
        with self._cond:
            self._stopping = False
        executor = ThreadPoolExecutor(max_workers=4,
                                      thread_name_prefix=f"qbdp-{self.socket_path.stem}")
        server = grpc.server(executor)
        api_pb2_grpc.add_DevicePluginServicer_to_server(self, server)
        try:
            server.add_insecure_port(f"unix://{self.socket_path}")
            server.start()
        except Exception:
            server.stop(None)
            executor.shutdown(wait=True)
            raise
        self._server, self._executor = server, executor
        self._socket_inode = self.socket_path.stat().st_ino
        log.info("serving %s on %s", self.resource_name, self.socket_path)

    def stop(self, grace: float = 1.0) -> None:
        """Stop serving: end the streams, wait for the handler threads, remove the socket."""
        server, executor = self._server, self._executor
        self._server = self._executor = None
        self.registered = False
        if server is None or executor is None:
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        server.stop(grace).wait()
        executor.shutdown(wait=True)
        try:
            if self.socket_path.stat().st_ino == self._socket_inode:
                self.socket_path.unlink()
        except OSError:
            pass
        log.info("stopped serving %s", self.resource_name)

    def register(self, kubelet_socket: Path, timeout: float = 5.0) -> None:
        """Register with the kubelet's Registration service; raises ``grpc.RpcError``."""
        request = api_pb2.RegisterRequest(version=API_VERSION, endpoint=self.socket_path.name,
                                          resource_name=self.resource_name,
                                          options=self.options())
        with grpc.insecure_channel(f"unix://{kubelet_socket}") as channel:
            api_pb2_grpc.RegistrationStub(channel).Register(request, timeout=timeout)
        self.registered = True
        log.info("registered %s with the kubelet (%s)", self.resource_name, kubelet_socket)
