"""The exact (sampling-free) evaluation behind the benchmark's predicted LOCC/LO spreads."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

import pytest

from qbackbone.core.cutting import QPUCapacity, plan_cuts

from ..conftest import REPO
from .circuits import blocks, exact


def _exact_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cutting_exact",
                                                  REPO / "benchmarks" / "cutting" / "exact.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


EXACT = _exact_module()
CASES = {1: ([(0, 4), (3, 7)], 7, 4), 2: ([(0, 4), (2, 6)], 6, 4), 3: ([(0, 6), (3, 9)], 9, 6)}


@pytest.mark.parametrize("wires", [1, 2, 3])
def test_locc_channels_reproduce_the_exact_value(wires: int) -> None:
    spans, n, width = CASES[wires]
    qc = blocks(spans, n, layers=3 if wires == 3 else 2)
    obs = ["Z" * n, "X" + "I" * (n - 2) + "X"]
    plan = plan_cuts(qc, obs, [QPUCapacity("q", width, None)], ["loccWire"], 1e6, 4, 10, seed=1)
    for o, ref in enumerate(exact(qc, obs)):
        pred = EXACT.locc_variance(plan, o)
        assert pred["value"] == pytest.approx(ref, abs=1e-9)
        assert pred["gamma"] == 2 ** (wires + 1) - 1
        assert 0 < pred["variance"] <= pred["raw_variance"]


@pytest.mark.parametrize("wires", [1, 2])
def test_lo_terms_reproduce_the_exact_value(wires: int) -> None:
    spans, n, width = CASES[wires]
    qc = blocks(spans, n)
    plan = plan_cuts(qc, ["Z" * n], [QPUCapacity("q", width, None)], ["loWire"], 1e6, 4, 10,
                     seed=1)
    pred = EXACT.lo_variance(plan)
    assert pred["value"] == pytest.approx(exact(qc, ["Z" * n])[0], abs=1e-9)
    assert pred["gamma"] == 4**wires
    assert 0 < pred["variance"] <= EXACT.worst_case(pred["gamma"], pred["samples"])
