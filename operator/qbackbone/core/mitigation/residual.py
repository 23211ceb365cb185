"""The residual-bias model: how far a mitigated (or raw) noisy value may still be off.

Depolarizing-like noise shrinks an expectation value towards 0, so what mitigation leaves
scales with the circuit's estimated error probability (1 - F) and with the value's size:
``systematicError = c (1 - F) max(|value|, 0.1)``, F the pipeline's own estimated success
probability of the compiled circuit (readout included) from the QPU's calibration, c per
level calibrated by benchmarks/mitigation/calibrate_residual.py.
"""

from __future__ import annotations

from qbackbone.api.mitigation import MitigationLevel

# From benchmarks/results/mitigation-pipeline.json, chosen held out by device (the smallest
# c putting 97 % of the other devices' values within 3 sigma): 11 fake devices x 15 circuits
# x 5 observables x 3 seeds (docs/mitigation.md).
RESIDUAL_COEFFICIENT: dict[MitigationLevel, float] = {"None": 0.97, "Readout": 0.27, "ZNE": 0.2}
SMALLEST_SCALE = 0.1  # a value near 0 can still be biased: depolarizing noise is not all


def residual_systematic(level: MitigationLevel, fidelity: float, value: float) -> float:
    """The residual bias estimate of one value, at most 1 (a Pauli expectation's range/2)."""
    infidelity = min(max(1.0 - fidelity, 0.0), 1.0)
    return min(RESIDUAL_COEFFICIENT[level] * infidelity * max(abs(value), SMALLEST_SCALE), 1.0)


def residual_model_text(level: MitigationLevel) -> str:
    """How the residual model reads, for the mitigation report."""
    return (f"residual-bias model c (1 - F) max(|value|, {SMALLEST_SCALE}) with c = "
            f"{RESIDUAL_COEFFICIENT[level]} for level {level}, F the estimated success "
            "probability from the QPU's calibration")


# Cut jobs: a reconstructed value shrinks by about the product of the subcircuits' success
# probabilities F (depolarizing-like noise multiplies each factor of every QPD term), so its
# bias is about |value| (1/F - 1). Readout-corrected fragments leave the gate errors: F is then
# the estimate without readout. Measured (benchmarks/results/mitigation-cut.json: GHZ, HEA,
# Clifford+T, Ising and QAOA circuits of 8-10 qubits cut over fake_jakarta + fake_perth, 2
# seeds) the largest coefficient any value needed to lie within 3 sigma was 0.21 unmitigated
# and 0.071 corrected; each is set at about twice that, for devices not measured.
CUT_RESIDUAL_COEFFICIENT: dict[MitigationLevel, float] = {"None": 0.4, "Readout": 0.15}


def cut_residual_systematic(level: MitigationLevel, joint_fidelity: float,
                            value: float) -> float:
    """The residual bias estimate of a value reconstructed from noisy cut fragments."""
    fidelity = min(max(joint_fidelity, 1e-3), 1.0)
    shrink = 1.0 / fidelity - 1.0
    return min(CUT_RESIDUAL_COEFFICIENT[level] * shrink * max(abs(value), SMALLEST_SCALE), 1.0)


def cut_model_text(level: MitigationLevel) -> str:
    """How the cut residual model reads, for the mitigation report."""
    what = "without readout (corrected)" if level == "Readout" else "readout included"
    return (f"cut residual-bias model {CUT_RESIDUAL_COEFFICIENT[level]} (1/F - 1) "
            f"max(|value|, {SMALLEST_SCALE}), F the product over subcircuits of their "
            f"shot-weighted estimated success probability, {what}")
