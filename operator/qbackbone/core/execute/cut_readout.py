"""Readout mitigation of cut fragments: each noisy QPU's counts carry its readout model.

A fragment's circuits have mid-circuit measurements, so M3 (final measurements only) and TREX
(an Estimator option) do not apply; the reconstruction instead corrects every clbit shot by
shot with the QPU's readout calibration (:mod:`qbackbone.core.cutting.readout`), the same
calibration SingleQPU jobs use, measured once per QPU and reused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from qbackbone.api.mitigation import MitigationPolicy, MitigationReport
from qbackbone.core.cutting.readout import ClbitReadout, ReadoutModelError
from qbackbone.core.execute.readout import readout_calibration
from qbackbone.core.mitigation.readout import ReadoutCalibration
from qbackbone.core.qpus.fleet import QPU


def corrects_cut_readout(policy: MitigationPolicy) -> bool:
    """Whether the policy lets cut fragments on noisy QPUs be readout-corrected."""
    return policy.enabled and policy.readout != "Never"


def clbit_readout(clbit_qubits: Mapping[int, int], num_clbits: int,
                  calibration: ReadoutCalibration) -> ClbitReadout:
    """The readout model of a compiled circuit whose clbit i was read from qubit
    ``clbit_qubits[i]`` of the QPU's region."""
    return ClbitReadout.from_flips(calibration.flip_from_0, calibration.flip_from_1,
                                   clbit_qubits, num_clbits)


@dataclass
class CutReadout:
    """The readout models of one cut job's fragments, and what they were built from."""

    policy: MitigationPolicy
    now: datetime
    seed: int | None = None
    used: dict[str, ReadoutCalibration] = field(default_factory=dict)  # QPU -> calibration
    skipped: dict[str, str] = field(default_factory=dict)  # QPU -> why it was not corrected

    def calibration(self, qpu: QPU) -> ReadoutCalibration | None:
        """The QPU's readout calibration when its fragments are corrected, else None."""
        if qpu.descriptor.ideal or not corrects_cut_readout(self.policy):
            return None
        if qpu.name not in self.used:
            self.used[qpu.name] = readout_calibration(
                qpu, self.now, self.policy.readout_calibration_max_age,
                self.policy.readout_calibration_shots, self.seed)
        return self.used[qpu.name]

    def models_of(self, qpu: QPU, measured: Sequence[tuple[int, Mapping[int, int]]]
                  ) -> list[ClbitReadout | None]:
        """Readout models from each circuit's clbit count and clbit -> qubit map; none for a
        QPU whose calibration cannot correct them (the reason goes into the report)."""
        calibration = self.calibration(qpu)
        if calibration is None:
            return [None] * len(measured)
        try:
            return [clbit_readout(m, width, calibration) for width, m in measured]
        except ReadoutModelError as err:
            self.skipped[qpu.name] = str(err)
            return [None] * len(measured)

    def readout_fidelity(self, qpu: QPU, measured: Sequence[tuple[int, Mapping[int, int]]]
                         ) -> float:
        """The calibration's no-flip probability for the worst circuit (1 when uncorrected):
        the part of the estimated fidelity the correction takes back."""
        calibration = self.used.get(qpu.name)
        if calibration is None or qpu.name in self.skipped or not measured:
            return 1.0
        return min(calibration.readout_fidelity(sorted(set(m.values()))) for _, m in measured)

    def report(self, noisy_qpus: Sequence[str], joint_fidelity: float,
               systematic_model: str) -> MitigationReport:
        """The result's mitigation report for the cut job's noisy QPUs."""
        corrected = sorted(set(self.used) - set(self.skipped))
        if not corrected:
            why = ("the policy forbids readout mitigation" if not corrects_cut_readout(
                self.policy) else "; ".join(f"{q}: {w}" for q, w in sorted(
                    self.skipped.items())) or "no noisy QPU ran a fragment")
            return MitigationReport(
                level="None", systematic_model=systematic_model, qpus=list(noisy_qpus),
                reason=f"cut fragments unmitigated: {why}; joint estimated success "
                f"probability {joint_fidelity:.3f}")
        calibrations = "; ".join(
            f"{name}: readout calibration of {cal.taken_at.isoformat()} ({cal.shots} shots per "
            f"preparation; {cal.qpu_calibration})" for name, cal in sorted(self.used.items())
            if name in corrected)
        skipped = "".join(f"; not corrected on {q}: {w}" for q, w in sorted(self.skipped.items()))
        return MitigationReport(
            level="Readout", techniques=["tensoredReadoutInverse"], shot_multiplier=1.0,
            systematic_model=systematic_model, calibration=calibrations,
            qpus=list(noisy_qpus),
            reason="cut fragments have mid-circuit measurements: every clbit is corrected shot "
            "by shot with the QPU's readout calibration (no extra shots; the variance it adds "
            "is in stdError); gate noise is left to the residual-bias model (joint estimated "
            f"success probability without readout {joint_fidelity:.3f}){skipped}")

