"""Devices -> ResourceSlices per pool; generations; only changed pools are rewritten."""

from __future__ import annotations

import copy
from typing import Any

from qbackbone.dra.attributes import DRIVER, device_of
from qbackbone.dra.slices import (
    CLOUD_POOL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    MAX_DEVICES_PER_SLICE,
    plan,
    pools_of,
)
from tests.dra.test_attributes import qpunode


def pools(*objs: dict[str, Any]) -> dict[str, Any]:
    found, refused = pools_of(device_of(o) for o in objs)
    assert not refused
    return found


def served(changes: Any, existing: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """What the API server would hold after applying ``changes`` to ``existing``."""
    held = {o["metadata"]["name"]: copy.deepcopy(o) for o in existing or []}
    for name in changes.delete:
        del held[name]
    for body in changes.update:
        assert body["metadata"]["resourceVersion"] == held[body["metadata"]["name"]][
            "metadata"]["resourceVersion"]
        held[body["metadata"]["name"]] = copy.deepcopy(body)
    for i, body in enumerate(changes.create):
        obj = copy.deepcopy(body)
        obj["metadata"]["name"] = obj["metadata"]["generateName"] + f"x{len(held)}{i}"
        held[obj["metadata"]["name"]] = obj
    for obj in held.values():
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"].get("resourceVersion")
                                                     or 0) + 1)
    return list(held.values())


def test_hosted_cloud_and_selector_pools() -> None:
    got = pools(qpunode("a", nodeName="host-a"), qpunode("b", nodeName="host-a"),
                qpunode("c"), qpunode("d", nodeSelector={"zone": "fra"}))
    assert sorted(got) == sorted(["host-a", CLOUD_POOL, got_selector(got)])
    changes = plan(got, [])
    assert not changes.update and not changes.delete
    by_pool = {b["spec"]["pool"]["name"]: b for b in changes.create}
    host = by_pool["host-a"]
    assert host["apiVersion"] == "resource.k8s.io/v1" and host["kind"] == "ResourceSlice"
    assert host["metadata"]["labels"] == {MANAGED_BY_LABEL: MANAGED_BY}
    assert host["metadata"]["generateName"].startswith(f"{DRIVER}-host-a-")
    assert host["spec"]["driver"] == DRIVER and host["spec"]["nodeName"] == "host-a"
    assert host["spec"]["pool"] == {"name": "host-a", "generation": 1, "resourceSliceCount": 1}
    assert [d["name"] for d in host["spec"]["devices"]] == ["a", "b"]
    assert by_pool[CLOUD_POOL]["spec"]["allNodes"] is True
    assert "nodeName" not in by_pool[CLOUD_POOL]["spec"]
    sel = by_pool[got_selector(got)]["spec"]["nodeSelector"]
    assert sel == {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "zone", "operator": "In", "values": ["fra"]}]}]}
    assert "/" not in by_pool[CLOUD_POOL]["metadata"]["generateName"]


def got_selector(got: dict[str, Any]) -> str:
    return next(n for n in got if n.startswith("cloud/selector-"))


def test_unchanged_pools_are_not_rewritten() -> None:
    objs = [qpunode("a", nodeName="host-a"), qpunode("c")]
    first = served(plan(pools(*objs), []))
    assert not plan(pools(*objs), first)


def test_calibration_change_bumps_the_pool_generation_only() -> None:
    a, c = qpunode("a", nodeName="host-a"), qpunode("c")
    held = served(plan(pools(a, c), []))
    a2 = copy.deepcopy(a)
    a2["status"]["calibration"]["median2QError"] = 0.02
    changes = plan(pools(a2, c), held)
    assert not changes.create and not changes.delete and len(changes.update) == 1
    body = changes.update[0]
    assert body["spec"]["pool"]["generation"] == 2
    assert body["spec"]["devices"][0]["attributes"]["error2qPpm"] == {"int": 20000}
    held = served(changes, held)
    assert not plan(pools(a2, c), held)


def test_removed_device_and_empty_pool() -> None:
    a, b, c = qpunode("a", nodeName="h"), qpunode("b", nodeName="h"), qpunode("c")
    held = served(plan(pools(a, b, c), []))
    changes = plan(pools(a, c), held)  # b gone: pool h rewritten without it
    assert [d["name"] for d in changes.update[0]["spec"]["devices"]] == ["a"]
    held = served(changes, held)
    changes = plan(pools(a), held)  # c gone: the cloud pool's slice deleted
    assert changes.delete and not changes.update and not changes.create
    held = served(changes, held)
    assert [o["spec"]["pool"]["name"] for o in held] == ["h"]
    assert served(plan({}, held), held) == []


def test_large_pools_split_with_one_generation() -> None:
    many = [qpunode(f"q{i:03}") for i in range(MAX_DEVICES_PER_SLICE + 5)]
    held = served(plan(pools(*many), []))
    assert len(held) == 2
    assert {o["spec"]["pool"]["resourceSliceCount"] for o in held} == {2}
    assert not plan(pools(*many), held)
    changed = copy.deepcopy(many)
    changed[-1]["status"]["calibration"]["median1QError"] = 0.5
    changes = plan(pools(*changed), held)
    assert len(changes.update) == 2  # every slice of the pool at the new generation
    assert {b["spec"]["pool"]["generation"] for b in changes.update} == {2}
    shrunk = plan(pools(*many[:3]), held)
    assert len(shrunk.update) == 1 and len(shrunk.delete) == 1
    assert shrunk.update[0]["spec"]["pool"]["resourceSliceCount"] == 1


def test_generation_continues_from_the_highest_seen() -> None:
    a = qpunode("a")
    held = served(plan(pools(a), []))
    held[0]["spec"]["pool"]["generation"] = 41  # e.g. written by an earlier publisher
    held[0]["spec"]["devices"] = []
    changes = plan(pools(a), held)
    assert changes.update[0]["spec"]["pool"]["generation"] == 42


def test_duplicate_device_names_in_a_pool_are_refused() -> None:
    found, refused = pools_of([device_of(qpunode("x.y")), device_of(qpunode("x.y-"))])
    assert not refused  # distinct hashes
    dup = device_of(qpunode("q1"))
    twin = type(dup)(qpunode="other", placement=dup.placement, entry=dup.entry)
    found, refused = pools_of([dup, twin])
    assert len(refused) == 1 and refused[0][1].startswith("DuplicateDeviceName")
    assert len(found[CLOUD_POOL].devices) == 1


def test_placement_change_recreates_the_slice() -> None:
    held = served(plan(pools(qpunode("a", nodeName="h")), []))
    held[0]["spec"]["nodeName"] = "elsewhere"  # immutable on the server: cannot replace
    changes = plan(pools(qpunode("a", nodeName="h")), held)
    assert changes.delete == [held[0]["metadata"]["name"]] and len(changes.create) == 1


def test_server_defaults_do_not_count_as_changes() -> None:
    held = served(plan(pools(qpunode("a")), []))
    held[0]["spec"]["devices"][0]["allowMultipleAllocations"] = False
    held[0]["metadata"]["uid"] = "u"
    assert not plan(pools(qpunode("a")), held)
