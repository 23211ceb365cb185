"""The Cogentco example: wider than every QPU of the default fleet, so it is decomposed."""

from __future__ import annotations

from pathlib import Path

from qbackbone.api.manifests import load_manifests
from qbackbone.core.pipeline.regions import plan_decomposition
from qbackbone.core.qpus.fleet import build_fleet, default_fleet_nodes

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "decomposition"


def test_the_cogentco_example_plans_a_decomposition_on_the_default_fleet() -> None:
    found = load_manifests([EXAMPLE / "cogentco-topology.yaml",
                            EXAMPLE / "traffic-cogentco-decomposed.yaml"])
    assert not found.skipped
    (job,) = found.jobs
    (policy,) = found.policies
    fleet = build_fleet(default_fleet_nodes())
    plan = plan_decomposition(job, policy, fleet, found.read_config_map)
    assert plan is not None
    assert plan.whole.problem.graph.number_of_nodes() == 197
    assert plan.whole.problem.qubo.size == 113 > plan.limit == 16
    assert plan.width == 8
    regions = plan.regions
    assert all(r.origin == "partition" for r in regions) and len(regions) >= 10
    assert sorted(n for r in regions for n in r.nodes) == sorted(plan.whole.problem.graph.nodes)
    policy.spec.optimization.decomposition.enabled = False
    assert plan_decomposition(job, policy, fleet, found.read_config_map) is None


def test_the_cogentco_slice_example_plans_a_decomposition_on_the_default_fleet() -> None:
    found = load_manifests([EXAMPLE / "cogentco-topology.yaml",
                            EXAMPLE / "slices-cogentco-decomposed.yaml"])
    assert not found.skipped
    (job,) = found.jobs
    (policy,) = found.policies
    fleet = build_fleet(default_fleet_nodes())
    plan = plan_decomposition(job, policy, fleet, found.read_config_map)
    assert plan is not None and plan.whole.kind == "sliceAdmission"
    assert plan.whole.problem.qubo.size == 60 > plan.limit == 16 and plan.width == 8
    regions = plan.regions
    assert all(r.origin == "partition" for r in regions) and len(regions) >= 5
    assert sum(len(r.nodes) for r in regions) == 197
    homes = plan.whole.homes(regions)
    assert len(homes) == 40 and len(set(homes)) >= 5
    policy.spec.optimization.decomposition.enabled = False
    assert plan_decomposition(job, policy, fleet, found.read_config_map) is None
