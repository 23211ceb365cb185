"""Pauli observables: validation, measurement bases, and estimation from counts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qiskit import QuantumCircuit

from qbackbone.api.conditions import Reason
from qbackbone.core.errors import JobFailure

PAULI_LETTERS = frozenset("IXYZ")


def validate_observables(observables: Sequence[str], width: int) -> list[str]:
    """Upper-cased Pauli strings, each exactly ``width`` letters of IXYZ."""
    if not observables:
        raise JobFailure(Reason.INVALID_OBSERVABLE,
                         "no observables given: list Pauli strings, or set sampling: true")
    checked = []
    for index, raw in enumerate(observables):
        text = str(raw).strip()
        text = text.upper() if text.isascii() else text  # a dotless i upper-cases to I
        bad = sorted(set(text) - PAULI_LETTERS)
        if bad or not text:
            raise JobFailure(
                Reason.INVALID_OBSERVABLE,
                f"observable {index} ({raw!r}) has letters other than I, X, Y, Z: {''.join(bad)}",
            )
        if len(text) != width:
            raise JobFailure(
                Reason.INVALID_OBSERVABLE,
                f"observable {index} ({raw!r}) has {len(text)} letters but the circuit has "
                f"{width} qubits; give one letter per qubit, qubit 0 rightmost",
            )
        checked.append(text)
    return checked


@dataclass(frozen=True)
class MeasurementBasis:
    """One measurement setting: per qubit the Pauli measured (I where nothing is needed)."""

    letters: str  # Qiskit order: qubit 0 is the rightmost letter

    def append_to(self, circuit: QuantumCircuit) -> QuantumCircuit:
        """The circuit with basis changes and a measurement of every qubit into clbit i."""
        measured = circuit.copy()
        n = circuit.num_qubits
        for qubit in range(n):
            letter = self.letters[n - 1 - qubit]
            if letter == "X":
                measured.h(qubit)
            elif letter == "Y":
                measured.sdg(qubit)
                measured.h(qubit)
        measured.measure_all()
        return measured


def group_into_bases(observables: Sequence[str]) -> tuple[list[MeasurementBasis], list[int]]:
    """Greedy qubit-wise-commuting grouping; returns the bases and each observable's basis."""
    bases: list[list[str]] = []
    assignment: list[int] = []
    for obs in observables:
        for index, basis in enumerate(bases):
            if all(a == "I" or b == "I" or a == b for a, b in zip(obs, basis, strict=True)):
                for pos, letter in enumerate(obs):
                    if letter != "I":
                        basis[pos] = letter
                assignment.append(index)
                break
        else:
            bases.append(list(obs))
            assignment.append(len(bases) - 1)
    return [MeasurementBasis("".join(b).replace("I", "Z")) for b in bases], assignment


@dataclass(frozen=True)
class Estimate:
    """A mean of +-1 outcomes with its standard error."""

    value: float
    std_error: float
    shots: int


def parity_estimate(counts: Mapping[str, int], observable: str) -> Estimate:
    """Mean of the observable's eigenvalue over shots measured in a compatible basis."""
    n = len(observable)
    # Counts keys and Pauli strings share Qiskit order, so string positions line up.
    support = [pos for pos, letter in enumerate(observable) if letter != "I"]
    total = 0
    signed = 0
    for key, count in counts.items():
        bits = key.replace(" ", "")[-n:].rjust(n, "0")
        parity = sum(bits[pos] == "1" for pos in support) % 2
        signed += -count if parity else count
        total += count
    if total == 0:
        raise ValueError("no shots to estimate from")
    mean = signed / total
    return Estimate(mean, parity_std_error(mean, total), total)


def parity_std_error(mean: float, shots: int) -> float:
    """Standard error of a mean of ``shots`` +-1 outcomes; never 0 for finite shots.

    The plug-in ``sqrt((1 - mean^2) / (shots - 1))`` is 0 when every shot agrees, which
    claims certainty that N shots cannot give. With ``k = shots (1 + mean) / 2`` outcomes +1
    we also take the Agresti-Coull estimate ("add two successes and two failures", the 95%
    Wilson centre): ``p~ = (k + 2) / (N + 4)``, ``SE = 2 sqrt(p~ (1 - p~) / (N + 4))``, and
    report the larger of the two. Inside (0, 1) the plug-in is the larger up to O(1/N); when
    all N shots agree the error is about ``2 sqrt(2) / N``, in line with the rule of three
    (a 95% bound of 3/N on the minority probability, 6/N on the mean). One shot says
    nothing about the spread: its error is the largest a +-1 outcome can have, 1.
    """
    if shots <= 0:
        raise ValueError("no shots to estimate from")
    if shots == 1:
        return 1.0
    plug_in = max(0.0, 1.0 - mean * mean) / max(shots - 1, 1)
    p_tilde = (shots * (1.0 + mean) / 2.0 + 2.0) / (shots + 4.0)
    agresti_coull = 4.0 * p_tilde * (1.0 - p_tilde) / (shots + 4.0)
    return math.sqrt(max(plug_in, agresti_coull))


def combine_strata(estimates: Sequence[Estimate]) -> Estimate:
    """Shot-weighted mean of per-QPU estimates with the stratified standard error.

    QPUs differ in noise, so pooled shots are not one sample: each QPU is a stratum.
    """
    total = sum(e.shots for e in estimates)
    value = sum(e.value * e.shots for e in estimates) / total
    variance = sum((e.shots / total) ** 2 * e.std_error**2 for e in estimates)
    return Estimate(value, math.sqrt(variance), total)


def shots_for_precision(precision: float) -> int:
    """Shots so that a +-1 observable's standard error is at most ``precision`` (worst case)."""
    return math.ceil(1.0 / (precision * precision))
