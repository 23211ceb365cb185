"""QPUNode and InvocationPolicy status written by the operator."""

from __future__ import annotations

from functools import partial

import pytest
from kubernetes import client

from qbackbone.dev.waiting import wait_for
from tests.operator.kit import G, V, condition, create, policy, qpunode, ready_status

pytestmark = pytest.mark.cluster


def test_ready_qpunodes_report_resource_and_generation(api: client.ApiClient,
                                                       fleet: tuple[str, ...]) -> None:
    custom = client.CustomObjectsApi(api)
    obj = custom.get_cluster_custom_object(G, V, "qpunodes", fleet[0])
    status = obj["status"]
    assert status["resourceName"] == f"qpu.qbackbone.io/{fleet[0]}"
    assert status["observedGeneration"] == obj["metadata"]["generation"]
    ready = condition(obj, "Ready")
    assert ready is not None and ready["reason"] == "Calibrated"


def test_unknown_fake_device_is_not_ready(api: client.ApiClient, fleet: tuple[str, ...],
                                          core: client.CoreV1Api) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_cluster_custom_object(G, V, "qpunodes",
                                        qpunode("qpu-bogus", "fake", "fake_nowhere"))
    try:
        obj = wait_for(partial(ready_status, custom, "qpu-bogus", "False"), 60,
                       what="QPUNode qpu-bogus Ready=False")
        ready = condition(obj, "Ready")
        assert ready is not None and ready["reason"] == "BackendUnavailable", ready
        assert "fake_nowhere" in ready["message"]
        assert "calibration" not in obj["status"]
    finally:
        custom.delete_cluster_custom_object(G, V, "qpunodes", "qpu-bogus")


def test_policies_get_a_valid_condition(api: client.ApiClient, namespace: str,
                                        fleet: tuple[str, ...]) -> None:
    create(api, namespace, policy("ok", verification={"maxDeviationSigma": 5}))
    # The schema cannot see this one: cutting enabled with no cut kinds.
    create(api, namespace, policy("empty-cuts", cutting={"enabled": True,
                                                         "allowedCutKinds": []}))
    custom = client.CustomObjectsApi(api)

    def valid(name: str) -> dict[str, str] | None:
        obj = custom.get_namespaced_custom_object(G, V, namespace, "invocationpolicies", name)
        return condition(obj, "Valid")

    ok = wait_for(partial(valid, "ok"), 30, what="policy ok Valid")
    bad = wait_for(partial(valid, "empty-cuts"), 30, what="policy empty-cuts Valid")
    assert ok["status"] == "True"
    assert bad["status"] == "False" and bad["reason"] == "InvalidPolicy"
    assert "allowedCutKinds" in bad["message"]


def test_a_noisy_qpunode_carries_its_readout_calibration(api: client.ApiClient,
                                                        fleet: tuple[str, ...]) -> None:
    custom = client.CustomObjectsApi(api)
    custom.create_cluster_custom_object(G, V, "qpunodes",
                                        qpunode("qpu-lima-ro", "fake", "fake_lima"))
    try:
        obj = wait_for(partial(ready_status, custom, "qpu-lima-ro", "True"), 60,
                       what="QPUNode qpu-lima-ro Ready")
        readout = obj["status"]["readoutCalibration"]
        assert len(readout["flipFrom0"]) == len(readout["flipFrom1"]) == 5
        assert max(readout["flipFrom0"] + readout["flipFrom1"]) > 0.005  # fake_lima misreads
        assert readout["shots"] == 4000 and "fake_lima" in readout["qpuCalibration"]
        ideal = custom.get_cluster_custom_object(G, V, "qpunodes", fleet[0])
        assert "readoutCalibration" not in ideal["status"]  # nothing to calibrate
    finally:
        custom.delete_cluster_custom_object(G, V, "qpunodes", "qpu-lima-ro")
