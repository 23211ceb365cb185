"""QPUNode -> DRA device: attributes, units, placement and hostile content."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from qbackbone.api.qpunode import CalibrationSnapshot
from qbackbone.dra.attributes import (
    ATTRIBUTE_NAMES,
    UNBOUNDED,
    Placement,
    Unpublishable,
    device_name,
    device_of,
)

READY = {"type": "Ready", "status": "True", "reason": "Calibrated"}


def qpunode(name: str = "fake-torino", provider: str = "fake", backend: str = "fake_torino",
            calibration: dict[str, Any] | None = None, ready: bool = True,
            **spec: Any) -> dict[str, Any]:
    cal = CalibrationSnapshot(
        median_t1_us=112.4, median_t2_us=98.6, median_1q_error=2.5e-4, median_2q_error=8.5e-3,
        median_readout_error=1.5e-2, median_2q_duration_ns=660.0, two_qubit_gate="cz",
        taken_at=datetime(2025, 8, 19, 10, 40, tzinfo=UTC),
    ).model_dump(by_alias=True, mode="json", exclude_none=True) if calibration is None \
        else calibration
    status: dict[str, Any] = {"conditions": [READY if ready else {**READY, "status": "False"}],
                              "deviceQubits": 133, "derivedMaxDepth": 40}
    if cal:
        status["calibration"] = cal
    return {"apiVersion": "qbackbone.io/v1alpha1", "kind": "QPUNode",
            "metadata": {"name": name},
            "spec": {"backend": {"provider": provider, "name": backend}, **spec},
            "status": status}


def attrs(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: next(iter(v.values())) for k, v in device_of(obj).entry["attributes"].items()}


def test_calibrated_qpu_in_scaled_units() -> None:
    a = attrs(qpunode(qubits=27, site="fra"))
    assert a == {"qpu": "fake-torino", "qubits": 27, "deviceQubits": 133, "t1Us": 112,
                 "t2Us": 99, "error1qPpm": 250, "error2qPpm": 8500, "readoutErrorPpm": 15000,
                 "maxDepth": 40, "calibratedAt": 1755600000, "provider": "fake",
                 "backend": "fake_torino", "site": "fra", "technology": "superconducting",
                 "ideal": False}
    assert set(a) == set(ATTRIBUTE_NAMES)


def test_typed_attributes() -> None:
    entry = device_of(qpunode()).entry
    assert entry["name"] == "fake-torino"
    assert entry["attributes"]["qubits"] == {"int": 133}
    assert entry["attributes"]["ideal"] == {"bool": False}
    assert entry["attributes"]["qpu"] == {"string": "fake-torino"}


def test_spec_max_depth_wins_and_qubits_capped_by_device() -> None:
    a = attrs(qpunode(maxDepth=12, qubits=500))
    assert a["maxDepth"] == 12 and a["qubits"] == 133


def test_ideal_simulator_has_every_attribute() -> None:
    obj = qpunode("sim", "aer", "aer_simulator", calibration={}, qubits=8)
    obj["status"]["deviceQubits"] = 8
    del obj["status"]["derivedMaxDepth"]
    a = attrs(obj)
    assert set(a) == set(ATTRIBUTE_NAMES)
    assert a["ideal"] is True and a["technology"] == "simulator"
    assert a["t1Us"] == a["t2Us"] == a["maxDepth"] == UNBOUNDED
    assert a["error1qPpm"] == a["error2qPpm"] == a["readoutErrorPpm"] == 0
    assert a["site"] == "" and a["calibratedAt"] == 0


def test_aer_with_device_noise_needs_calibration() -> None:
    obj = qpunode("noisy", "aer", "aer_simulator", calibration={})
    obj["spec"]["backend"]["options"] = {"noiseFrom": "fake_sherbrooke"}
    with pytest.raises(Unpublishable) as err:
        device_of(obj)
    assert err.value.reason == "MissingCalibration"
    calibrated = qpunode("noisy", "aer", "aer_simulator")
    calibrated["spec"] = obj["spec"]
    assert attrs(calibrated)["ideal"] is False and attrs(calibrated)["technology"] == "simulator"


def test_placement() -> None:
    assert device_of(qpunode(nodeName="host-a")).placement == Placement(node="host-a")
    assert device_of(qpunode(nodeSelector={"zone": "fra", "a/b": "c"})).placement == Placement(
        selector=(("a/b", "c"), ("zone", "fra")))
    assert device_of(qpunode()).placement == Placement()


@pytest.mark.parametrize("name", ["qpu.fra.1", "QPU_A", "x" * 64, "-odd-"])
def test_device_names_are_dns_labels(name: str) -> None:
    label = device_name(name)
    assert len(label) <= 63 and label == label.lower() and label[0].isalnum()
    assert label[-1].isalnum() and all(c.isalnum() or c == "-" for c in label)
    assert device_name(name) == label  # stable


def test_dotted_name_differs_from_dashed() -> None:
    assert device_name("a.b") != device_name("a-b") == "a-b"


def _reason(obj: dict[str, Any]) -> str:
    with pytest.raises(Unpublishable) as err:
        device_of(obj)
    return err.value.reason


def test_not_ready_is_not_published() -> None:
    assert _reason(qpunode(ready=False)) == "NotReady"
    obj = qpunode()
    del obj["status"]
    assert _reason(obj) == "NotReady"


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("medianT1Us", math.nan, "InvalidCalibration"),
    ("medianT1Us", math.inf, "InvalidCalibration"),
    ("medianT1Us", 1e300, "InvalidCalibration"),
    ("medianT1Us", 10**400, "InvalidCalibration"),
    ("medianT1Us", -5, "InvalidCalibration"),
    ("medianT1Us", "112", "InvalidCalibration"),
    ("medianT1Us", True, "InvalidCalibration"),
    ("medianT2Us", None, "MissingCalibration"),
    ("median2QError", 1.5, "InvalidCalibration"),
    ("median2QError", -1e-3, "InvalidCalibration"),
    ("medianReadoutError", [0.1], "InvalidCalibration"),
])
def test_hostile_calibration(field: str, value: Any, reason: str) -> None:
    obj = qpunode()
    obj["status"]["calibration"][field] = value
    assert _reason(obj) == reason


def test_hostile_objects() -> None:
    assert _reason(qpunode(calibration={})) == "MissingCalibration"
    assert _reason(qpunode("q" * 65)) == "NameTooLong"
    assert _reason(qpunode(provider="quantum-magic")) == "InvalidBackend"
    assert _reason(qpunode(provider=["aer"])) == "InvalidBackend"  # type: ignore[arg-type]
    assert _reason(qpunode(site="s" * 65)) == "InvalidAttribute"
    assert _reason(qpunode(backend="b" * 200)) == "InvalidAttribute"
    assert _reason(qpunode(nodeName="Not A Node")) == "InvalidNodeName"
    assert _reason(qpunode(nodeSelector={"bad key!": "x"})) == "InvalidNodeSelector"
    assert _reason(qpunode(nodeSelector={"zone": "v" * 64})) == "InvalidNodeSelector"
    assert _reason(qpunode(nodeSelector=["zone"])) == "InvalidNodeSelector"
    huge = qpunode()
    huge["status"]["deviceQubits"] = 10**30
    assert _reason(huge) == "InvalidCalibration"
    depth = qpunode()
    depth["status"]["derivedMaxDepth"] = 2.5
    assert _reason(depth) == "InvalidCalibration"
    nameless = qpunode()
    nameless["metadata"] = {}
    assert _reason(nameless) == "InvalidName"
    no_qubits = qpunode()
    del no_qubits["status"]["deviceQubits"]
    assert _reason(no_qubits) == "MissingCalibration"


def test_garbage_shapes_never_raise_anything_else() -> None:
    base = qpunode()
    for path, value in [(("spec",), "x"), (("status",), 3), (("spec", "backend"), None),
                        (("status", "conditions"), "Ready"), (("status", "calibration"), [1])]:
        obj = copy.deepcopy(base)
        target = obj
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(Unpublishable):
            device_of(obj)


def test_unreadable_taken_at_is_zero() -> None:
    obj = qpunode()
    obj["status"]["calibration"]["takenAt"] = "yesterday"
    assert attrs(obj)["calibratedAt"] == 0
    obj["status"]["calibration"]["takenAt"] = "2025-08-19T10:40:00"  # naive: UTC
    assert attrs(obj)["calibratedAt"] == 1755600000


@pytest.mark.parametrize(("provider", "backend", "ideal"), [("fake", "fake_manila", False),
                                                           ("aer", "aer_simulator", True)])
def test_the_operators_own_status_is_published(provider: str, backend: str, ideal: bool) -> None:
    """The status the operator writes (k8s/qpunodes.py) is what the driver reads."""
    from qbackbone.k8s.qpunodes import qpunode_status

    body: dict[str, Any] = {"apiVersion": "qbackbone.io/v1alpha1", "kind": "QPUNode",
                            "metadata": {"name": "q", "generation": 1},
                            "spec": {"backend": {"provider": provider, "name": backend},
                                     "qubits": 5}}
    body["status"] = qpunode_status(body).model_dump(by_alias=True, mode="json",
                                                     exclude_none=True)
    a = attrs(body)
    assert a["ideal"] is ideal and a["qubits"] == 5
    if not ideal:
        cal = body["status"]["calibration"]
        assert a["error2qPpm"] == round(cal["median2QError"] * 1e6) > 0
        assert a["t1Us"] == round(cal["medianT1Us"]) > 0
        assert a["maxDepth"] == body["status"]["derivedMaxDepth"]
        assert a["calibratedAt"] > 1_500_000_000
