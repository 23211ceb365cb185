"""The chart's kueue section (docs/kueue.md): off by default; when enabled a ResourceFlavor, a
StrictFIFO ClusterQueue whose quota counts QPUs as the DRA-mapped resource, and one LocalQueue
per team; wrong values are refused with their path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from qbackbone.dev.kueue_manifests import QPU_QUOTA_RESOURCE
from tests.chart.helm import CHART, documents, helm, render

TEAMS = ("--set", "kueue.enabled=true",
         "--set", "kueue.teams[0].namespace=team-a", "--set", "kueue.teams[0].localQueue=qa",
         "--set", "kueue.teams[1].namespace=team-b", "--set", "kueue.teams[1].localQueue=qb")


def kueue_docs(text: str) -> list[dict[str, Any]]:
    return [d for d in documents(text) if str(d["apiVersion"]).startswith("kueue.x-k8s.io/")]


def test_kueue_is_off_by_default(k8s_bin_dir: Path) -> None:
    assert kueue_docs(render(k8s_bin_dir)) == []


def test_kueue_renders_flavor_cluster_queue_and_a_local_queue_per_team(
        k8s_bin_dir: Path) -> None:
    docs = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
            for d in kueue_docs(render(k8s_bin_dir, *TEAMS, "--set",
                                       "kueue.clusterQueue.qpus=3"))}
    assert sorted(docs) == [("ClusterQueue", None, "qpu"), ("LocalQueue", "team-a", "qa"),
                            ("LocalQueue", "team-b", "qb"), ("ResourceFlavor", None, "qpu")]
    cq = docs[("ClusterQueue", None, "qpu")]
    assert cq["apiVersion"] == "kueue.x-k8s.io/v1beta2"
    spec = cq["spec"]
    assert spec["queueingStrategy"] == "StrictFIFO"
    assert spec["namespaceSelector"]["matchExpressions"] == [{
        "key": "kubernetes.io/metadata.name", "operator": "In", "values": ["team-a", "team-b"]}]
    [group] = spec["resourceGroups"]
    assert group["coveredResources"] == [QPU_QUOTA_RESOURCE, "cpu", "memory"]
    [flavor] = group["flavors"]
    assert flavor["name"] == "qpu"
    quotas = {r["name"]: r["nominalQuota"] for r in flavor["resources"]}
    assert quotas == {QPU_QUOTA_RESOURCE: 3, "cpu": "64", "memory": "256Gi"}
    for queue in ("qa", "qb"):
        lq = next(d for k, d in docs.items() if k[2] == queue)
        assert lq["spec"] == {"clusterQueue": "qpu"}


def test_kueue_without_cpu_memory_covers_qpus_only(k8s_bin_dir: Path) -> None:
    docs = kueue_docs(render(k8s_bin_dir, *TEAMS, "--set", "kueue.clusterQueue.cpu=",
                             "--set", "kueue.clusterQueue.memory=", "--set",
                             "kueue.clusterQueue.queueingStrategy=BestEffortFIFO",
                             "--set", "kueue.clusterQueue.cohort=quantum"))
    cq = next(d for d in docs if d["kind"] == "ClusterQueue")
    assert cq["spec"]["resourceGroups"][0]["coveredResources"] == [QPU_QUOTA_RESOURCE]
    assert cq["spec"]["queueingStrategy"] == "BestEffortFIFO"
    assert cq["spec"]["cohortName"] == "quantum"


@pytest.mark.parametrize(("settings", "message"), [
    (("kueue.enabled=true",), "kueue.enabled needs at least one team"),
    (("kueue.clusterQueue.qpus=-1",), "at '/kueue/clusterQueue/qpus'"),
    (("kueue.clusterQueue.queueingStrategy=LIFO",), "at '/kueue/clusterQueue/queueingStrategy'"),
    (("kueue.teams[0].namespace=Team_A",), "at '/kueue/teams/0"),
    (("kueue.clusterQueue.qpuResource=not a name",), "at '/kueue/clusterQueue/qpuResource'"),
    (("kueue.enable=true",), "at '/kueue': additional properties 'enable' not allowed"),
])
def test_wrong_kueue_values_are_refused(k8s_bin_dir: Path, settings: tuple[str, ...],
                                        message: str) -> None:
    proc = helm(k8s_bin_dir, "template", "qbackbone", str(CHART),
                *(a for s in settings for a in ("--set", s)))
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr
