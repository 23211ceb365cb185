"""The kubelet plugin's gRPC side: the DRA service (``v1.DRAPlugin``) on
``<kubelet root>/plugins/qpu.qbackbone.io/dra.sock``, the registration service on
``<kubelet root>/plugins_registry/qpu.qbackbone.io-reg.sock`` (the kubelet's plugin watcher
finds it, calls GetInfo, connects to the DRA socket and calls NotifyRegistrationStatus), and
the gRPC health service (on the DRA socket, and on a TCP port for a liveness probe).

A maintenance thread re-creates a socket whose file disappeared or was replaced (a restarted
kubelet may wipe ``plugins_registry``), which makes the kubelet register the plugin again, and
runs the caller's periodic tasks. :meth:`KubeletPlugin.stop` stops the servers and removes the
sockets.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc

from qbackbone.dra import health
from qbackbone.dra.attributes import DRIVER
from qbackbone.dra.checkpoint import FILE_NAME, PreparedClaim, PreparedDevice
from qbackbone.dra.claims import ClaimManager
from qbackbone.dra.kubeletapi.drav1 import api_pb2 as dra_pb2
from qbackbone.dra.kubeletapi.drav1 import api_pb2_grpc as dra_grpc
from qbackbone.dra.kubeletapi.registration import api_pb2 as reg_pb2
from qbackbone.dra.kubeletapi.registration import api_pb2_grpc as reg_grpc
from qbackbone.dra.prepare import ClaimRef

log = logging.getLogger(__name__)

PLUGIN_TYPE = "DRAPlugin"
DRA_SERVICE = "v1.DRAPlugin"  # how the kubelet names k8s.io.kubelet.pkg.apis.dra.v1.DRAPlugin
LIVENESS_SERVICES = ("", "liveness", DRA_SERVICE)
CHECK_TIMEOUT = 5.0


@dataclass(frozen=True)
class Paths:
    """The plugin's files under the kubelet's root directory."""

    kubelet_root: Path

    @property
    def plugin_dir(self) -> Path:
        return self.kubelet_root / "plugins" / DRIVER

    @property
    def dra_socket(self) -> Path:
        return self.plugin_dir / "dra.sock"

    @property
    def registry_dir(self) -> Path:
        return self.kubelet_root / "plugins_registry"

    @property
    def registration_socket(self) -> Path:
        return self.registry_dir / f"{DRIVER}-reg.sock"

    @property
    def checkpoint(self) -> Path:
        return self.plugin_dir / FILE_NAME


def _refs(claims: Iterable[dra_pb2.Claim]) -> list[ClaimRef]:
    return [ClaimRef(c.namespace, c.name, c.uid) for c in claims]


def _device(d: PreparedDevice) -> dra_pb2.Device:
    return dra_pb2.Device(request_names=list(d.requests), pool_name=d.pool,
                          device_name=d.device, cdi_device_ids=list(d.cdi_device_ids))


class DRAService(dra_grpc.DRAPluginServicer):
    """NodePrepareResources / NodeUnprepareResources over a :class:`ClaimManager`; a claim's
    failure is its response's error, never the call's."""

    def __init__(self, claims: ClaimManager) -> None:
        self.claims = claims

    def NodePrepareResources(self, request: dra_pb2.NodePrepareResourcesRequest,
                             context: grpc.ServicerContext) -> dra_pb2.NodePrepareResourcesResponse:
        response = dra_pb2.NodePrepareResourcesResponse()
        for uid, result in self.claims.prepare(_refs(request.claims)).items():
            if isinstance(result, PreparedClaim):
                response.claims[uid].devices.extend(_device(d) for d in result.devices)
            else:
                response.claims[uid].error = result
        return response

    def NodeUnprepareResources(self, request: dra_pb2.NodeUnprepareResourcesRequest,
                               context: grpc.ServicerContext
                               ) -> dra_pb2.NodeUnprepareResourcesResponse:
        response = dra_pb2.NodeUnprepareResourcesResponse()
        for uid, error in self.claims.unprepare(_refs(request.claims)).items():
            response.claims[uid].error = error
        return response


class RegistrationService(reg_grpc.RegistrationServicer):
    """What the kubelet's plugin watcher asks on the registration socket."""

    def __init__(self, endpoint: Path) -> None:
        self.endpoint = endpoint
        self.registered = threading.Event()
        self.last_error = ""

    def GetInfo(self, request: reg_pb2.InfoRequest,
                context: grpc.ServicerContext) -> reg_pb2.PluginInfo:
        return reg_pb2.PluginInfo(type=PLUGIN_TYPE, name=DRIVER, endpoint=str(self.endpoint),
                                  supported_versions=[DRA_SERVICE])

    def NotifyRegistrationStatus(self, request: reg_pb2.RegistrationStatus,
                                 context: grpc.ServicerContext
                                 ) -> reg_pb2.RegistrationStatusResponse:
        if request.plugin_registered:
            log.info("registered with the kubelet as DRA driver %s", DRIVER)
            self.registered.set()
            self.last_error = ""
        else:
            log.error("the kubelet refused the registration: %s", request.error)
            self.registered.clear()
            self.last_error = request.error
        return reg_pb2.RegistrationStatusResponse()


class _Served:
    """One gRPC server on one unix socket, with the socket file's identity."""

    def __init__(self, path: Path, add: Callable[[grpc.Server], None]) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self.server = grpc.server(ThreadPoolExecutor(max_workers=4))
        add(self.server)
        if not self.server.add_insecure_port(f"unix://{path}"):
            raise OSError(f"cannot listen on {path}")
        self.server.start()
        self.inode = path.stat().st_ino

    def intact(self) -> bool:
        try:
            return self.path.stat().st_ino == self.inode
        except FileNotFoundError:
            return False

    def stop(self, unlink: bool = True) -> None:
        self.server.stop(grace=1).wait()
        if unlink and self.intact():
            self.path.unlink(missing_ok=True)


class KubeletPlugin:
    """Serves and registers the plugin until :meth:`stop`."""

    def __init__(self, paths: Paths, claims: ClaimManager, health_port: int | None = None,
                 health_address: str = "0.0.0.0", interval: float = 1.0,
                 tasks: tuple[Callable[[], None], ...] = ()) -> None:
        self.paths, self.claims = paths, claims
        self.health_port, self.health_address = health_port, health_address
        self.interval, self.tasks = interval, tasks
        self.registration = RegistrationService(paths.dra_socket)
        self._stopping = threading.Event()
        self._dra: _Served | None = None
        self._reg: _Served | None = None
        self._health: grpc.Server | None = None
        self._thread: threading.Thread | None = None
        self.registrations = 0  # registration sockets created (1 + re-registrations)

    # --- serving ---

    def _add_dra(self, server: grpc.Server) -> None:
        dra_grpc.add_DRAPluginServicer_to_server(DRAService(self.claims), server)
        server.add_generic_rpc_handlers((health.handler(self.status_of, self._stopping),))

    def _add_registration(self, server: grpc.Server) -> None:
        reg_grpc.add_RegistrationServicer_to_server(self.registration, server)

    def _serve_registration(self) -> None:
        if self._reg is not None:
            self._reg.stop(unlink=False)
        self.registration.registered.clear()
        self._reg = _Served(self.paths.registration_socket, self._add_registration)
        self.registrations += 1
        log.info("registration socket %s", self.paths.registration_socket)

    def start(self) -> None:
        """Serve the DRA socket, then the registration socket (the kubelet connects to the
        DRA socket as soon as it sees the registration), and the health port."""
        self._dra = _Served(self.paths.dra_socket, self._add_dra)
        log.info("DRA service %s on %s", DRA_SERVICE, self.paths.dra_socket)
        self._serve_registration()
        if self.health_port is not None:
            self._health = grpc.server(ThreadPoolExecutor(max_workers=2))
            self._health.add_generic_rpc_handlers((health.handler(self.status_of,
                                                                  self._stopping),))
            bound = self._health.add_insecure_port(f"{self.health_address}:{self.health_port}")
            if not bound:
                raise OSError(f"cannot listen on {self.health_address}:{self.health_port}")
            self.health_port = bound
            self._health.start()
            log.info("health service on %s:%d", self.health_address, bound)
        self._thread = threading.Thread(target=self._maintain, name="dra-plugin-maintenance",
                                        daemon=True)
        self._thread.start()

    def _maintain(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                if self._dra is not None and not self._dra.intact():
                    log.warning("DRA socket %s gone: serving it again", self._dra.path)
                    self._dra.stop(unlink=False)
                    self._dra = _Served(self.paths.dra_socket, self._add_dra)
                if self._reg is not None and not self._reg.intact():
                    log.warning("registration socket %s gone: registering again",
                                self._reg.path)
                    self._serve_registration()
            except Exception as exc:  # keep trying: the directories may come back
                log.error("re-creating a socket failed: %s", exc)
            for task in self.tasks:
                try:
                    task()
                except Exception as exc:
                    log.error("periodic task failed: %s", str(exc).splitlines()[0]
                              if str(exc) else type(exc).__name__)

    # --- health ---

    def liveness(self) -> bool:
        """Both sockets answer: GetInfo on the registration socket, an empty
        NodePrepareResources on the DRA socket."""
        try:
            with grpc.insecure_channel(f"unix://{self.paths.registration_socket}") as channel:
                info = reg_grpc.RegistrationStub(channel).GetInfo(reg_pb2.InfoRequest(),
                                                                  timeout=CHECK_TIMEOUT)
            with grpc.insecure_channel(f"unix://{self.paths.dra_socket}") as channel:
                dra_grpc.DRAPluginStub(channel).NodePrepareResources(
                    dra_pb2.NodePrepareResourcesRequest(), timeout=CHECK_TIMEOUT)
        except grpc.RpcError as exc:
            log.warning("liveness check failed: %s", exc)
            return False
        return bool(info.name == DRIVER)

    def status_of(self, service: str) -> int | None:
        if service not in LIVENESS_SERVICES:
            return None
        if self._stopping.is_set():
            return health.NOT_SERVING
        return health.SERVING if self.liveness() else health.NOT_SERVING

    # --- stopping ---

    def wait(self, timeout: float | None = None) -> bool:
        """Block until stopped (True) or ``timeout``."""
        return self._stopping.wait(timeout)

    def stop(self) -> None:
        """Stop serving and remove the sockets (the registration socket first, so the kubelet
        stops using the plugin)."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        for served in (self._reg, self._dra):
            if served is not None:
                served.stop()
        if self._health is not None:
            self._health.stop(grace=1).wait()
        log.info("kubelet plugin stopped")

