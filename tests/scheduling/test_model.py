from __future__ import annotations

import sys

import pytest

from qbackbone.core.scheduling import CutPlan, Job, Problem, Subcircuit, with_cut_kind
from qbackbone.core.scheduling.generator import DEVICES, InstanceParams, generate

from .conftest import make_qpu


def test_locc_variant_has_precedence_and_overhead_9_per_wire(chain_job: Job) -> None:
    assert chain_job.precedence == ((0, 1), (1, 2))
    assert [s.shots for s in chain_job.subcircuits] == [100 * 81] * 3
    assert chain_job.topological_order() == [0, 1, 2]


def test_lo_variant_is_independent_with_overhead_16_per_wire(chain_job: Job) -> None:
    lo = with_cut_kind(chain_job, "lo")
    assert lo.precedence == ()
    assert [s.shots for s in lo.subcircuits] == [100 * 256] * 3
    assert lo.cut_kind == "lo" and with_cut_kind(lo, "locc") == chain_job


def test_cycle_and_bad_edges_are_rejected() -> None:
    subs = (Subcircuit(2, 5, 10), Subcircuit(2, 5, 10))
    with pytest.raises(ValueError, match="cycle"):
        Job("x", 0, 1, subs, ((0, 1), (1, 0)))
    with pytest.raises(ValueError, match="bad precedence"):
        Job("x", 0, 1, subs, ((0, 2),))
    with pytest.raises(ValueError, match="bad wire"):
        from qbackbone.core.scheduling import job_from_cut_plan

        job_from_cut_plan("x", 0, 1, CutPlan(((2, 5),), ((0, 3, 1),), 10))


def test_eligibility_uses_qubits_and_depth() -> None:
    q = make_qpu("q", qubits=5, depth=40)
    assert q.can_run(Subcircuit(5, 40, 1))
    assert not q.can_run(Subcircuit(6, 10, 1))
    assert not q.can_run(Subcircuit(3, 41, 1))
    assert q.duration(10) == pytest.approx(0.5 + 10 * 1.0)


def test_problem_names_are_unique() -> None:
    with pytest.raises(ValueError):
        Problem((make_qpu("a"), make_qpu("a")), ())


def test_generator_is_deterministic_and_documented_fields_hold() -> None:
    p = InstanceParams(n_jobs=12, n_qpus=5, load=1.0, deadline_coef=1.5, seed=3)
    a, b = generate(p), generate(p)
    assert a == b
    assert generate(InstanceParams(n_jobs=12, n_qpus=5, seed=4)) != a
    assert [q.name for q in a.qpus][:2] == ["kolkata-0", "guadalupe-0"]
    for job in a.jobs:
        assert job.deadline > job.arrival
        assert job.plan is not None
        assert all(any(q.can_run(s) for q in a.qpus) for s in job.subcircuits)
    assert DEVICES["torino"].max_depth > DEVICES["manila"].max_depth


def test_higher_load_means_denser_arrivals() -> None:
    lo = generate(InstanceParams(n_jobs=30, load=0.5, seed=1))
    hi = generate(InstanceParams(n_jobs=30, load=2.0, seed=1))
    assert hi.jobs[-1].arrival < lo.jobs[-1].arrival


def test_the_package_is_pure() -> None:
    """The scheduling package imports only itself, the standard library and its solvers."""
    import ast
    from pathlib import Path

    import qbackbone.core.scheduling as pkg

    allowed = {"ortools", "matplotlib", "__future__"}
    for path in Path(pkg.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: inside the package
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in allowed or top in sys.stdlib_module_names, (path.name, name)
