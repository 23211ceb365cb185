"""Run one fragment or the classical fallback from its input ConfigMap; store the result.

A worker is a fresh process per pod, so only what a fragment needs is imported at module
level: the classical fallback and the problem solver (the pipeline, SciPy, OR-Tools; about
0.7 s of imports) are imported by the kinds that use them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping

from qbackbone.api.qpunode import QPUNode
from qbackbone.core.circuits.bindings import BINDINGS_KEY, BindingsError, bind_rows
from qbackbone.core.circuits.serialize import circuits_from_b64
from qbackbone.core.execute.estimates import estimate_on_qpu
from qbackbone.core.mitigation.readout import measured_qubits
from qbackbone.core.qpus.backends import derive_seed
from qbackbone.core.qpus.fidelity import estimate_success_probability
from qbackbone.core.qpus.fleet import QPU, build_fleet
from qbackbone.k8s.builders import JobRef, build_configmap
from qbackbone.k8s.codec import check_size
from qbackbone.k8s.estimation import EstimatorInput, estimator_input
from qbackbone.k8s.kube import Kube
from qbackbone.k8s.results import classical_result_data, fragment_result_data


class InputError(ValueError):
    """The input ConfigMap is missing or malformed."""


def run_fragment(data: Mapping[str, str], pod: str | None) -> dict[str, str]:
    """The result data of a fragment: its circuits on its QPU, one backend call; an Estimator
    fragment (``estimator.json`` in its input) returns mitigated expectation values instead
    of counts. With ``bindings.json`` the input holds one parametrised template and the
    circuits are its rows of values bound (a detect job's kernel circuits)."""
    node = QPUNode.model_validate(json.loads(data["qpunode.json"]))
    qpu = build_fleet([node])[0]
    circuits = circuits_from_b64(data["circuits.qpy"])
    bindings = data.get(BINDINGS_KEY)
    if bindings is not None:
        if len(circuits) != 1:
            raise InputError(f"{BINDINGS_KEY} needs exactly one template circuit, got "
                             f"{len(circuits)}")
        try:
            circuits = bind_rows(circuits[0], bindings)
        except BindingsError as err:
            raise InputError(str(err)) from None
    shots = json.loads(data["shots"])  # one count for all circuits, or one per circuit
    estimator = estimator_input(data, circuits)
    if estimator is not None:
        return _run_estimator(qpu, estimator, shots, json.loads(data["seed"]), pod)
    started, start = time.time(), time.perf_counter()
    # The same per-QPU seed as run_job, so strata on different QPUs draw independent samples.
    seed = derive_seed(json.loads(data["seed"]), qpu.name)
    counts = qpu.executor.run(circuits, shots, seed) if circuits else []
    seconds = time.perf_counter() - start
    cal = qpu.descriptor.calibration
    # bound rows share the template's gates and layout: one estimate and mapping serves all
    distinct = circuits[:1] if bindings is not None else circuits
    fidelity = 1.0 if cal is None or not circuits else min(
        estimate_success_probability(c, cal) for c in distinct)
    mapping = [(c.num_clbits, measured_qubits(c)) for c in distinct]
    measured = mapping * len(circuits) if bindings is not None else mapping
    return fragment_result_data(qpu.name, qpu.descriptor.backend_name, counts, seconds, pod,
                                started, started + seconds, fidelity, measured=measured)


def _run_estimator(qpu: QPU, estimator: EstimatorInput, shots: object, job_seed: object,
                   pod: str | None) -> dict[str, str]:
    """One mitigated Estimator call on the QPU (``estimate_on_qpu``, as ``execute_single_qpu``
    runs it in process, with the same per-QPU seed); the values and the fidelity the operator
    computed when it compiled the circuit."""
    if not isinstance(shots, int) or isinstance(shots, bool) or shots < 1:
        raise InputError(f"an Estimator fragment takes one positive shot count, got {shots!r}")
    if job_seed is not None and not isinstance(job_seed, int):
        raise InputError(f"seed must be an integer or null, got {job_seed!r}")
    started, start = time.time(), time.perf_counter()
    values = estimate_on_qpu(qpu, estimator.work, shots, derive_seed(job_seed, qpu.name),
                             estimator.plan, estimator.target_sigma)
    seconds = time.perf_counter() - start
    return fragment_result_data(qpu.name, qpu.descriptor.backend_name, [], seconds, pod,
                                started, started + seconds, estimator.work.fidelity, values)


def run_classical_input(data: Mapping[str, str], pod: str | None) -> dict[str, str]:
    """The result data of the classical fallback."""
    from qbackbone.core.classical.fallback import run_classical

    (circuit,) = circuits_from_b64(data["circuit.qpy"])
    start = time.perf_counter()
    outcome = run_classical(circuit, json.loads(data["observables"]), int(data["shots"]),
                            data["method"], json.loads(data["seed"]))
    return classical_result_data(outcome, time.perf_counter() - start, pod)


def run_input(kube: Kube, namespace: str, name: str) -> str:
    """Do the work of input ConfigMap ``name`` once; returns what happened, for the log."""
    data = kube.configmap(namespace, name)
    if data is None:
        raise InputError(f"input ConfigMap {namespace}/{name} does not exist")
    try:
        kind, result, job = data["kind"], data["result"], JobRef(data["job"], namespace,
                                                                 data["jobUid"])
    except KeyError as err:
        raise InputError(f"input ConfigMap {namespace}/{name} lacks key {err}") from None
    if kube.configmap(namespace, result) is not None:
        return f"result {result} exists; nothing to do"
    pod = os.environ.get("HOSTNAME")
    if kind == "fragment":
        out = run_fragment(data, pod)
        qpu: str | None = out["qpu"]
    elif kind == "classical":
        out, qpu = run_classical_input(data, pod), None
    elif kind == "analysis":
        from qbackbone.k8s.analysis import run_analysis_input

        out, qpu = run_analysis_input(data, pod), None
    elif kind == "problem":
        from qbackbone.k8s.problem import run_problem_input

        out, qpu = run_problem_input(data, pod), None
    else:
        raise InputError(f"input ConfigMap {namespace}/{name}: unknown kind {kind!r}")
    check_size(out, f"the result {result}")
    created = kube.create(build_configmap(job, result, "result", out, qpu, controller=False))
    return f"wrote {result}" if created else f"result {result} appeared meanwhile; kept it"
