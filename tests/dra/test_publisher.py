"""The publisher's sync against an in-memory stand-in for CustomObjectsApi: what it writes,
that it writes nothing when nothing changed, and that API errors and hostile QPUNodes are
logged without stopping it."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from qbackbone.dra.attributes import DRIVER
from qbackbone.dra.publisher import Publisher, device_class
from qbackbone.dra.slices import CLOUD_POOL
from tests.dra.test_attributes import qpunode


class FakeCustom:
    """Cluster-scoped custom objects in memory, with resourceVersions, generateName and
    injectable failures (``fail[(verb, plural)] = status``)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, dict[str, Any]]] = {}
        self.calls: list[tuple[str, str]] = []
        self.fail: dict[tuple[str, str], int] = {}
        self._n = 0

    def _check(self, verb: str, plural: str) -> None:
        self.calls.append((verb, plural))
        if (verb, plural) in self.fail:
            raise ApiException(status=self.fail[(verb, plural)], reason="Injected")

    def list_cluster_custom_object(self, group: str, version: str, plural: str,
                                   **kw: Any) -> dict[str, Any]:
        self._check("list", plural)
        return {"items": [copy.deepcopy(o) for o in self.objects.get(plural, {}).values()]}

    def get_cluster_custom_object(self, group: str, version: str, plural: str, name: str,
                                  **kw: Any) -> dict[str, Any]:
        self._check("get", plural)
        if name not in self.objects.get(plural, {}):
            raise ApiException(status=404, reason="NotFound")
        return copy.deepcopy(self.objects[plural][name])

    def create_cluster_custom_object(self, group: str, version: str, plural: str,
                                     body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        self._check("create", plural)
        obj = copy.deepcopy(body)
        self._n += 1
        meta = obj["metadata"]
        meta.setdefault("name", f"{meta.pop('generateName', 'x-')}{self._n:05d}")
        meta["resourceVersion"] = str(self._n)
        self.objects.setdefault(plural, {})[meta["name"]] = obj
        return obj

    def replace_cluster_custom_object(self, group: str, version: str, plural: str, name: str,
                                      body: dict[str, Any], **kw: Any) -> dict[str, Any]:
        self._check("update", plural)
        old = self.objects[plural][name]
        if body["metadata"].get("resourceVersion") != old["metadata"]["resourceVersion"]:
            raise ApiException(status=409, reason="Conflict")
        self._n += 1
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(self._n)
        self.objects[plural][name] = obj
        return obj

    def delete_cluster_custom_object(self, group: str, version: str, plural: str, name: str,
                                     **kw: Any) -> None:
        self._check("delete", plural)
        if self.objects.get(plural, {}).pop(name, None) is None:
            raise ApiException(status=404, reason="NotFound")

    def put(self, obj: dict[str, Any]) -> None:
        name = (obj.get("metadata") or {}).get("name") or "?"
        self.objects.setdefault("qpunodes", {})[name] = obj

    def writes(self) -> list[tuple[str, str]]:
        return [c for c in self.calls if c[0] not in ("list", "get")]


def devices(fake: FakeCustom) -> dict[str, str]:
    """Device name -> pool name."""
    return {d["name"]: o["spec"]["pool"]["name"]
            for o in fake.objects.get("resourceslices", {}).values()
            for d in o["spec"]["devices"]}


@pytest.fixture()
def fake() -> FakeCustom:
    f = FakeCustom()
    f.put(qpunode("hosted", nodeName="host-a"))
    f.put(qpunode("cloud"))
    f.put(qpunode("down", ready=False))
    return f


def test_first_sync_publishes_ready_qpus_and_the_device_class(fake: FakeCustom) -> None:
    result = Publisher(None, custom=fake).sync()
    assert result.published == ["cloud", "hosted"] and not result.errors
    assert result.skipped == {"down": "NotReady: the QPUNode is not Ready"}
    assert devices(fake) == {"hosted": "host-a", "cloud": CLOUD_POOL}
    assert fake.objects["deviceclasses"][DRIVER]["spec"] == device_class()["spec"]


def test_nothing_changed_nothing_written(fake: FakeCustom) -> None:
    publisher = Publisher(None, custom=fake)
    publisher.sync()
    fake.calls.clear()
    result = publisher.sync()
    assert not result.changes and fake.writes() == []


def test_recalibration_and_removal(fake: FakeCustom) -> None:
    publisher = Publisher(None, custom=fake)
    publisher.sync()
    fake.objects["qpunodes"]["hosted"]["status"]["calibration"]["median2QError"] = 0.03
    fake.calls.clear()
    publisher.sync()
    assert fake.writes() == [("update", "resourceslices")]
    (host,) = [o for o in fake.objects["resourceslices"].values()
               if o["spec"]["pool"]["name"] == "host-a"]
    assert host["spec"]["pool"]["generation"] == 2
    assert host["spec"]["devices"][0]["attributes"]["error2qPpm"] == {"int": 30000}
    del fake.objects["qpunodes"]["cloud"]
    publisher.sync()
    assert devices(fake) == {"hosted": "host-a"}


def test_hostile_qpunodes_are_skipped_and_logged_once(
        fake: FakeCustom, caplog: pytest.LogCaptureFixture) -> None:
    bad = qpunode("bad")
    bad["status"]["calibration"]["medianT1Us"] = float("nan")
    fake.put(bad)
    fake.put({"metadata": {"name": "garbage"}, "spec": [], "status": "Ready"})
    fake.put({"kind": "QPUNode"})
    publisher = Publisher(None, custom=fake)
    with caplog.at_level(logging.INFO):
        result = publisher.sync()
        publisher.sync()
    assert result.published == ["cloud", "hosted"]
    assert result.skipped["bad"].startswith("InvalidCalibration")
    assert set(result.skipped) == {"bad", "garbage", "?", "down"}
    lines = [r.getMessage() for r in caplog.records if "not published" in r.getMessage()]
    assert len(lines) == 4  # once each, not again on the second sync
    del fake.objects["qpunodes"]["bad"]
    bad["status"]["calibration"]["medianT1Us"] = 50.0
    fake.put(bad)
    with caplog.at_level(logging.INFO):
        publisher.sync()
    assert "QPUNode bad published again" in caplog.text
    assert "bad" in devices(fake)


def test_an_api_error_on_one_slice_does_not_stop_the_others(fake: FakeCustom) -> None:
    publisher = Publisher(None, custom=fake)
    fake.fail[("create", "resourceslices")] = 422
    result = publisher.sync()
    assert len(result.errors) == 2 and "422" in result.errors[0]
    del fake.fail[("create", "resourceslices")]
    assert not publisher.sync().errors
    assert devices(fake) == {"hosted": "host-a", "cloud": CLOUD_POOL}


def test_device_class_is_repaired_keeping_other_fields(fake: FakeCustom) -> None:
    publisher = Publisher(None, custom=fake)
    publisher.sync()
    cls = fake.objects["deviceclasses"][DRIVER]
    cls["spec"] = {"selectors": [{"cel": {"expression": "true"}}],
                   "config": [{"opaque": {"driver": DRIVER, "parameters": {}}}]}
    publisher.sync()
    spec = fake.objects["deviceclasses"][DRIVER]["spec"]
    assert spec["selectors"] == device_class()["spec"]["selectors"]
    assert spec["config"]  # kept
    fake.calls.clear()
    Publisher(None, custom=fake, manage_device_class=False).sync()
    assert not [c for c in fake.calls if c[1] == "deviceclasses"]


def test_listing_failure_raises_and_cleanup_removes_the_slices(fake: FakeCustom) -> None:
    publisher = Publisher(None, custom=fake)
    fake.fail[("list", "qpunodes")] = 500
    with pytest.raises(ApiException):
        publisher.sync()
    del fake.fail[("list", "qpunodes")]
    publisher.sync()
    publisher.remove_slices()
    assert fake.objects["resourceslices"] == {}


def test_run_recovers_from_failures_and_stops_cleanly(fake: FakeCustom) -> None:
    import threading
    import time

    fake.fail[("list", "resourceslices")] = 503  # the API failing at first
    publisher = Publisher(None, custom=fake, resync=0.2, cleanup=True)
    thread = threading.Thread(target=publisher.run)
    thread.start()
    try:
        time.sleep(0.5)
        assert "resourceslices" not in fake.objects
        del fake.fail[("list", "resourceslices")]
        deadline = time.monotonic() + 10
        while devices(fake) != {"hosted": "host-a", "cloud": CLOUD_POOL}:
            assert time.monotonic() < deadline, "not published after the API recovered"
            time.sleep(0.05)
    finally:
        publisher.stop()
        thread.join(5)
    assert not thread.is_alive()
    assert fake.objects["resourceslices"] == {}  # cleanup=True
