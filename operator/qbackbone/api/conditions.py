"""Condition types, reasons and phases as named constants (kueue style)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from qbackbone.api.common import Condition


class Phase(StrEnum):
    """The short summary of a QuantumJob's progress, for printer columns."""

    PENDING = "Pending"
    DECIDING = "Deciding"
    QUEUED = "Queued"  # decided for a QPU, waiting for the joint plan to admit it
    SCHEDULED = "Scheduled"
    RUNNING = "Running"
    RECONSTRUCTING = "Reconstructing"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class ConditionType(StrEnum):
    """The condition types a QuantumJob, QPUNode or InvocationPolicy carries."""

    DECIDED = "Decided"
    SCHEDULED = "Scheduled"
    EXECUTED = "Executed"
    VERIFIED = "Verified"
    DEADLINE_MET = "DeadlineMet"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    READY = "Ready"
    VALID = "Valid"
    QUEUE_ADMITTED = "QueueAdmitted"  # kueue admitted the job's pod group (docs/kueue.md)


class Reason(StrEnum):
    """CamelCase reasons; a failed job's Failed condition carries one of these."""

    # success-side reasons
    QUANTUM_SELECTED = "QuantumSelected"
    CLASSICAL_SELECTED = "ClassicalSelected"
    PLANNED = "Planned"
    QUEUED = "Queued"
    ADMITTED = "Admitted"
    FRAGMENTS_COMPLETED = "FragmentsCompleted"
    CLASSICAL_COMPLETED = "ClassicalCompleted"
    MATCHES_EXACT = "MatchesExact"
    WITHIN_NOISE_BUDGET = "WithinNoiseBudget"
    WITHIN_REPORTED_UNCERTAINTY = "WithinReportedUncertainty"  # noisy: within 3 total sigma
    WITHIN_PHYSICAL_BOUNDS = "WithinPhysicalBounds"
    UNCERTAINTY_TOO_LARGE = "UncertaintyTooLarge"  # the check could not have failed
    SELF_CHECK = "SelfCheck"  # compared with the same simulation that produced it
    DEVIATES = "DeviatesFromExact"
    OUT_OF_BOUNDS = "OutOfPhysicalBounds"
    COMPLETED = "Completed"
    FINISHED_IN_TIME = "FinishedInTime"
    DEADLINE_MISSED = "DeadlineMissed"
    CALIBRATED = "Calibrated"
    POLICY_VALID = "PolicyValid"
    CONSTRAINTS_SATISFIED = "ConstraintsSatisfied"
    # failure reasons
    INVALID_MANIFEST = "InvalidManifest"
    INVALID_CIRCUIT = "InvalidCircuit"
    UNKNOWN_GATE = "UnknownGate"
    UNSUPPORTED_OPERATION = "UnsupportedOperation"
    INVALID_OBSERVABLE = "InvalidObservable"
    INVALID_SHOTS = "InvalidShots"
    INVALID_DEADLINE = "InvalidDeadline"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    DEADLINE_INFEASIBLE = "DeadlineInfeasible"
    POLICY_NOT_FOUND = "PolicyNotFound"
    INVALID_POLICY = "InvalidPolicy"
    NO_ELIGIBLE_QPU = "NoEligibleQPU"
    INVALID_QPU_SELECTOR = "InvalidQPUSelector"  # a CEL qpuSelector that cannot be evaluated
    CUT_INFEASIBLE = "CutInfeasible"
    BACKEND_UNAVAILABLE = "BackendUnavailable"
    EXECUTION_FAILED = "ExecutionFailed"
    VERIFICATION_FAILED = "VerificationFailed"
    CLASSICAL_INFEASIBLE = "ClassicalInfeasible"
    INTERNAL_ERROR = "InternalError"
    INVALID_PROBLEM = "InvalidProblem"
    INFEASIBLE_DECISION = "InfeasibleDecision"
    INPUT_TOO_LARGE = "InputTooLarge"  # a fragment's input exceeds the 1 MiB object limit
    FORBIDDEN_INCLUDE = "ForbiddenInclude"  # a circuit includes a non-standard file
    TIME_LIMIT_EXCEEDED = "TimeLimitExceeded"  # the job ran past its policy's maxRunSeconds
    MEMORY_LIMIT_EXCEEDED = "MemoryLimitExceeded"  # the job needed more than maxMemoryMiB
    JOB_PROCESS_CRASHED = "JobProcessCrashed"  # the job's process died without a result
    QPU_UNAVAILABLE = "QPUUnavailable"  # a fragment's QPUNode is gone and no other can take it
    INVALID_QUEUE_NAME = "InvalidQueueName"  # kueue.x-k8s.io/queue-name is no LocalQueue name


MAX_MESSAGE_LENGTH = 1024


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int | None,
    now: datetime,
) -> None:
    """Add or update a condition; lastTransitionTime moves only when the status flips."""
    value = "True" if status else "False"
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[: MAX_MESSAGE_LENGTH - 3] + "..."
    for index, existing in enumerate(conditions):
        if existing.type == type_:
            moved = existing.status != value
            conditions[index] = Condition(
                type=type_, status=value, reason=reason, message=message,
                last_transition_time=now if moved else existing.last_transition_time,
                observed_generation=generation,
            )
            return
    conditions.append(Condition(type=type_, status=value, reason=reason, message=message,
                                last_transition_time=now, observed_generation=generation))
