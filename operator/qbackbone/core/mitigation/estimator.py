"""One mitigated Estimator call through qiskit-ibm-runtime's executor-based primitive.

``executor_estimator.Estimator`` does twirling, TREX and ZNE gate folding on the client, so
the same options mitigate an offline fake device (an Aer simulator carrying its noise) and a
real IBM backend.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import SparsePauliOp

from qbackbone.core.mitigation.plan import ZNE_NOISE_FACTORS, MitigationPlan

# Index of each extrapolator in evs_extrapolated: the options ask for them in this order.
EXTRAPOLATORS = ("exponential", "linear")


@dataclass(frozen=True)
class RawEstimate:
    """What the primitive returned for one observable (ZNE fields only at level ZNE)."""

    value: float
    std: float
    noise_factor_values: tuple[float, ...] = ()
    noise_factor_stds: tuple[float, ...] = ()
    extrapolated: tuple[float, ...] = ()  # zero-noise value per extrapolator
    extrapolated_stds: tuple[float, ...] = ()


def configure(estimator: Any, plan: MitigationPlan, shots: int, seed: int | None,
              simulator: bool) -> None:
    """Set the estimator's options for ``plan`` explicitly (not through resilience_level, so
    each technique follows the policy on its own)."""
    o = estimator.options
    o.default_shots = shots
    o.resilience_level = 0
    o.resilience.measure_mitigation = plan.readout
    o.twirling.enable_measure = plan.readout
    o.twirling.enable_gates = plan.zne
    o.resilience.zne_mitigation = plan.zne
    if plan.zne:
        o.resilience.zne.noise_factors = ZNE_NOISE_FACTORS
        o.resilience.zne.extrapolator = EXTRAPOLATORS
    o.dynamical_decoupling.enable = plan.dynamical_decoupling
    if plan.dynamical_decoupling:
        o.dynamical_decoupling.sequence_type = "XX"
    if simulator and seed is not None:
        o.simulator.seed_simulator = seed  # also seeds the twirling randomizations


def run_estimator(mode: Any, circuit: QuantumCircuit, observables: Sequence[SparsePauliOp],
                  shots: int, seed: int | None, plan: MitigationPlan,
                  simulator: bool) -> list[RawEstimate]:
    """Estimate every observable on an ISA ``circuit`` (observables already laid out on it)."""
    from qiskit_ibm_runtime.executor_estimator import Estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        estimator = Estimator(mode=mode)
        configure(estimator, plan, shots, seed, simulator)
        data = estimator.run([(circuit, list(observables))]).result()[0].data
    return [_raw(data, j) for j in range(len(observables))]


def _floats(values: Any) -> tuple[float, ...]:
    return tuple(float(x) for x in np.asarray(values, dtype=float).ravel())


def _raw(data: Any, j: int) -> RawEstimate:
    std = float(data.stds[j])
    if "ensemble_standard_error" in data:  # never below the shot noise of the ensemble
        std = max(std, float(data.ensemble_standard_error[j]))
    if "evs_noise_factors" not in data:
        return RawEstimate(float(data.evs[j]), std)
    extrapolated = np.asarray(data.evs_extrapolated[j], dtype=float)  # (extrapolators, points)
    extrapolated_stds = np.asarray(data.stds_extrapolated[j], dtype=float)
    return RawEstimate(
        value=float(data.evs[j]), std=std if math.isfinite(std) else math.inf,
        noise_factor_values=_floats(data.evs_noise_factors[j]),
        noise_factor_stds=_floats(data.stds_noise_factors[j]),
        extrapolated=_floats(extrapolated[:, 0]),
        extrapolated_stds=_floats(extrapolated_stds[:, 0]),
    )
