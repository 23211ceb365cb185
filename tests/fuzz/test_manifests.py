"""QuantumJob, QPUNode and InvocationPolicy manifests with mutated fields and damaged bytes."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from qbackbone.api.manifests import ManifestError, parse_document
from tests.fuzz.client import INPUT_SECONDS
from tests.fuzz.gen_manifests import (
    API,
    POLICY_FIELDS,
    good_job,
    job_file,
    policy_and_job,
    qpu_node,
    wide_job,
)
from tests.fuzz.gen_values import Tree, alias_bomb, hostile_value, mutated
from tests.fuzz.harness import TALLY, Fuzzer, assert_clean, fuzz_settings
from tests.fuzz.outcomes import Problem

JOB_FILES = 250
QPU_NODES = 60
POLICIES = 50
DOCUMENTS = 400


def test_mutated_job_files(fuzzer: Fuzzer) -> None:
    @fuzz_settings(JOB_FILES)
    @given(data=job_file(fuzzer.planted.include_paths))
    def run(data: bytes) -> None:
        fuzzer.run_bytes("job-manifest", data)

    run()
    assert_clean("job-manifest")


def test_hostile_qpu_nodes_build_a_fleet_or_are_refused(fuzzer: Fuzzer) -> None:
    """A QPUNode beside a good job: the run is refused (exit 2) or the job ends cleanly."""

    @fuzz_settings(QPU_NODES)
    @given(qpu=qpu_node(), wide=st.booleans())
    def run(qpu: Tree, wide: bool) -> None:
        fuzzer.run_docs("qpu-node", [qpu, wide_job(6) if wide else good_job()])

    run()
    assert_clean("qpu-node")


def test_extreme_policies(fuzzer: Fuzzer) -> None:
    @fuzz_settings(POLICIES)
    @given(docs=policy_and_job())
    def run(docs: list[Tree]) -> None:
        fuzzer.run_docs("policy", docs)

    run()
    assert_clean("policy")


# Found by this tier (kept as fixed inputs): a fleet of one 1-qubit QPU, a tiny
# maxDeviationSigma with several observables.
KNOWN = [
    [{"apiVersion": API, "kind": "QPUNode", "metadata": {"name": "tiny"},
      "spec": {"backend": {"provider": "aer", "name": "aer_simulator"}, "qubits": 1}},
     good_job()],
    [{"apiVersion": API, "kind": "InvocationPolicy", "metadata": {"name": "default"},
      "spec": {"verification": {"maxDeviationSigma": 1e-300}}}, good_job()],
    [{"apiVersion": API, "kind": "InvocationPolicy", "metadata": {"name": "default"},
      "spec": {"verification": {"exactMaxQubits": 30}, "cutting": {"enabled": False}}},
     wide_job(30)],
]


def test_known_fleet_and_policy_cases(fuzzer: Fuzzer) -> None:
    for docs in KNOWN:
        fuzzer.run_docs("fleet-policy-known", docs)
    assert_clean("fleet-policy-known")


_JOB_HEAD = "apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata: {name: m}\n"
KNOWN_FILES: list[bytes | str] = [
    # ~450 bytes of YAML, 4^12 scalars once its aliases are followed, as a kind or apiVersion
    f"apiVersion: {API}\nkind: {alias_bomb(12)}\nmetadata: {{name: b}}\nspec: {{}}\n",
    f"apiVersion: {alias_bomb(12)}\nkind: QuantumJob\nmetadata: {{name: b}}\nspec: {{}}\n",
    _JOB_HEAD + "spec: {shots: " + "9" * 5000 + "}\n",
    _JOB_HEAD + "spec: " + "[" * 3000 + "]" * 3000 + "\n",
    _JOB_HEAD.replace("{name: m}", "{name: m, labels: &r [*r]}") + "spec: {}\n",
    b"apiVersion: qbackbone.io/v1alpha1\nkind: QuantumJob\nmetadata: {name: caf\xe9}\n",
    _JOB_HEAD + "spec: !!python/object/apply:os.system ['true']\n",
    (_JOB_HEAD + "spec: {circuit: {qasm: 'OPENQASM 2.0;', sampling: true}}\n---\n") * 3,
]


def test_known_hostile_manifest_files(fuzzer: Fuzzer) -> None:
    for data in KNOWN_FILES:
        fuzzer.run_bytes("manifest-known", data)
    assert_clean("manifest-known")


def _skeleton(kind: str) -> dict[str, Any]:
    if kind == "QuantumJob":
        return good_job()
    if kind == "QPUNode":
        return {"apiVersion": API, "kind": kind, "metadata": {"name": "q"},
                "spec": {"backend": {"provider": "aer", "name": "aer_simulator"}, "qubits": 4}}
    spec: dict[str, Any] = {}
    for field in sorted(POLICY_FIELDS)[::3]:
        section, key = field.split(".")
        spec.setdefault(section, {})[key] = POLICY_FIELDS[field][0]
    return {"apiVersion": API, "kind": kind, "metadata": {"name": "p"}, "spec": spec}


def _parse_in_process(doc: Any) -> None:
    """parse_document in this process: a model (that serialises strictly) or ManifestError.

    The trees are small Python objects (no YAML aliases), so nothing here can blow up; the
    time is checked after the fact (pytest's own timeout covers a hang).
    """
    category, text = "parse_document", repr(doc)[:4000]
    TALLY.inputs[category] += 1
    started = time.perf_counter()
    try:
        try:
            model = parse_document(doc, "fuzz")
        except ManifestError as err:
            TALLY.count(category, f"ManifestError/{err.reason}", text)
        else:
            TALLY.count(category, f"valid {type(model).__name__}", text)
            json.dumps(model.to_wire(), allow_nan=False)
    except Exception as err:
        TALLY.count(category, f"escaped {type(err).__name__}", text)
        TALLY.problem(category, Problem("exception escaped", type(err).__name__), text,
                      f"{type(err).__name__}: {str(err)[:500]}")
    elapsed = time.perf_counter() - started
    if elapsed > INPUT_SECONDS:
        TALLY.problem(category, Problem("time", f"over {INPUT_SECONDS:g} s"), text,
                      f"{elapsed:.1f} s")
    TALLY.measure(category, text, elapsed, 0.0)


def test_parse_document_on_mutated_trees() -> None:
    """Trees straight from Python (no YAML): NaN, huge ints, non-string keys, recursion."""

    @fuzz_settings(DOCUMENTS)
    @given(kind=st.sampled_from(["QuantumJob", "QPUNode", "InvocationPolicy"]),
           data=st.data())
    def run(kind: str, data: st.DataObject) -> None:
        tree, _ = data.draw(mutated(_skeleton(kind), max_mutations=4))
        if data.draw(st.integers(0, 9)) == 0:
            tree = data.draw(hostile_value())
        if data.draw(st.integers(0, 19)) == 0 and isinstance(tree, dict):
            tree.setdefault("metadata", {})
            if isinstance(tree["metadata"], dict):
                loop: list[Any] = []
                loop.append(loop)
                tree["metadata"][data.draw(st.sampled_from(["labels", "ownerReferences",
                                                            "name"]))] = loop
        _parse_in_process(tree)

    run()
    assert_clean("parse_document")
