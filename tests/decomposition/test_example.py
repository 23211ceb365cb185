"""The Cogentco examples: wider than every QPU of the default fleet, so they are decomposed."""

from __future__ import annotations

from pathlib import Path

import pytest

from qbackbone.api.manifests import load_manifests
from qbackbone.core.pipeline.regions import plan_decomposition
from qbackbone.core.qpus.fleet import build_fleet, default_fleet_nodes

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "decomposition"


@pytest.mark.parametrize(("manifest", "kind", "variables", "least_regions"), [
    ("traffic-cogentco-decomposed.yaml", "trafficEngineering", 113, 10),
    ("slices-cogentco-decomposed.yaml", "sliceAdmission", 60, 5)])
def test_the_cogentco_example_plans_a_decomposition_on_the_default_fleet(
        manifest: str, kind: str, variables: int, least_regions: int) -> None:
    found = load_manifests([EXAMPLE / "cogentco-topology.yaml", EXAMPLE / manifest])
    assert not found.skipped
    (job,) = found.jobs
    (policy,) = found.policies
    fleet = build_fleet(default_fleet_nodes())
    plan = plan_decomposition(job, policy, fleet, found.read_config_map)
    assert plan is not None and plan.whole.kind == kind
    assert plan.whole.problem.qubo.size == variables > plan.limit == 16
    assert plan.width == 8
    regions = plan.regions
    assert all(r.origin == "partition" for r in regions) and len(regions) >= least_regions
    nodes = sorted(n for r in regions for n in r.nodes)
    assert len(nodes) == 197 and len(set(nodes)) == 197  # every PoP in exactly one region
    homes = plan.whole.homes(regions)
    assert len(set(homes)) >= least_regions // 2  # the work is spread over the regions
    policy.spec.optimization.decomposition.enabled = False
    assert plan_decomposition(job, policy, fleet, found.read_config_map) is None
