"""Power models: what a QPU draws while busy and idle, and what a classical path draws.

A job on a QPU is charged for the time it holds the machine (setup plus shots, as the time
model says): the cryostat's power (it runs day and night, and the job has the whole machine
while it runs), the control electronics' busy power, and an energy per shot. Idle power is
what the fleet draws between jobs (``PowerModel.idle_watts``), reported, not charged to a job.
A classical path is charged CPU seconds times the power of one core.

Defaults per technology (order-of-magnitude figures for planning, overridable per QPUNode in
``spec.energy``):

* superconducting: 25 kW of cooling, the figure published for a dilution-refrigerator system
  (D-Wave 2X: "slightly less than 25 kilowatts", mostly refrigeration; IEEE Spectrum, "How
  Much Power Will Quantum Computing Need?", 2015), in line with the ~25 kW of the cryogenic
  plant in Martin et al., "Energy Use in Quantum Data Centers", IEEE Trans. Sustainable
  Computing 2022 (arXiv:2103.16726), and with Krinner et al., EPJ Quantum Technology 6, 2
  (2019) for the heat budget of 100-qubit wiring. Room-temperature control (AWGs, amplifiers,
  FPGAs) grows with qubits: 3 kW busy, 1 kW idle for a ~100-qubit rack (Fellous-Asiani et
  al., "Optimizing resource efficiencies for scalable full-stack quantum computers", PRX
  Quantum 4, 040319, 2023). 1 mJ per shot for readout digitisation and classical processing.
* trappedIon: no dilution refrigerator; vacuum, a 4 K cryocooler or none, lasers and
  detection: 3 kW always on, 4 kW busy, 1.5 kW idle, 10 mJ per shot (cooling, state
  preparation and fluorescence detection per shot), after the subsystem breakdown of
  "Energetics of Trapped-Ion Quantum Computation" (arXiv:2404.11572, 2024).
* simulator: no cryostat; the CPU running it, ``CLASSICAL_WATTS_PER_CORE`` for one core.

``CLASSICAL_WATTS_PER_CORE`` = 10 W: a two-socket server draws ~300 W at full load over
~32 cores (SPECpower_ssj2008 results; Barroso, Hoelzle, Ranganathan, "The Datacenter as a
Computer", 3rd ed., 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

from qbackbone.api.qpunode import EnergyModel, Technology

CLASSICAL_WATTS_PER_CORE = 10.0


@dataclass(frozen=True)
class PowerModel:
    """Power of one QPU: always-on cooling, control busy and idle, and energy per shot."""

    technology: Technology
    cryostat_watts: float
    control_busy_watts: float
    control_idle_watts: float
    joules_per_shot: float

    @property
    def busy_watts(self) -> float:
        """Power while a fragment runs (cooling included)."""
        return self.cryostat_watts + self.control_busy_watts

    @property
    def idle_watts(self) -> float:
        """Power while no fragment runs (cooling included)."""
        return self.cryostat_watts + self.control_idle_watts

    def joules(self, busy_seconds: float, shots: float) -> float:
        """Energy charged to work that holds the QPU ``busy_seconds`` and runs ``shots``."""
        return self.busy_watts * max(busy_seconds, 0.0) + self.joules_per_shot * max(shots, 0.0)


TECHNOLOGY_DEFAULTS: dict[Technology, PowerModel] = {
    "superconducting": PowerModel("superconducting", 25_000.0, 3_000.0, 1_000.0, 1e-3),
    "trappedIon": PowerModel("trappedIon", 3_000.0, 4_000.0, 1_500.0, 1e-2),
    "simulator": PowerModel("simulator", 0.0, CLASSICAL_WATTS_PER_CORE, 0.0, 0.0),
}


def power_model(ideal: bool, spec: EnergyModel | None = None) -> PowerModel:
    """The QPU's power model: the technology's defaults (simulator for ideal simulators,
    superconducting otherwise, unless ``spec.technology`` says), with ``spec``'s overrides."""
    technology: Technology = "simulator" if ideal else "superconducting"
    if spec is not None and spec.technology is not None:
        technology = spec.technology
    base = TECHNOLOGY_DEFAULTS[technology]
    if spec is None:
        return base
    def pick(given: float | None, default: float) -> float:
        return default if given is None else given

    return PowerModel(technology, pick(spec.cryostat_watts, base.cryostat_watts),
                      pick(spec.control_busy_watts, base.control_busy_watts),
                      pick(spec.control_idle_watts, base.control_idle_watts),
                      pick(spec.joules_per_shot, base.joules_per_shot))


def classical_joules(cpu_seconds: float, cores: int = 1,
                     watts_per_core: float = CLASSICAL_WATTS_PER_CORE) -> float:
    """Energy of a classical path: CPU seconds on ``cores`` cores times their power."""
    return max(cpu_seconds, 0.0) * cores * watts_per_core
