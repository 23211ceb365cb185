"""The mitigation level a job gets on one QPU: chosen from the policy, the QPU and the deadline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from qbackbone.api.mitigation import MitigationLevel, MitigationPolicy

# Shots run per requested shot, counted from the QuantumProgram qiskit-ibm-runtime's executor
# Estimator builds (docs/mitigation-plan.md): TREX adds a calibration item as large as the
# job's; ZNE runs noise factors 1, 3, 5 (three items) plus that calibration.
READOUT_SHOT_MULTIPLIER = 2.0
ZNE_SHOT_MULTIPLIER = 4.0
ZNE_NOISE_FACTORS = (1, 3, 5)
ZNE_CIRCUIT_MULTIPLIER = sum(ZNE_NOISE_FACTORS) / len(ZNE_NOISE_FACTORS)


@dataclass(frozen=True)
class MitigationPlan:
    """The techniques one QPU's share of a job runs with, and why."""

    level: MitigationLevel
    reason: str
    readout: bool = False  # TREX: twirled measurements plus a measurement-noise calibration
    m3: bool = False  # counts: M3 correction with the QPU's readout calibration
    zne: bool = False  # gate twirling plus zero-noise extrapolation by gate folding
    dynamical_decoupling: bool = False

    @property
    def shot_multiplier(self) -> float:
        """Shots run per requested shot."""
        if self.zne:
            return ZNE_SHOT_MULTIPLIER if self.readout else float(len(ZNE_NOISE_FACTORS))
        return READOUT_SHOT_MULTIPLIER if self.readout else 1.0

    @property
    def circuit_multiplier(self) -> float:
        """Circuit length relative to the unmitigated one, averaged over the items run."""
        return ZNE_CIRCUIT_MULTIPLIER if self.zne else 1.0

    @property
    def techniques(self) -> list[str]:
        """Names for the result's mitigation report."""
        names = []
        if self.m3:
            names.append("M3")
        if self.readout:
            names.append("TREX")
        if self.zne:
            factors = ",".join(str(f) for f in ZNE_NOISE_FACTORS)
            names += ["gateTwirling", f"ZNE(linear; noise factors {factors})"]
        if self.dynamical_decoupling:
            names.append("dynamicalDecoupling(XX)")
        return names


NO_MITIGATION_IDEAL = MitigationPlan("None", "ideal simulator: no noise to mitigate")


def choose_mitigation(policy: MitigationPolicy, *, ideal: bool, expectation: bool,
                      fits: Callable[[MitigationLevel, float], bool]) -> MitigationPlan:
    """The strongest level the policy allows that ``fits(level, shot multiplier)`` (the
    deadline, the shot budget and, simulated, the run time on this QPU). ``Always`` forces a
    technique whatever it costs; ``Never`` forbids it."""
    if ideal:
        return NO_MITIGATION_IDEAL
    if not policy.enabled:
        return MitigationPlan("None", "the policy disables mitigation (mitigation.enabled: "
                              "false); systematicError comes from the residual-bias model")
    if not expectation:
        if policy.readout == "Never":
            return MitigationPlan("None", "the policy forbids readout mitigation: counts are "
                                  "reported as measured")
        return MitigationPlan("Readout", "counts: M3 readout mitigation with the QPU's readout "
                              "calibration (no extra shots per job)", m3=True)
    dd = policy.dynamical_decoupling == "Always"
    readout_ok = policy.readout != "Never"
    cap = policy.max_shot_multiplier
    notes: list[str] = []
    if policy.zne != "Never":
        zne = MitigationPlan("ZNE", "", readout=readout_ok, zne=True, dynamical_decoupling=dd)
        mult = zne.shot_multiplier
        if policy.zne == "Always":
            return _with_reason(zne, "the policy requires ZNE (mitigation.zne: Always)")
        if mult > cap:
            notes.append(f"ZNE needs {mult:g}x shots, above maxShotMultiplier {cap:g}")
        elif not fits("ZNE", mult):
            notes.append(f"ZNE ({mult:g}x shots, folded circuits) does not fit the deadline, "
                         "the shot budget or the run time")
        else:
            return _with_reason(zne, f"ZNE fits: {mult:g}x shots within maxShotMultiplier "
                                f"{cap:g}, the deadline and the shot budget")
    else:
        notes.append("the policy forbids ZNE")
    if readout_ok:
        trex = MitigationPlan("Readout", "", readout=True, dynamical_decoupling=dd)
        mult = trex.shot_multiplier
        if policy.readout == "Always" or (mult <= cap and fits("Readout", mult)):
            return _with_reason(trex, "; ".join([*notes, f"readout mitigation (TREX, "
                                                      f"{mult:g}x shots)"]))
        notes.append(f"TREX ({mult:g}x shots) does not fit")
    else:
        notes.append("the policy forbids readout mitigation")
    return MitigationPlan("None", "; ".join([*notes, "unmitigated; systematicError comes "
                                                  "from the residual-bias model"]),
                          dynamical_decoupling=dd)


def _with_reason(plan: MitigationPlan, reason: str) -> MitigationPlan:
    return replace(plan, reason=reason)
