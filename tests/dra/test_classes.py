"""Per-QPU DeviceClasses (dra/classes.py): one per published device, pinned by its `qpu`
attribute, made again when edited, deleted when the device leaves; kueue's mapping counts them
all as one QPU each; the operator's claim template names the QPU's class."""

from __future__ import annotations

import json

from qbackbone.dra.attributes import DRIVER, Device, Placement, device_name
from qbackbone.dra.classes import (
    QUOTA_RESOURCE,
    kueue_mappings,
    plan_classes,
    qpu_class,
    qpu_class_name,
)
from qbackbone.dra.slices import MANAGED_BY, MANAGED_BY_LABEL
from qbackbone.k8s.builders import JobRef, build_claim_template


def device(qpu: str) -> Device:
    return Device(qpunode=qpu, placement=Placement(), entry={"name": device_name(qpu)})


def test_a_class_selects_exactly_one_qpu_by_name() -> None:
    body = qpu_class("fake.torino")
    assert body["metadata"]["name"] == qpu_class_name("fake.torino")
    assert body["metadata"]["name"].endswith(f".{DRIVER}")
    assert body["metadata"]["labels"][MANAGED_BY_LABEL] == MANAGED_BY
    expression = body["spec"]["selectors"][0]["cel"]["expression"]
    assert expression == (f'device.driver == "{DRIVER}" && '
                          f'device.attributes["{DRIVER}"].qpu == "fake.torino"')
    tricky = qpu_class('a"b')["spec"]["selectors"][0]["cel"]["expression"]
    assert tricky.endswith(json.dumps('a"b'))  # quoted, never spliced
    assert qpu_class_name("a.b") != qpu_class_name("a-b")


def test_plan_creates_missing_deletes_gone_and_remakes_edited() -> None:
    keep, edited, gone = qpu_class("keep"), qpu_class("edit"), qpu_class("gone")
    edited["spec"]["selectors"] = [{"cel": {"expression": "true"}}]
    driver_class = {"metadata": {"name": DRIVER}, "spec": {}}
    changes = plan_classes([device("keep"), device("edit"), device("new")],
                           [keep, edited, gone, driver_class])
    assert sorted(changes.delete) == sorted([qpu_class_name("edit"), qpu_class_name("gone")])
    assert [b["metadata"]["name"] for b in changes.create] == sorted(
        [qpu_class_name("edit"), qpu_class_name("new")])
    assert not plan_classes([device("keep")], [keep])


def test_kueue_counts_the_driver_class_and_every_qpu_class_as_qpus() -> None:
    assert kueue_mappings(["b", "a", "a"]) == [{"name": QUOTA_RESOURCE, "deviceClassNames": [
        DRIVER, qpu_class_name("a"), qpu_class_name("b")]}]


def test_the_operators_claim_template_names_the_qpu_class_without_a_selector() -> None:
    template = build_claim_template(JobRef("job", "team-a", "uid"), "fake.torino")
    request = template["spec"]["spec"]["devices"]["requests"][0]
    assert request["exactly"] == {"deviceClassName": qpu_class_name("fake.torino")}
    assert template["metadata"]["ownerReferences"][0]["uid"] == "uid"
