"""Issue 14 for problem jobs: hostile and malformed problems end Failed, never in a traceback.

Every case runs a real job (run_job, or `qbackbone run` in-process for manifests the models
reject) and checks: phase Failed, a specific CamelCase reason (never InternalError), a
message naming the field, and a status that is strict JSON. Limits are checked before the
work they bound, so the oversized cases also finish within seconds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

import qbackbone.cli.summary  # noqa: F401  (bind its default stderr now, not to one test's capsys)
from qbackbone.api.quantumjob import QuantumJob, QuantumJobStatus
from qbackbone.cli.main import main
from qbackbone.core.optimize.limits import MAX_DOCUMENT_CHARS
from qbackbone.core.pipeline import run_job
from qbackbone.core.qpus.fleet import build_fleet
from tests.conftest import make_qpu

IDEAL = build_fleet([make_qpu("ideal", qubits=16)])
TRIANGLE = [{"source": "a", "target": "b", "capacity": 10},
            {"source": "b", "target": "c", "capacity": 10},
            {"source": "a", "target": "c", "capacity": 10}]
GRAPHML = """<?xml version="1.0" encoding="UTF-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
<key id="c" for="edge" attr.name="capacity" attr.type="{type}"/>
<graph edgedefault="undirected">
<node id="a"/><node id="b"/><node id="c"/>
<edge source="a" target="b"><data key="c">{value}</data></edge>
<edge source="b" target="c"><data key="c">10</data></edge>
<edge source="a" target="c"><data key="c">10</data></edge>
</graph></graphml>"""


def te(topology: dict[str, Any] | None = None, demands: list[dict[str, Any]] | None = None,
       **options: Any) -> dict[str, Any]:
    return {"trafficEngineering": {
        "topology": topology or {"links": TRIANGLE},
        "demands": demands or [{"source": "a", "target": "c", "volume": 3}], **options}}


def node_link(text: str) -> dict[str, Any]:
    return {"format": "nodeLink", "document": text}


def run(problem: dict[str, Any], **spec: Any) -> QuantumJobStatus:
    job = QuantumJob.model_validate({"metadata": {"name": "p"},
                                     "spec": {"problem": problem, **spec}})
    return run_job(job, IDEAL, {}, seed=1)


def assert_failed(status: QuantumJobStatus, reason: str, *named: str) -> str:
    """Failed with this reason, a message naming every string in ``named``, strict JSON."""
    json.dumps(status.to_wire(), allow_nan=False)
    failed = next(c for c in status.conditions if c.type == "Failed")
    assert status.phase == "Failed" and failed.reason == reason, failed
    for text in named:
        assert text in failed.message, failed.message
    return failed.message


def run_manifest(tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str) -> str:
    """`qbackbone run` on one job manifest; the Failed condition's message (InvalidManifest)."""
    (tmp_path / "job.yaml").write_text(
        "apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata: {name: hostile}\n"
        "spec:\n" + spec)
    capsys.readouterr()
    assert main(["run", str(tmp_path), "-o", "json", "-q", "--no-isolation"]) == 1
    out = capsys.readouterr().out
    status = QuantumJobStatus.model_validate(json.loads(out)["status"])
    return assert_failed(status, "InvalidManifest")


@pytest.mark.parametrize("volume", [".nan", ".inf", "-4", "0"])
def test_nan_negative_and_zero_volumes_fail_the_manifest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], volume: str) -> None:
    message = run_manifest(tmp_path, capsys, f"""  problem:
    trafficEngineering:
      topology: {{links: [{{source: a, target: b, capacity: 10}}]}}
      demands: [{{source: a, target: b, volume: {volume}}}]
""")
    assert "trafficEngineering.demands.0.volume" in message


@pytest.mark.parametrize(("field", "value"), [("capacity", "0"), ("capacity", "-3"),
                                              ("capacity", ".nan")])
def test_inline_link_capacities_out_of_range_fail_the_manifest(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str, value: str) -> None:
    message = run_manifest(tmp_path, capsys, f"""  problem:
    trafficEngineering:
      topology: {{links: [{{source: a, target: b, {field}: {value}}}]}}
      demands: [{{source: a, target: b, volume: 1}}]
""")
    assert "topology.links.0.capacity" in message


def test_huge_numbers_are_refused_before_they_overflow() -> None:
    assert_failed(run(te(demands=[{"source": "a", "target": "c", "volume": 1e308}])),
                  "InvalidProblem", "trafficEngineering.demands[0].volume", "1e+308")
    links = [{**TRIANGLE[0], "capacity": 1e308}, *TRIANGLE[1:]]
    assert_failed(run(te({"links": links})), "InvalidProblem",
                  "trafficEngineering.topology.links[0].capacity")
    assert_failed(run({"qubo": {"linear": {"a": 1e308, "b": 1e308},
                                "quadratic": [{"i": "a", "j": "b", "value": 1e308}]}}),
                  "InvalidProblem", "qubo", "scale")
    assert_failed(run({"sliceAdmission": {
        "resources": [{"name": "p", "capacity": 10}],
        "slices": [{"name": "s", "revenue": 1e308, "demands": {"p": 3}}]}}),
        "InvalidProblem", "sliceAdmission.slices[0].revenue")


@pytest.mark.parametrize(("value", "kind"), [
    ("0", "double"), ("-5", "double"), ("NaN", "double"), ("INF", "double"),
    ("1e400", "double"), ("fast", "string"), ("-0", "string")])
def test_graphml_capacities_must_be_finite_positive_numbers(value: str, kind: str) -> None:
    topology = {"format": "graphml", "document": GRAPHML.format(value=value, type=kind)}
    assert_failed(run(te(topology)), "InvalidProblem", "link a--b", "'capacity'")


@pytest.mark.parametrize("capacity", ["0", "NaN", "Infinity", "-Infinity", '"fast"', "true",
                                      "[1]", "1" + "0" * 400])
def test_node_link_capacities_must_be_finite_positive_numbers(capacity: str) -> None:
    text = ('{"nodes": [{"id": "a"}, {"id": "b"}, {"id": "c"}], "links": ['
            f'{{"source": "a", "target": "b", "capacity": {capacity}}}, '
            '{"source": "b", "target": "c", "capacity": 10}, '
            '{"source": "a", "target": "c", "capacity": 10}]}')
    assert_failed(run(te(node_link(text))), "InvalidProblem", "link a--b", "'capacity'")


@pytest.mark.parametrize(("text", "named"), [
    ("[1, 2]", "got a JSON list"),
    ('"nodes"', "got a JSON string"),
    ("5", "got a JSON number"),
    ("{}", '"nodes"'),
    ('{"nodes": 5, "links": []}', '"nodes"'),
    ('{"nodes": [{"name": "a"}], "links": []}', "nodes[0]"),
    ('{"nodes": [{"id": [1]}], "links": []}', "nodes[0]"),
    ('{"nodes": [{"id": "a"}], "links": [{"source": "a", "target": "zz"}]}', "links[0].target"),
    ('{"nodes": [{"id": "a"}], "edges": [7]}', "edges[0]"),
    ('{"nodes": [{"id": 1}, {"id": "1"}], "links": [{"source": 1, "target": "1"}]}',
     "two nodes named '1'"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ("{not json", "not valid JSON"),
])
def test_malformed_node_link_documents_are_named(text: str, named: str) -> None:
    assert_failed(run(te(node_link(text))), "InvalidProblem", named)


def test_graphml_with_a_dtd_or_entities_is_refused_and_reads_nothing(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("qb-planted-secret-7f3a")
    body = GRAPHML.format(value="&x;", type="string").split("?>", 1)[1]
    documents = [
        f'<?xml version="1.0"?><!DOCTYPE g [<!ENTITY x SYSTEM "file://{secret}">]>{body}',
        '<?xml version="1.0"?><!DOCTYPE g [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>' + body,
        '<!DOCTYPE g [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY x "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>' + body,
        '<!doctype g SYSTEM "file:///etc/passwd">' + body,
    ]
    for document in documents:
        status = run(te({"format": "graphml", "document": document}))
        assert_failed(status, "InvalidProblem", "DOCTYPE")
        assert "qb-planted-secret" not in json.dumps(status.to_wire())


def test_a_topology_document_too_large_is_refused_before_parsing() -> None:
    document = "<graphml>" + " " * MAX_DOCUMENT_CHARS + "</graphml>"
    start = time.perf_counter()
    assert_failed(run(te({"format": "graphml", "document": document})), "InputTooLarge",
                  "graphml topology", "characters")
    assert time.perf_counter() - start < 5
    nodes = [{"id": f"n{i}"} for i in range(2_001)]
    assert_failed(run(te(node_link(json.dumps({"nodes": nodes, "links": []})))),
                  "InputTooLarge", "nodeLink topology nodes")


def test_empty_topologies_self_loops_and_unknown_nodes_are_named() -> None:
    empty = {"format": "graphml", "document": '<graphml xmlns="http://graphml.graphdrawing.org/'
             'xmlns"><graph edgedefault="undirected"/></graphml>'}
    assert_failed(run(te(empty)), "InvalidProblem", "trafficEngineering.topology has no links")
    loop = {"links": [{"source": "a", "target": "a", "capacity": 5}]}
    assert_failed(run(te(loop, [{"source": "a", "target": "b", "volume": 1}])),
                  "InvalidProblem", "trafficEngineering.topology has no links", "1 self-loop")
    assert_failed(run(te(demands=[{"source": "x", "target": "y", "volume": 1}])),
                  "InvalidProblem", "trafficEngineering.demands[0]", "source 'x'")
    assert_failed(run(te(demands=[{"source": "a", "target": "a", "volume": 1}])),
                  "InvalidProblem", "trafficEngineering.demands[0]", "same node")
    split = [*TRIANGLE, {"source": "d", "target": "e", "capacity": 5}]
    assert_failed(run(te({"links": split}, [{"source": "a", "target": "e", "volume": 1}])),
                  "InvalidProblem", "no path")


def test_duplicate_links_are_merged_with_their_capacities_added() -> None:
    status = run(te({"links": [*TRIANGLE, TRIANGLE[2]]},
                    [{"source": "a", "target": "c", "volume": 15}]))
    assert status.phase == "Succeeded", status.conditions
    solution = status.result.solution  # type: ignore[union-attr]
    assert solution is not None and solution.link_loads is not None
    assert {ll.link: ll.capacity for ll in solution.link_loads} == {"a--c": 20.0}


@pytest.mark.parametrize("shots", [-5, 0, 10**12])
def test_problem_shots_out_of_range_fail_before_the_problem_is_reduced(shots: int) -> None:
    bad_problem = te(demands=[{"source": "x", "target": "y", "volume": 1}])
    assert_failed(run(bad_problem, shots=shots, execution={"mode": "SingleQPU"}),
                  "InvalidShots", "spec.shots", str(shots) if shots <= 0 else "exceeds")


def test_a_20000_variable_qubo_is_refused_before_any_matrix_is_built() -> None:
    start = time.perf_counter()
    linear = {f"x{i}": 1.0 for i in range(20_000)}
    message = assert_failed(run({"qubo": {"linear": linear}}), "InputTooLarge",
                            "20,000 QUBO variables", "MiB", "optimization.maxVariables")
    assert "1,024" in message
    names = [f"x{i}" for i in range(20_000)]
    assert_failed(run({"qubo": {"variables": names, "linear": {"x0": 1.0}}}),
                  "InputTooLarge", "qubo.variables", "20,000")
    slices = [{"name": f"s{i}", "revenue": 1, "demands": {"p": 1}} for i in range(20_000)]
    assert_failed(run({"sliceAdmission": {"resources": [{"name": "p", "capacity": 5}],
                                          "slices": slices}}),
                  "InputTooLarge", "slice-admission", "slice requests")
    assert time.perf_counter() - start < 30


def grid(side: int, capacity: float) -> list[dict[str, Any]]:
    """Links of a side x side grid."""
    def name(r: int, c: int) -> str:
        return f"n{r}-{c}"
    links = []
    for r in range(side):
        for c in range(side):
            if c + 1 < side:
                links.append({"source": name(r, c), "target": name(r, c + 1), "capacity": capacity})
            if r + 1 < side:
                links.append({"source": name(r, c), "target": name(r + 1, c), "capacity": capacity})
    return links


def grid_demands(side: int, count: int) -> list[dict[str, Any]]:
    nodes = [f"n{r}-{c}" for r in range(side) for c in range(side)]
    pairs = [(a, b) for k, a in enumerate(nodes) for b in nodes[k + 1:]][::7][:count]
    return [{"source": a, "target": b, "volume": 1 + k % 5} for k, (a, b) in enumerate(pairs)]


def test_a_traffic_qubo_beyond_the_limit_is_refused_unless_aggregated() -> None:
    demands = grid_demands(10, 400)
    roomy, tight = {"links": grid(10, 1000)}, {"links": grid(10, 100)}
    assert_failed(run(te(roomy, demands, aggregateToFit=False)), "InputTooLarge",
                  "traffic-engineering", "QUBO variables", "aggregateToFit: true")
    # Pinning would strand a demand on the tight grid, so aggregation keeps it whole: refused.
    assert_failed(run(te(tight, demands)), "InputTooLarge", "kept it whole")
    start = time.perf_counter()
    status = run(te(roomy, demands))  # aggregateToFit: pinned down to maxVariables
    assert status.phase == "Succeeded", status.conditions
    assert status.decision is not None and status.decision.features["variables"] <= 16
    assert time.perf_counter() - start < 60


def test_too_many_demand_pairs_are_refused_before_paths_are_searched() -> None:
    ring = [{"source": f"n{i}", "target": f"n{(i + 1) % 50}", "capacity": 10} for i in range(50)]
    pairs = [(a, b) for a in range(50) for b in range(a + 1, 50)][:1_001]
    demands = [{"source": f"n{a}", "target": f"n{b}", "volume": 1} for a, b in pairs]
    assert_failed(run(te({"links": ring}, demands)), "InputTooLarge",
                  "distinct demand node pairs", "1,001")
