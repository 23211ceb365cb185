"""The standard gRPC health service (``grpc.health.v1.Health``: Check and Watch), so a liveness
probe (the kubelet's ``grpc`` probe, grpc_health_probe) can ask the plugin whether it serves.

``grpcio-health-checking`` is not a dependency: the two tiny messages of grpc's health.proto
(``HealthCheckRequest {string service = 1}``, ``HealthCheckResponse {ServingStatus status =
1}``) are described here and built in a private descriptor pool, so they are wire-identical
to the standard ones and never clash with a generated copy.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "grpc.health.v1.Health"
UNKNOWN, SERVING, NOT_SERVING, SERVICE_UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {UNKNOWN: "UNKNOWN", SERVING: "SERVING", NOT_SERVING: "NOT_SERVING",
                SERVICE_UNKNOWN: "SERVICE_UNKNOWN"}
WATCH_PERIOD = 2.0  # seconds between checks of a Watch stream


def _messages() -> tuple[Any, Any]:
    fdp = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(name="qbackbone/dra/health_v1.proto",
                                           package="grpc.health.v1", syntax="proto3")
    request = f.message_type.add(name="HealthCheckRequest")
    request.field.add(name="service", number=1, type=fdp.TYPE_STRING, label=fdp.LABEL_OPTIONAL,
                      json_name="service")
    response = f.message_type.add(name="HealthCheckResponse")
    enum = response.enum_type.add(name="ServingStatus")
    for number, name in STATUS_NAMES.items():
        enum.value.add(name=name, number=number)
    response.field.add(name="status", number=1, type=fdp.TYPE_ENUM, label=fdp.LABEL_OPTIONAL,
                       type_name=".grpc.health.v1.HealthCheckResponse.ServingStatus",
                       json_name="status")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return (message_factory.GetMessageClass(
                pool.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest")),
            message_factory.GetMessageClass(
                pool.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse")))


HealthCheckRequest, HealthCheckResponse = _messages()

# service name -> its status now; None: the service is not known (NOT_FOUND)
StatusFunction = Callable[[str], "int | None"]


def handler(status_of: StatusFunction, stopping: threading.Event | None = None
            ) -> grpc.GenericRpcHandler:
    """The Health service answering with ``status_of(service)``."""
    stopping = stopping or threading.Event()

    def check(request: Any, context: grpc.ServicerContext) -> Any:
        status = status_of(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return HealthCheckResponse(status=status)

    def watch(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        last = -1
        while context.is_active() and not stopping.is_set():
            status = status_of(request.service)
            status = SERVICE_UNKNOWN if status is None else status
            if status != last:
                last = status
                yield HealthCheckResponse(status=status)
            stopping.wait(WATCH_PERIOD)

    return grpc.method_handlers_generic_handler(SERVICE, {
        "Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=HealthCheckRequest.FromString,
            response_serializer=HealthCheckResponse.SerializeToString),
        "Watch": grpc.unary_stream_rpc_method_handler(
            watch, request_deserializer=HealthCheckRequest.FromString,
            response_serializer=HealthCheckResponse.SerializeToString),
    })


def check(channel: grpc.Channel, service: str = "", timeout: float = 5.0) -> int:
    """Call Check on ``channel``; the status number (grpc.RpcError when it fails)."""
    call = channel.unary_unary(f"/{SERVICE}/Check",
                               request_serializer=HealthCheckRequest.SerializeToString,
                               response_deserializer=HealthCheckResponse.FromString)
    return int(call(HealthCheckRequest(service=service), timeout=timeout).status)
