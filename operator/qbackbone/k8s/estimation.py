"""The input of an Estimator fragment: what a fragment pod needs, beyond its circuit, shots and
seed, to run the mitigated Estimator on a noisy QPU (``core.execute.estimates``).

A SingleQPU share of an expectation-value job on a noisy QPU runs one Estimator call instead of
one sampling call per measured basis. Its input ConfigMap then carries the *unmeasured* circuit
compiled for that QPU (as the only circuit of ``circuits.qpy``) and, under
``estimator.json``, the observables laid out on it (``SparsePauliOp.to_list()``), the
estimated fidelities the residual-bias model reads, the QPU's mitigation plan and the
policy's target sigma. Pure (no I/O); the worker decodes it, ``k8s.single`` encodes it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import MISSING, dataclass, fields
from typing import Any, get_args

from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qbackbone.api.mitigation import MitigationLevel
from qbackbone.core.execute.estimates import EstimatorWork
from qbackbone.core.mitigation.plan import MitigationPlan

ESTIMATOR_KEY = "estimator.json"


@dataclass(frozen=True)
class EstimatorInput:
    """An Estimator fragment's work on its QPU, the mitigation it runs with, and the largest
    total uncertainty a ZNE value may report."""

    work: EstimatorWork
    plan: MitigationPlan
    target_sigma: float


def estimator_input_data(work: EstimatorWork, plan: MitigationPlan,
                         target_sigma: float) -> dict[str, str]:
    """The ``estimator.json`` entry of the input (the circuit travels in ``circuits.qpy``).
    Every field of the work (but the circuit) and of the plan is written, by its name."""
    observables = [[[label, coeff.real, coeff.imag] for label, coeff in op.to_list()]
                   for op in work.observables]
    numbers = {f.name: getattr(work, f.name) for f in fields(EstimatorWork)
               if f.name not in _WORK_OBJECTS}
    body = {"observables": observables, "work": numbers,
            "plan": {f.name: getattr(plan, f.name) for f in fields(MitigationPlan)},
            "targetSigma": target_sigma}
    return {ESTIMATOR_KEY: json.dumps(body, sort_keys=True)}


def estimator_input(data: Mapping[str, str], circuits: Sequence[QuantumCircuit]
                    ) -> EstimatorInput | None:
    """The Estimator work of an input whose circuits were already read; None for a counts
    fragment (no ``estimator.json``). ValueError when the entry is malformed."""
    text = data.get(ESTIMATOR_KEY)
    if text is None:
        return None
    if len(circuits) != 1:
        raise ValueError(f"an Estimator fragment runs one circuit, got {len(circuits)}")
    (circuit,) = circuits
    try:
        body = json.loads(text)
        observables = [_observable(terms, circuit.num_qubits) for terms in body["observables"]]
        numbers = _numbers(body["work"])
        plan = _plan(body["plan"])
        target = float(body["targetSigma"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"malformed {ESTIMATOR_KEY}: {type(err).__name__}: {err}") from None
    if not observables:
        raise ValueError(f"malformed {ESTIMATOR_KEY}: no observables")
    if not (math.isfinite(target) and target > 0.0):
        raise ValueError(f"malformed {ESTIMATOR_KEY}: target sigma {target} out of range")
    return EstimatorInput(EstimatorWork(circuit, observables, **numbers), plan, target)


_WORK_OBJECTS = ("circuit", "observables")


def _observable(terms: Any, width: int) -> SparsePauliOp:
    pairs = [(str(label), complex(float(re), float(im))) for label, re, im in terms]
    if not pairs or any(len(label) != width for label, _ in pairs):
        raise ValueError(f"an observable is not a Pauli sum on the circuit's {width} qubits")
    return SparsePauliOp.from_list(pairs)


def _numbers(raw: Mapping[str, Any]) -> dict[str, float]:
    """The work's numeric fields (fidelities: probabilities); unknown names refused."""
    known = {f.name for f in fields(EstimatorWork)} - set(_WORK_OBJECTS)
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"unknown work field(s) {sorted(unknown)}")
    numbers = {name: float(value) for name, value in raw.items()}
    for name, value in numbers.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} {value} is not a probability")
    return numbers


def _plan(raw: Mapping[str, Any]) -> MitigationPlan:
    """The plan from its fields: the level one of MitigationLevel, the reason a string, the
    technique flags booleans; unknown names refused."""
    values: dict[str, Any] = {}
    for f in fields(MitigationPlan):
        if f.name not in raw:
            if f.default is MISSING:
                raise KeyError(f"plan.{f.name}")
            continue
        value = raw[f.name]
        if f.name == "level" and value not in get_args(MitigationLevel):
            raise ValueError(f"unknown mitigation level {value!r}")
        if isinstance(f.default, bool) and not isinstance(value, bool):
            raise TypeError(f"plan.{f.name} must be a boolean, got {value!r}")
        values[f.name] = str(value) if f.name == "reason" else value
    unknown = set(raw) - {f.name for f in fields(MitigationPlan)}
    if unknown:
        raise ValueError(f"unknown plan field(s) {sorted(unknown)}")
    return MitigationPlan(**values)
