"""The operator's side of detect without a cluster: kernel batches as the worker runs them
(template + angles), finished into the same verified result; the bindings table refused
when hostile; a recorded decision re-derived to the same fragments."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from qiskit.circuit import ParameterVector

from qbackbone.core.circuits.bindings import BindingsError, bind_rows, bindings_text
from qbackbone.core.detect.kernel import fidelity_template
from qbackbone.core.pipeline.jobrun import start_job
from qbackbone.core.qpus.fleet import default_fleet_nodes
from qbackbone.k8s.analysis import decide_analysis
from qbackbone.k8s.builders import JobRef
from qbackbone.k8s.decision import DecisionRecord
from qbackbone.k8s.fragments import SlotResult
from qbackbone.k8s.kernel import KernelSource
from qbackbone.k8s.objects import job_from_body
from qbackbone.k8s.results import fragment_counts
from qbackbone.worker.run import InputError, run_fragment

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "detect-predict"
REF = JobRef("qk", "ns", "uid-1")
# A noisy QPU's model time for the kernel (0.25 ms a shot) is above the default third of
# maxRunSeconds: this policy allows it.
POLICY = {"apiVersion": "qbackbone.io/v1alpha1", "kind": "InvocationPolicy",
          "metadata": {"name": "long", "generation": 1},
          "spec": {"limits": {"maxRunSeconds": 3600}}}


def abilene() -> str:
    doc = yaml.safe_load((EXAMPLES / "abilene-topology.yaml").read_text())
    return str(doc["data"]["Abilene.graphml"])


def detect_body(**detect: Any) -> dict[str, Any]:
    topology = {"format": "graphml", "document": abilene(), "nodeAttribute": "label",
                "defaultCapacity": 9953}
    return {"apiVersion": "qbackbone.io/v1alpha1", "kind": "QuantumJob",
            "metadata": {"name": "qk", "namespace": "ns", "uid": "uid-1", "generation": 1},
            "spec": {"deadline": "3600s", "execution": {"mode": "SingleQPU"},
                     "policyRef": {"name": "long"},
                     "problem": {"anomalyDetection": {
                         "telemetry": {"generated": {"topology": topology, "seed": 4,
                                                     "days": 6, "anomalies": 4}},
                         "window": 6, "qubits": 2, "model": "QuantumKernel",
                         "kernelShots": 2000, "maxTrainWindows": 8, **detect}}}}


def fleet_nodes(*names: str) -> list[dict[str, Any]]:
    nodes = [n.model_dump(mode="json", by_alias=True, exclude_none=True)
             for n in default_fleet_nodes() if n.metadata.name in names]
    assert len(nodes) == len(names)
    return nodes


def decide(nodes: list[dict[str, Any]], per_call: int | None = None,
           **detect: Any) -> tuple[Any, KernelSource]:
    body = detect_body(**detect)
    run = start_job(job_from_body(body), None, datetime(2026, 12, 1, tzinfo=UTC))
    record = DecisionRecord(job=body, fleet=nodes, policy=POLICY, now=run.now, seed=7)
    analysis = decide_analysis(run, record.qpus(), record.policies(), record.seed)
    assert analysis.detect is not None and analysis.quantum, run.status.decision
    return analysis, KernelSource(analysis.detect, per_call)


def run_batches(source: KernelSource, nodes: list[dict[str, Any]]) -> dict[str, SlotResult]:
    node = next(n for n in nodes if n["metadata"]["name"] == source.qpu.name)
    results = {}
    for slot in source.slots:
        work = source.work(slot, slot.qpu, 0, {})
        assert work is not None
        out = run_fragment(work.input_data(REF, f"qk-{slot.key}", node), "pod")
        results[slot.key] = SlotResult(fragment_counts(out), out["qpu"], out["backend"],
                                       float(out["fidelity"]), float(out["started"]),
                                       float(out["finished"]))
    return results


@pytest.mark.parametrize("qpu", ["aer-ideal", "nairobi"])
def test_batches_run_by_the_worker_finish_into_a_verified_kernel(qpu: str) -> None:
    nodes = fleet_nodes(qpu)
    _, source = decide(nodes, per_call=40)
    assert len(source.slots) > 1  # several fragments, each a slice of the circuits
    assert sum(source.circuits(s) for s in source.slots) == len(source.pairs)
    needs = source.needs()
    assert [n.qpus for n in needs] == [(qpu,)] * len(source.slots)
    status = source.finish(run_batches(source, nodes))
    assert status.phase.value == "Succeeded", status.conditions
    kernel = status.result.solution.detection.kernel
    assert kernel.exact_agrees is True and kernel.circuits == len(source.pairs)
    noisy = qpu != "aer-ideal"
    assert (kernel.mitigation == "globalDepolarizing") is noisy
    assert status.verification.method == "ExactStatevector" and status.verification.noisy is noisy


def test_a_batch_with_the_wrong_number_of_counts_fails_the_job() -> None:
    nodes = fleet_nodes("aer-ideal")
    _, source = decide(nodes, per_call=40)
    results = run_batches(source, nodes)
    first = source.slots[0].key
    results[first] = SlotResult(results[first].counts[:-1], *[getattr(results[first], f) for f in
                                                              ("qpu", "backend", "fidelity",
                                                               "started", "ended")])
    with pytest.raises(Exception, match="counts for"):
        source.finish(results)


def test_a_recorded_decision_re_derives_the_same_fragments() -> None:
    nodes = fleet_nodes("aer-ideal")
    record = DecisionRecord(job=detect_body(), fleet=nodes, policy=POLICY,
                            now=datetime(2026, 12, 1, tzinfo=UTC), seed=7)
    again = DecisionRecord.from_data(record.to_data())
    works = []
    for rec in (record, again):
        run = rec.start()
        analysis = decide_analysis(run, rec.qpus(), rec.policies(), rec.seed)
        assert analysis.detect is not None
        source = KernelSource(analysis.detect)
        slot = source.slots[0]
        work = source.work(slot, slot.qpu, 0, {})
        assert work is not None
        works.append((len(source.slots), work.extra, work.seed,
                      [r.model_dump() for r in run.status.decision.rules]))
    assert works[0] == works[1]


def template() -> tuple[Any, ParameterVector, ParameterVector]:
    return fidelity_template(2)


def test_bindings_bind_each_row_into_the_template() -> None:
    qc, x, y = template()
    rows = np.random.default_rng(1).uniform(-1, 1, (3, 4))
    names = [p.name for p in (*x, *y)]
    bound = bind_rows(qc, bindings_text(names, rows.tolist()))
    expected = [qc.assign_parameters(dict(zip([*x, *y], row, strict=True))) for row in rows]
    assert bound == expected


@pytest.mark.parametrize(("text", "says"), [
    ("not json", "malformed"),
    (json.dumps({"parameters": ["x[0]"]}), "malformed"),
    (json.dumps({"parameters": ["a", "b", "c", "d"], "values": [[0, 0, 0, 0]]}),
     "not the template's"),
    (json.dumps({"parameters": ["x[0]", "x[1]", "y[0]", "y[1]"], "values": [[0, 0, 0]]}),
     "row 0"),
    (json.dumps({"parameters": ["x[0]", "x[1]", "y[0]", "y[1]"],
                 "values": [[0, 0, 0, float("nan")]]}), "row 0"),
    (json.dumps({"parameters": ["x[0]", "x[1]", "y[0]", "y[1]"],
                 "values": [[0, 0, 0, True]]}), "row 0"),
    (json.dumps({"parameters": ["x[0]", "x[1]", "y[0]", "y[1]"],
                 "values": [[0, 0, 0, "1"]]}), "row 0"),
    (json.dumps({"parameters": ["x[0]", "x[1]", "y[0]", "y[1]"],
                 "values": [[0, 0, 0, 0]] * 50_001}), "at most"),
])
def test_hostile_bindings_are_refused_before_anything_is_built(text: str, says: str) -> None:
    qc, _, _ = template()
    with pytest.raises(BindingsError, match=says):
        bind_rows(qc, text)


def test_the_worker_refuses_bindings_with_more_than_one_template() -> None:
    nodes = fleet_nodes("aer-ideal")
    _, source = decide(nodes, per_call=40)
    work = source.work(source.slots[0], source.qpu.name, 0, {})
    assert work is not None
    data = work.input_data(REF, "qk-k0", nodes[0])
    from qbackbone.core.circuits.serialize import circuits_to_b64

    data["circuits.qpy"] = circuits_to_b64([source.inputs.compiled] * 2)
    with pytest.raises(InputError, match="exactly one template"):
        run_fragment(data, "pod")
