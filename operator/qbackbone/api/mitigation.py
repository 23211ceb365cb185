"""Error mitigation: the policy section that governs it and the report a result carries."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qbackbone.api.common import ApiModel, Duration

TechniqueRule = Literal["Auto", "Always", "Never"]
"""Auto: the QIP decides per job; Always: whenever the QPU is noisy; Never: forbidden."""

MitigationLevel = Literal["None", "Readout", "ZNE"]


class MitigationPolicy(ApiModel):
    """Which error-mitigation techniques noisy QPUs may use, and what they may cost.

    Levels follow Qiskit Runtime's resilience levels: ``Readout`` is TREX (twirled readout
    with a measurement-noise calibration) for expectation values, ``ZNE`` adds gate twirling
    and zero-noise extrapolation by gate folding (noise factors 1, 3, 5). Ideal simulators
    are never mitigated.
    """

    enabled: bool = Field(default=True, description="Mitigate results from noisy QPUs.")
    readout: TechniqueRule = Field(
        default="Auto", description="Readout mitigation: TREX for expectation values, M3 "
        "(mthree) with the QPU's readout calibration for counts.")
    zne: TechniqueRule = Field(
        default="Auto", description="Zero-noise extrapolation (with gate twirling); Auto uses it "
        "when the shot multiplier and the deadline allow.")
    dynamical_decoupling: TechniqueRule = Field(
        default="Never", description="Dynamical decoupling of idle qubits (XX). Off by default: "
        "on the offline fake devices it measured worse than readout mitigation alone "
        "(docs/mitigation-plan.md); Auto is read as Never for now.")
    max_shot_multiplier: float = Field(
        default=4.0, ge=1.0, le=16.0,
        description="Most shots mitigation may spend per requested shot (Readout 2x, ZNE 4x).")
    target_sigma: float = Field(
        default=0.08, gt=0.0, le=1.0,
        description="Total uncertainty sqrt(stdError^2 + systematicError^2) up to which a ZNE "
        "value is always kept; above it the unextrapolated readout-mitigated value (with the "
        "residual-bias model) is used instead when that is more certain.")


    readout_calibration_max_age: Duration = Field(
        default=3600.0, description="A QPU's readout calibration (for M3) is measured again "
        "when older than this, or when the QPU's own calibration changes.")
    readout_calibration_shots: int = Field(
        default=4000, ge=100, le=100_000,
        description="Shots per preparation (all-0, all-1) of a readout calibration.")


class MitigationReport(ApiModel):
    """What mitigated a result and what it cost."""

    level: MitigationLevel
    techniques: list[str] = Field(
        default_factory=list, description="e.g. TREX, gateTwirling, ZNE(linear; 1,3,5).")
    shot_multiplier: float = Field(
        default=1.0, description="Shots run per requested shot (calibration items included).")
    circuit_multiplier: float = Field(
        default=1.0, description="Circuit length relative to the unmitigated circuit, averaged "
        "over the items run (ZNE folds to 1x, 3x, 5x).")
    systematic_model: str = Field(
        default="", description="How systematicError was estimated.")
    calibration: str | None = Field(
        default=None, description="The readout calibration used (TREX: taken in the same "
        "call) and the QPU calibration the residual model read.")
    reason: str = Field(default="", description="Why the QIP chose this level.")
    qpus: list[str] = Field(default_factory=list, description="QPUs this report covers.")
