"""Finishing a job, whatever its path: merged counts, verification, deadline and success."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence

from qbackbone.api.conditions import ConditionType, Phase, Reason
from qbackbone.api.quantumjob import ExpectationValue, QuantumJobStatus, Verification
from qbackbone.core.learning.implied import from_counts, from_expectations
from qbackbone.core.pipeline.jobrun import JobRun
from qbackbone.core.pipeline.reduce import ReducedJob
from qbackbone.core.verify.checks import NoiseProfile, verify_counts, verify_expectations
from qbackbone.core.verify.exact import exact_distribution, exact_expectations, no_exact_reason


def merge_sampling_counts(per_qpu: Iterable[Sequence[Mapping[str, int]]]) -> dict[str, int]:
    """One histogram from each QPU's counts of a sampling job (its single circuit), sorted."""
    merged: dict[str, int] = {}
    for basis_counts in per_qpu:
        for key, n in basis_counts[0].items():
            merged[key] = merged.get(key, 0) + n
    return dict(sorted(merged.items()))


SUMMARY_CHARS = 200


def values_summary(values: Sequence[ExpectationValue]) -> str:
    """``observable=value+-sigma, ...`` in at most SUMMARY_CHARS characters (long Pauli
    strings shown by their non-identity part, e.g. ``Z0Z1``)."""
    parts = []
    for ev in values:
        label = ev.observable
        if len(label) > 8:
            label = "".join(f"{c}{len(label) - 1 - i}" for i, c in enumerate(label)
                            if c != "I") or "I"
        sigma = math.hypot(ev.std_error, ev.systematic_error or 0.0)
        parts.append(f"{label}={ev.value:.3f}+-{sigma:.3f}")
    text = ", ".join(parts)
    return text if len(text) <= SUMMARY_CHARS else text[:SUMMARY_CHARS - 3] + "..."


def verify_and_finish(run: JobRun, reduced: ReducedJob, noise: NoiseProfile,
                      self_check: bool = False) -> QuantumJobStatus:
    """Check the result against exact values (or physical bounds) with the noise allowance;
    Succeeded, or Failed with VerificationFailed. ``self_check``: the result came from the
    same exact simulation as the reference, so an exact comparison is labelled SelfCheck."""
    status = run.status
    result = status.result
    assert result is not None
    if result.expectation_values:
        result.summary = values_summary(result.expectation_values)
    policy = reduced.policy.spec.verification
    no_exact = no_exact_reason(reduced.features.qubits, policy.exact_max_qubits, reduced.dynamic,
                               reduced.policy.spec.limits.statevector_qubits(copies=3))
    with run.phase("verify_seconds"):
        verification: Verification
        if result.expectation_values is not None and reduced.observables is not None:
            exact = (exact_expectations(reduced.circuit, reduced.observables)
                     if no_exact is None else None)
            verification = verify_expectations(result.expectation_values, exact, noise,
                                               policy.max_deviation_sigma, no_exact)
            unmitigated = all(m.level == "None" for m in result.mitigation or [])
            if verification.noisy and exact is not None and unmitigated:
                verification.implied_success_probability = from_expectations(
                    [ev.value for ev in result.expectation_values], list(exact))
        else:
            dist = exact_distribution(reduced.circuit) if no_exact is None else None
            verification = verify_counts(result.counts or {}, dist, noise,
                                         policy.max_deviation_sigma, no_exact,
                                         result.mitigated_probabilities,
                                         noise.mitigation_overhead)
            if verification.noisy and dist is not None and result.counts:
                verification.implied_success_probability = from_counts(result.counts, dist)
    if self_check and verification.method in ("ExactStatevector", "ExactDistribution"):
        verification.method = "SelfCheck"
        verification.details = ("self-check, no independent verification: the statevector "
                                "fallback computed the result by the same exact simulation as "
                                f"the reference; {verification.details}")
    status.verification = verification
    if run.energy_of is not None:  # what ran, verified or not, took this energy
        result.energy_joules = run.energy_of(status)
    run.progress.step("verify", f"{verification.method}: "
                      f"{'passed' if verification.passed else 'FAILED'} ({verification.details})")
    if not verification.passed:
        run.condition(ConditionType.VERIFIED, False, Reason.DEVIATES, verification.details)
        return run.fail(Reason.VERIFICATION_FAILED,
                        f"the result did not pass {verification.method}: {verification.details}")
    reason = {"ExactStatevector": Reason.MATCHES_EXACT,
              "ExactDistribution": Reason.MATCHES_EXACT,
              "SelfCheck": Reason.SELF_CHECK}.get(verification.method,
                                                  Reason.WITHIN_PHYSICAL_BOUNDS)
    if verification.noisy and verification.method != "PhysicalBounds":
        reason = (Reason.WITHIN_REPORTED_UNCERTAINTY if noise.systematic_reported
                  else Reason.WITHIN_NOISE_BUDGET)
    if not verification.informative:  # not a failure, but not a verification either
        run.condition(ConditionType.VERIFIED, False, Reason.UNCERTAINTY_TOO_LARGE,
                      verification.details)
        return conclude(run, reduced.deadline_remaining)
    run.condition(ConditionType.VERIFIED, True, reason, verification.details)
    return conclude(run, reduced.deadline_remaining)


def conclude(run: JobRun, remaining: float | None) -> QuantumJobStatus:
    """A verified result: the deadline condition, then Succeeded."""
    status, result, verification = run.status, run.status.result, run.status.verification
    assert result is not None and verification is not None
    elapsed = time.perf_counter() - run.started
    if remaining is not None:
        met = elapsed <= remaining
        run.condition(ConditionType.DEADLINE_MET, met,
                      Reason.FINISHED_IN_TIME if met else Reason.DEADLINE_MISSED,
                      f"finished {elapsed:.2f}s after start with {remaining:.2f}s available")
    status.phase = Phase.SUCCEEDED
    run.condition(ConditionType.SUCCEEDED, True, Reason.COMPLETED,
                  f"{result.path} result verified by {verification.method}"
                  if verification.informative else
                  f"{result.path} result, not verified: its reported uncertainty is too large "
                  "for the exact comparison to fail")
    return run.finish()
