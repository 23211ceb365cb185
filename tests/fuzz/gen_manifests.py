"""QuantumJob, QPUNode and InvocationPolicy manifests: valid bases, hostile mutations."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.gen_qasm import observables_for, qasm_source
from tests.fuzz.gen_values import Tree, damaged, hostile_value, mutated, render_all

API = "qbackbone.io/v1alpha1"
GOOD_QASM = 'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[2];\nh q[0];\ncx q[0],q[1];\n'
BAD_NAMES = ("Job", "j\u0131b", "j" * 254, "", "-x", "x-", "a..b", "../etc", "\uff4a\uff4f\uff42",
             "job\n", 123, None, ["j"], {"n": "j"}, "j" * 63, "a.b-c")
SMALL_FAKES = ("fake_nairobi", "fake_lima", "fake_manila")


def job_doc(name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    """A QuantumJob document as a tree."""
    return {"apiVersion": API, "kind": "QuantumJob", "metadata": {"name": name, **meta},
            "spec": spec}


def good_job(name: str = "good-job", policy: str | None = None) -> dict[str, Any]:
    """A job that succeeds on the ideal QPU."""
    spec: dict[str, Any] = {"circuit": {"qasm": GOOD_QASM, "observables": ["ZZ", "XX"]},
                            "shots": 200}
    if policy:
        spec["policyRef"] = {"name": policy}
    return job_doc(name, spec)


def wide_job(qubits: int, name: str = "wide-job", policy: str | None = None) -> dict[str, Any]:
    """A job of `qubits` qubits (a GHZ chain), wider than the ideal QPU past 8."""
    gates = "h q[0];\n" + "".join(f"cx q[{k}],q[{k + 1}];\n" for k in range(qubits - 1))
    qasm = f'OPENQASM 2.0;\ninclude "qelib1.inc";\nqreg q[{qubits}];\n{gates}'
    spec: dict[str, Any] = {"circuit": {"qasm": qasm, "observables": ["Z" * qubits]},
                            "shots": 100}
    if policy:
        spec["policyRef"] = {"name": policy}
    return job_doc(name, spec)


@st.composite
def circuit_spec(draw: st.DrawFn, secret_paths: Sequence[str],
                 hostile: float = 0.4) -> tuple[dict[str, Any], str]:
    """A circuit job's spec from the QASM generator, and the source for the report."""
    qasm, n = draw(qasm_source(secret_paths, hostile))
    spec: dict[str, Any] = {"circuit": {"qasm": qasm}}
    observables = draw(observables_for(n))
    if observables is None:
        spec["circuit"]["sampling"] = True
    else:
        spec["circuit"]["observables"] = observables
    spec["shots"] = draw(st.sampled_from([100, 200, 500]))
    if draw(st.integers(0, 11)) == 0:
        spec.update(draw(st.sampled_from(
            [{"shots": 1}, {"shots": 10_000_000}, {"shots": 0}, {"shots": 2**64},
             {"shots": "100"}, {"shots": 1.5}, {"precision": 1e-300}, {"precision": 0.5},
             {"precision": 1e-3, "shots": 100}, {"deadline": "1ns"}, {"deadline": "3650d"},
             {"deadline": "PT0.000001S"}, {"sampling": "yes"}])))
    if draw(st.integers(0, 3)) == 0:
        spec["execution"] = {"mode": draw(st.sampled_from(["Auto", "SingleQPU", "Classical",
                                                           "Distributed"]))}
    return spec, qasm


@st.composite
def job_variant(draw: st.DrawFn, secret_paths: Sequence[str]) -> list[Tree]:
    """One or more documents centred on a QuantumJob with mutated fields."""
    spec, _ = draw(circuit_spec(secret_paths, hostile=0.15))
    extra: dict[str, Any] = draw(st.sampled_from([{}, {"deadline": "1h"}, {"precision": 0.05},
                                  {"policyRef": {"name": "default"}},
                                  {"execution": {"qpuSelector": {"names": ["ideal"]}}}]))
    doc = job_doc("fuzz-job", {**spec, **extra})
    if draw(st.integers(0, 4)) == 0:
        doc["metadata"]["name"] = draw(st.sampled_from(BAD_NAMES))
    if draw(st.integers(0, 5)) == 0:
        doc["metadata"]["creationTimestamp"] = draw(st.sampled_from(
            ["2020-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01", "yesterday", 0]))
    tree, _ = draw(mutated(doc))
    docs: list[Tree] = [tree]
    companion = draw(st.sampled_from(["none"] * 5 + ["duplicate", "duplicate-other-spec",
                                                     "deployment", "scalar", "list", "empty",
                                                     "other-namespace"]))
    if companion == "duplicate":
        docs.append(tree)
    elif companion == "duplicate-other-spec":
        docs.append(job_doc("fuzz-job", {"circuit": {"qasm": "garbage", "sampling": True}}))
    elif companion == "other-namespace":
        docs.append({**good_job("fuzz-job"), "metadata": {"name": "fuzz-job",
                                                          "namespace": "other"}})
    elif companion == "deployment":
        docs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}})
    elif companion == "scalar":
        docs.append("just a string\n")
    elif companion == "list":
        docs.append("- kind: QuantumJob\n- 1\n")
    elif companion == "empty":
        docs.append("")
    return docs


@st.composite
def job_file(draw: st.DrawFn, secret_paths: Sequence[str]) -> bytes:
    """A manifest file of mutated QuantumJobs, possibly damaged as bytes."""
    return draw(damaged(render_all(draw(job_variant(secret_paths)))))


def qpu_doc(spec: dict[str, Any], name: str = "fuzz-qpu") -> dict[str, Any]:
    """A QPUNode document as a tree."""
    return {"apiVersion": API, "kind": "QPUNode", "metadata": {"name": name}, "spec": spec}


QPU_VALUES: dict[str, tuple[list[Any], list[Any]]] = {  # (extreme but valid, hostile)
    "qubits": ([1, 2, 3, 8, 24], [0, -1, 2**31, 10**6, 2**64, 10**400, 8.5, "8", math.nan]),
    "maxDepth": ([1, 2, 10**6], [0, -1, 2**64, 10**400, math.inf]),
    "shotTime": (["300us", "1ns", "1s", "PT1H", 1e-9], ["0s", "-1s", "1e400s", "\uff11s",
                                                          math.nan, 10**400, "1000000h"]),
    "setupTime": (["0s", "1ms", "1h", 0], ["-1s", "1e400s", math.inf, "soon"]),
    "noise": ([True, False], ["yes", None, 1]),
    "noiseFrom": ([*SMALL_FAKES], ["fake_nope", "../x", ""]),
    "method": (["statevector", "density_matrix", "matrix_product_state", "stabilizer",
                "automatic"], ["unitary", "superop", ""]),
    "seed": ([0, 7, 2**31], [-1, 2**64, 10**400, 1.5]),
}


@st.composite
def qpu_node(draw: st.DrawFn) -> Tree:
    """A QPUNode with extreme (half the time: hostile) backend, size, timing and options."""
    hostile = draw(st.booleans())
    providers = ["aer"] * 4 + ["fake"] + (["ibm-runtime", "Aer", "quantum"] if hostile else [])
    provider = draw(st.sampled_from(providers))
    names = (["aer_simulator"] * 3 + [*SMALL_FAKES] if provider == "aer"
             else [*SMALL_FAKES])
    if hostile:
        names += ["fake_does_not_exist", "../../etc/passwd", "fake_" + "x" * 300, ""]
    spec: dict[str, Any] = {"backend": {"provider": provider, "name": draw(st.sampled_from(names))}}

    def value(key: str) -> Any:
        fine, bad = QPU_VALUES[key]
        return draw(st.sampled_from(fine + bad if hostile else fine))

    for key in ("qubits", "maxDepth", "shotTime", "setupTime"):
        if draw(st.booleans()):
            spec[key] = value(key)
    options = {key: value(key) for key in ("noise", "noiseFrom", "method", "seed")
               if draw(st.integers(0, 2)) == 0}
    if provider != "aer":
        options.pop("noiseFrom", None)
    if options:
        spec["backend"]["options"] = options
    if draw(st.integers(0, 4)) == 0:
        spec["cordoned"] = draw(st.sampled_from([True, "false", 0] if hostile else [True]))
    if hostile and draw(st.integers(0, 5)) == 0:
        spec["credentialsSecretRef"] = {"name": "ibm", "key": "token"}
    if hostile and draw(st.booleans()):
        tree, _ = draw(mutated(qpu_doc(spec), max_mutations=1))
        return tree
    return qpu_doc(spec)


POLICY_FIELDS: dict[str, list[Any]] = {
    "features.minQubits": [1, 0, 30, 10**400], "features.maxQubits": [1, 2, 1000, -5],
    "features.maxDepth": [1, 10**6], "features.maxConstraintDensity": [0, 1, 1.5],
    "operational.minDeadlineSlack": ["1h", "-1s", "1e999s", float("nan")],
    "operational.minEstimatedFidelity": [0, 1, 0.99, 2, float("nan")],
    "hardware.shotBudget": [1, 10, 2**64], "hardware.maxQueueDepth": [0, -1],
    "hardware.maxCalibrationAge": ["1s", "10y", 0],
    "cutting.enabled": [True, False], "cutting.allowedCutKinds": [[], ["loWire"], ["nope"]],
    "cutting.maxSamplingOverhead": [1, 1e300, float("inf")], "cutting.maxSubcircuits": [2, 64],
    "scheduler.algorithm": ["random", "list", "greedyEDF", "quantum"],
    "scheduler.iterations": [1, 10**6, 10**7], "scheduler.initialTemperature": [1e-300, 1e300],
    "scheduler.coolingRate": [0.999999, 1, 0], "scheduler.seed": [-1, 2**64],
    "fallback.enabled": [False, True], "fallback.method": ["statevector", "mps", "auto"],
    "fallback.maxStatevectorQubits": [1, 26, 30, 32, 33], "fallback.maxMpsQubits": [1, 10**6],
    "verification.exactMaxQubits": [0, 26, 30, 31], "verification.maxDeviationSigma": [1e-300],
    "optimization.maxVariables": [1, 64], "optimization.qaoaLayers": [1, 8],
    "optimization.shots": [1, 10**9], "optimization.exactTimeLimitSeconds": [0, 1e300],
    "optimization.classicalShortcutSeconds": [0, 1e300],
    "limits.maxCircuitBytes": [1, 10_000_000], "limits.maxDeclaredQubits": [1, 10_000],
    "limits.maxOperations": [1, 10_000_000], "limits.maxGateNesting": [1, 64],
    "limits.maxBracketNesting": [1, 256], "limits.maxObservables": [1],
    "limits.maxRunSeconds": [1e-9, 86_400], "limits.maxMemoryMiB": [256, 65_536],
    "learning.window": [1, 100_000],
}


@st.composite
def policy_and_job(draw: st.DrawFn) -> list[Tree]:
    """An InvocationPolicy with extreme settings and a job that uses it."""
    spec: dict[str, Any] = {}
    for field in draw(st.lists(st.sampled_from(sorted(POLICY_FIELDS)), max_size=5,
                               unique=True)):
        section, key = field.split(".")
        value = draw(st.sampled_from(POLICY_FIELDS[field])) if draw(st.integers(0, 9)) \
            else draw(hostile_value())
        spec.setdefault(section, {})[key] = value
    name = draw(st.sampled_from(["default", "fuzz-policy"]))
    policy = {"apiVersion": API, "kind": "InvocationPolicy", "metadata": {"name": name},
              "spec": spec}
    if draw(st.integers(0, 4)) == 0:
        policy, _ = draw(mutated(policy, max_mutations=1))
    # 30 qubits cut over 8-qubit QPUs takes 16 s here: too close to the bound for a fuzz input.
    width = draw(st.sampled_from([2, 2, 2, 2, 6, 12, 24]))
    job = good_job(policy=name) if width == 2 else wide_job(width, policy=name)
    return [policy, job]
