"""The replay's world: QPUs as their QPUNodes describe them and as they really are, and the
jobs that arrive (issue 20, ``learning_replay.py``).

Three superconducting QPUs of 27 qubits. ``fra`` is the most faithful on paper, but from the
start it runs 2x slower than its QPUNode says (shot and setup time) with three times the
error rates its calibration implies; at job 400 its T1 halves (error rates x5 in all) and
other tenants' work appears in its queue (a wait of mean 3 s before each fragment). ``ams``
and ``lon`` are what their QPUNodes say. Every QPU's real noise relative to the estimate
follows the real simulator runs of ``calibrate.py``: k = ln(p_real) / ln(p_estimated) is
their median for an honest QPU, scattered job by job with their log spread.

Outcomes are simulated from this model (no circuit runs): a fragment takes
wait + setup + shots x shot time (lognormal jitter 8%); a result deviates from exact by
S (1 - p_real) in total variation (S: the distance of the exact distribution from uniform)
plus sampling noise, and verification fails when that exceeds the pipeline's bound,
(1 - p_estimated) + 4 sampling scales (``core/verify/checks.py``: the noise allowance is the
failed-shot share the estimate predicts).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from qbackbone.core.circuits.features import CircuitFeatures
from qbackbone.core.classical.fallback import estimate_seconds
from qbackbone.core.qpus.descriptor import QPUDescriptor

DRIFT_AT = 400  # job index at which fra's T1 halves and queueing appears
CLASSICAL_MAX_QUBITS = 10  # the fallback the replay's jobs have (larger: none in time)


@dataclass(frozen=True)
class Nominal:
    """A QPU as its QPUNode says: time model and error rates behind the estimate."""

    name: str
    shot_time: float
    setup_time: float
    error_2q: float
    error_readout: float

    def descriptor(self) -> QPUDescriptor:
        """The QIP's view (nominal)."""
        return QPUDescriptor(name=self.name, provider="fake", backend_name=f"fake_{self.name}",
                             qubits=27, device_qubits=27, ideal=False,
                             shot_time=self.shot_time, setup_time=self.setup_time,
                             max_depth=400, max_depth_derived=True, calibration=None)

    def estimate(self, job: Job) -> float:
        """The estimated success probability of the job's circuit."""
        return math.exp(-self.error_2q * job.two_qubit_gates
                        - self.error_readout * job.qubits)


FLEET = (Nominal("fra", 250e-6, 1.0, 0.006, 0.012),
         Nominal("ams", 300e-6, 1.0, 0.008, 0.015),
         Nominal("lon", 350e-6, 1.5, 0.009, 0.015))


@dataclass(frozen=True)
class Truth:
    """How a QPU really behaves at one job."""

    time_factor: float
    noise_scale: float  # k: real error rates over the estimate's
    mean_wait: float


@dataclass(frozen=True)
class Scenario:
    """Which QPU departs from its QPUNode and how; the default is the one described above.
    Another (``learning_replay.py --drifted ams --slower 4 ...``) replays a held-out case."""

    qpu: str = "fra"
    slower: float = 2.0  # real shot and setup time over the QPUNode's, from the start
    noisier: float = 3.0  # real error rates over the calibration's, from the start
    drift_at: int = DRIFT_AT  # job index from which the later figures hold
    later_slower: float = 2.0
    later_noisier: float = 5.0
    later_wait: float = 3.0  # mean seconds of other tenants' work before each fragment

    def to_wire(self) -> dict[str, float | int | str]:
        """As the results file records it."""
        return {"qpu": self.qpu, "slower": self.slower, "noisier": self.noisier,
                "driftAt": self.drift_at, "laterSlower": self.later_slower,
                "laterNoisier": self.later_noisier, "laterWaitSeconds": self.later_wait}


DEFAULT = Scenario()


def truth(qpu: str, index: int, k_honest: float, scenario: Scenario = DEFAULT) -> Truth:
    """The real behaviour of ``qpu`` at job ``index``."""
    if qpu != scenario.qpu:
        return Truth(1.0, k_honest, 0.0)
    if index < scenario.drift_at:
        return Truth(scenario.slower, scenario.noisier * k_honest, 0.0)
    return Truth(scenario.later_slower, scenario.later_noisier * k_honest, scenario.later_wait)


@dataclass(frozen=True)
class Job:
    """One generated sampling job."""

    index: int
    arrival: float
    qubits: int
    two_qubit_gates: int
    shots: int
    deadline: float
    spread: float  # S: total variation distance of the exact distribution from uniform

    def features(self) -> CircuitFeatures:
        """What the QIP reads."""
        return CircuitFeatures(qubits=self.qubits, depth=2 * self.two_qubit_gates + 2,
                               two_qubit_depth=max(1, self.two_qubit_gates // 2),
                               two_qubit_gates=self.two_qubit_gates,
                               size=3 * self.two_qubit_gates + self.qubits,
                               measured_bases=1, shots_per_basis=self.shots)

    def classical_seconds(self) -> float | None:
        """The fallback's estimated time (statevector), when the job has one."""
        if self.qubits > CLASSICAL_MAX_QUBITS:
            return None
        return estimate_seconds("statevector", self.qubits, self.features().size, self.shots)


def generate(count: int, seed: int, gap: float = 30.0) -> list[Job]:
    """``count`` jobs arriving every ``gap`` seconds, deadlines 1.3x to 4x what the fastest
    QPU needs on paper (the tight ones are where a 2x slower QPU misses)."""
    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        qubits = rng.randint(4, 20)
        gates = rng.randint(5, 60)
        shots = rng.choice((1000, 2000, 4000, 8000))
        fastest = min(q.setup_time + shots * q.shot_time for q in FLEET)
        jobs.append(Job(i, i * gap, qubits, gates, shots, fastest * rng.uniform(1.3, 4.0),
                        rng.uniform(0.7, 0.95)))
    return jobs


@dataclass(frozen=True)
class ShareOutcome:
    """One QPU's share as it really went."""

    qpu: str
    shots: int
    wait: float
    seconds: float
    success: float  # real success probability of the shots


def run_share(job: Job, qpu: Nominal, shots: int, rng: random.Random, k_honest: float,
              k_spread: float, scenario: Scenario = DEFAULT) -> ShareOutcome:
    """Simulate one share of the job on the QPU."""
    t = truth(qpu.name, job.index, k_honest, scenario)
    wait = rng.expovariate(1.0 / t.mean_wait) if t.mean_wait > 0 else 0.0
    nominal = qpu.setup_time + shots * qpu.shot_time
    seconds = nominal * t.time_factor * math.exp(rng.gauss(0.0, 0.08))
    k = t.noise_scale * math.exp(rng.gauss(0.0, k_spread))
    return ShareOutcome(qpu.name, shots, wait, seconds, qpu.estimate(job) ** k)


def verify(job: Job, shares: list[ShareOutcome], estimated: dict[str, float],
           rng: random.Random) -> tuple[bool, float]:
    """(passed, implied success probability) of the merged result."""
    total = sum(s.shots for s in shares)
    p_real = sum(s.shots * s.success for s in shares) / total
    p_est = sum(s.shots * estimated[s.qpu] for s in shares) / total
    scale = 0.5 * math.sqrt(min(2 ** job.qubits, 16) / total)
    tvd = max(job.spread * (1.0 - p_real) + rng.gauss(0.0, scale), 0.0)
    implied = min(max(1.0 - tvd / job.spread, 0.0), 1.0)
    return tvd <= (1.0 - p_est) + 4.0 * scale, implied
