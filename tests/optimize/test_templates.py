"""The QAOA template registry (data/qaoa-templates.yaml, from tune_qaoa_templates.py).

It loads, every entry is well formed, template_for finds the entries, and on a FRESH instance
of each class (a seed neither the training nor the held-out set used) the template's angles
give a lower exact expected cost than random angles and than the uniform superposition.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from types import ModuleType

import numpy as np
import pytest

from qbackbone.core.optimize import qaoa
from qbackbone.core.optimize.qaoa import CostHamiltonian, expected_cost, template_for

from ..conftest import REPO

KINDS = ("qubo", "trafficEngineering", "sliceAdmission")
LAYERS = (1, 2, 3)
FRESH_SEED = 424_242  # training used 1000+, held-out 5000+ and 9000+
RANDOM_DRAWS = 32


def _instances_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "optimize_instances", REPO / "benchmarks" / "optimize" / "instances.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


INSTANCES = _instances_module()


def test_registry_loads_with_every_class_and_depth() -> None:
    entries = qaoa._templates()
    assert entries, "the template registry is empty"
    found = {(e["kind"], e["layers"]) for e in entries}
    assert found >= {(k, p) for k in KINDS for p in LAYERS}


@pytest.mark.parametrize("index", range(len(qaoa._templates())))
def test_entry_is_well_formed(index: int) -> None:
    entry = qaoa._templates()[index]
    assert entry["kind"] in KINDS
    layers = entry["layers"]
    assert isinstance(layers, int) and layers >= 1
    assert len(entry["gammas"]) == len(entry["betas"]) == layers
    for angle in [*entry["gammas"], *entry["betas"]]:
        assert isinstance(angle, float) and math.isfinite(angle) and abs(angle) < 2 * math.pi
    low, high = entry["minVariables"], entry["maxVariables"]
    assert isinstance(low, int) and isinstance(high, int)
    assert 1 <= low <= high <= qaoa.SIMULATE_MAX_QUBITS
    assert isinstance(entry["tunedOn"], str) and entry["tunedOn"].strip()
    assert 0.0 < entry["meanApproximation"] <= 1.0
    # One entry per class and depth whose size ranges do not overlap: the lookup is unambiguous.
    for other in qaoa._templates()[index + 1:]:
        if (other["kind"], other["layers"]) == (entry["kind"], layers):
            assert other["maxVariables"] < low or other["minVariables"] > high


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers", LAYERS)
def test_template_for_finds_the_entry(kind: str, layers: int) -> None:
    entry = next(e for e in qaoa._templates() if e["kind"] == kind and e["layers"] == layers)
    angles = template_for(kind, layers, entry["minVariables"])
    assert angles is not None
    assert angles.layers == layers and angles.source == f"template:{kind}/p{layers}"
    assert list(angles.gammas) == entry["gammas"] and list(angles.betas) == entry["betas"]
    assert template_for(kind, layers, entry["maxVariables"] + 100) is None
    assert template_for("noSuchKind", layers, entry["minVariables"]) is None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("layers", LAYERS)
def test_template_beats_random_angles_on_a_fresh_instance(kind: str, layers: int) -> None:
    problem = INSTANCES.qaoa_instances(kind, 1, FRESH_SEED, 8, 11)[0]
    n = problem.qubo.size
    angles = template_for(kind, layers, n)
    assert angles is not None, f"no template for {kind} p={layers} at {n} variables"
    diagonal = CostHamiltonian.of(problem.qubo).diagonal(n)
    template = expected_cost(diagonal, n, np.array(angles.gammas), np.array(angles.betas))
    rng = np.random.default_rng(7)
    random = [expected_cost(diagonal, n, rng.uniform(0, np.pi, layers),
                            rng.uniform(0, np.pi, layers)) for _ in range(RANDOM_DRAWS)]
    uniform = float(diagonal.mean())  # gamma = 0: the |+>^n state
    assert template < float(np.mean(random))
    assert template < float(np.quantile(random, 0.1))  # better than 90 % of random draws
    assert template < uniform
    # And a fair share of the way from the uniform state towards the optimum.
    assert (uniform - template) / (uniform - float(diagonal.min())) > 0.2
