"""The reduce phase: policy, deadline, shots, circuit, observables, features."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from qiskit import QuantumCircuit

from qbackbone.api.common import ObjectMeta
from qbackbone.api.conditions import Reason
from qbackbone.api.policy import DEFAULT_POLICY_NAME, InvocationPolicy
from qbackbone.api.quantumjob import QuantumJob
from qbackbone.core.circuits.features import CircuitFeatures, extract_features
from qbackbone.core.circuits.observables import (
    MeasurementBasis,
    group_into_bases,
    validate_observables,
)
from qbackbone.core.circuits.parse import parse_qasm
from qbackbone.core.circuits.prepare import is_dynamic, sampling_circuit, unitary_part
from qbackbone.core.errors import JobFailure
from qbackbone.core.execute.shots import precision_shots

DEFAULT_SHOTS = 4000
MAX_SHOTS = 10_000_000


@dataclass(frozen=True)
class ReducedJob:
    """A validated job, ready for the QIP."""

    policy: InvocationPolicy
    circuit: QuantumCircuit  # unitary part (expectations) or the measured circuit (sampling)
    observables: list[str] | None
    bases: list[MeasurementBasis]
    basis_of: list[int]
    measured_circuits: list[QuantumCircuit]  # what runs on a QPU, one per basis
    shots: int  # per measured circuit
    features: CircuitFeatures
    deadline_remaining: float | None
    dynamic: bool


def resolve_policy(job: QuantumJob, policies: Mapping[str, InvocationPolicy]) -> InvocationPolicy:
    """The policy the job names; 'default' falls back to built-in defaults when not defined."""
    name = job.spec.policy_ref.name if job.spec.policy_ref else DEFAULT_POLICY_NAME
    if name in policies:
        return policies[name]
    if name == DEFAULT_POLICY_NAME:
        return InvocationPolicy(metadata=ObjectMeta(name=DEFAULT_POLICY_NAME, generation=0))
    known = ", ".join(sorted(policies)) or "none"
    raise JobFailure(Reason.POLICY_NOT_FOUND,
                     f"InvocationPolicy {name!r} does not exist (known: {known}); create it or "
                     "remove spec.policyRef to use the default")


def deadline_remaining(job: QuantumJob, now: datetime) -> float | None:
    """Seconds left before the job's deadline, measured from its creation."""
    deadline = job.spec.deadline
    if deadline is None:
        return None
    if deadline <= 0:
        raise JobFailure(Reason.INVALID_DEADLINE,
                         f"spec.deadline must be a positive duration, got {deadline:g}s")
    created = job.metadata.creation_timestamp or now
    if created.tzinfo is None:
        created = created.replace(tzinfo=now.tzinfo)
    remaining = deadline - (now - created).total_seconds()
    if remaining <= 0:
        raise JobFailure(Reason.DEADLINE_EXCEEDED,
                         f"the deadline ({deadline:g}s after creation at {created.isoformat()}) "
                         f"passed {-remaining:.1f}s ago")
    return remaining


def requested_shots(job: QuantumJob) -> int:
    """Shots per measured basis from spec.shots or spec.precision (the larger when both)."""
    shots, precision = job.spec.shots, job.spec.precision
    if shots is not None and shots <= 0:
        raise JobFailure(Reason.INVALID_SHOTS, f"spec.shots must be positive, got {shots}")
    if precision is not None and not 0 < precision < 1:
        raise JobFailure(Reason.INVALID_SHOTS,
                         f"spec.precision must be between 0 and 1 (a standard error), got "
                         f"{precision}")
    try:
        derived = precision_shots(precision, MAX_SHOTS) if precision is not None else None
    except ValueError as err:
        raise JobFailure(Reason.INVALID_SHOTS, str(err)) from None
    candidates = [s for s in (shots, derived) if s]
    chosen = max(candidates) if candidates else DEFAULT_SHOTS
    if chosen > MAX_SHOTS:
        raise JobFailure(Reason.INVALID_SHOTS,
                         f"{chosen} shots per basis exceed the limit of {MAX_SHOTS}")
    return chosen


def reduce_job(job: QuantumJob, policies: Mapping[str, InvocationPolicy],
               now: datetime) -> ReducedJob:
    """Validate everything about the job that does not depend on the QPUs."""
    policy = resolve_policy(job, policies)
    remaining = deadline_remaining(job, now)
    shots = requested_shots(job)
    spec = job.spec.circuit
    if spec is None:
        raise JobFailure(Reason.INVALID_MANIFEST, "the job has no spec.circuit")
    limits = policy.spec.limits
    if spec.observables and len(spec.observables) > limits.max_observables:
        raise JobFailure(Reason.INPUT_TOO_LARGE,
                         f"the job lists {len(spec.observables)} observables; the limit is "
                         f"{limits.max_observables} (policy spec.limits.maxObservables)")
    parsed = parse_qasm(spec.qasm, limits)
    if spec.sampling and spec.observables:
        raise JobFailure(Reason.INVALID_OBSERVABLE,
                         "give observables or sampling: true, not both")
    if spec.sampling:
        circuit = sampling_circuit(parsed)
        observables = None
        bases: list[MeasurementBasis] = []
        basis_of: list[int] = []
        measured = [circuit]
    else:
        if not spec.observables:
            raise JobFailure(Reason.INVALID_OBSERVABLE,
                             "the job has no observables: list Pauli strings in "
                             "spec.circuit.observables, or set sampling: true for counts")
        circuit = unitary_part(parsed)
        observables = validate_observables(spec.observables, circuit.num_qubits)
        bases, basis_of = group_into_bases(observables)
        measured = [basis.append_to(circuit) for basis in bases]
    features = extract_features(circuit, len(measured), shots)
    return ReducedJob(policy=policy, circuit=circuit, observables=observables, bases=bases,
                      basis_of=basis_of, measured_circuits=measured, shots=shots,
                      features=features, deadline_remaining=remaining,
                      dynamic=is_dynamic(circuit))
