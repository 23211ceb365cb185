"""Where a SingleQPU job's shots go: fidelity weighed against time, recorded as rules.

The most faithful QPU that meets the deadline alone takes every shot. Shots are split only
when no single QPU meets the deadline (``shotSplitting: WhenDeadlineNeeds``), and then only
over QPUs of one noise class (ideal or noisy, estimated fidelities within the policy's gap),
or over every QPU when the policy says ``Always``. Ideal simulators join the candidates only
as ``hardware.idealSimulators`` allows (``simulator_pools``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from qbackbone.api.policy import IdealSimulators, ShotSplitting
from qbackbone.api.quantumjob import RuleOutcome
from qbackbone.core.execute.shots import ShotShare, finish_time, split_shots
from qbackbone.core.qpus.descriptor import QPUDescriptor


@dataclass(frozen=True)
class Candidate:
    """An eligible QPU as placement sees it: its time model (mitigation included) and the
    estimated fidelity of the job's circuit on it (1 on an ideal simulator)."""

    descriptor: QPUDescriptor
    fidelity: float

    @property
    def name(self) -> str:
        """The QPU's name."""
        return self.descriptor.name

    @property
    def ideal(self) -> bool:
        """Whether it is an ideal (noise-free) simulator."""
        return self.descriptor.ideal


@dataclass(frozen=True)
class Demand:
    """What placement needs of the job and its policy."""

    shots: int  # per measured basis
    bases: int
    deadline: float | None  # seconds the QPUs may take (deadline minus slack); None: none
    splitting: ShotSplitting
    gap: float  # largest fidelity difference within one noise class


@dataclass
class Placement:
    """The shares, whether they finish in time, the QPUs that could stand in for each other
    (the decision's eligible QPUs) and one sentence saying why."""

    shares: list[ShotShare]
    in_time: bool
    why: str
    peers: list[str] = field(default_factory=list)

    @property
    def makespan(self) -> float:
        """When the last share ends."""
        return max(s.end for s in self.shares)


def same_class(a: Candidate, b: Candidate, gap: float) -> bool:
    """Both ideal or both noisy, with estimated fidelities within ``gap``."""
    return a.ideal == b.ideal and abs(a.fidelity - b.fidelity) <= gap + 1e-12


def preference(candidates: Sequence[Candidate], job: Demand) -> list[Candidate]:
    """Most faithful first; then the one that finishes first alone; then by name."""
    return sorted(candidates, key=lambda c: (-c.fidelity, _alone(c, job), c.name))


def _alone(c: Candidate, job: Demand) -> float:
    return finish_time(c.descriptor, job.shots, job.bases)


def _fits(seconds: float, job: Demand) -> bool:
    return job.deadline is None or seconds <= job.deadline


def _whole(c: Candidate, job: Demand) -> ShotShare:
    return ShotShare(c.name, job.shots, 0.0, _alone(c, job))


def _fid(c: Candidate) -> str:
    return "ideal simulator" if c.ideal else f"estimated fidelity {c.fidelity:.3g}"


def place(candidates: Sequence[Candidate], job: Demand) -> Placement:
    """The placement the policy asks for over ``candidates`` (not empty)."""
    order = preference(candidates, job)
    if job.splitting == "Always" and len(order) > 1:
        shares = split_shots(job.shots, [c.descriptor for c in order], True, job.bases)
        end = max(s.end for s in shares)
        return Placement(shares, _fits(end, job), "shotSplitting Always: shots split by speed "
                         f"over {', '.join(s.qpu for s in shares)}", [s.qpu for s in shares])
    on_time = [c for c in order if _fits(_alone(c, job), job)]
    if on_time:
        best = on_time[0]
        peers = [c.name for c in on_time if same_class(c, best, job.gap)]
        head = f"{best.name} ({_fid(best)})"
        if job.deadline is None:
            why = (f"{head} is the most faithful of {len(order)} candidate QPUs; no "
                   "deadline, so no shot split" if len(order) > 1
                   else f"{head} is the only candidate QPU; no deadline")
        else:
            why = (f"{head} is the most faithful of the {len(on_time)} of {len(order)} "
                   f"candidate QPU(s) that meet the deadline alone ({_alone(best, job):.2f}s of "
                   f"{job.deadline:.2f}s), so no shot split")
        return Placement([_whole(best, job)], True, why, peers)
    fastest = min(order, key=lambda c: (_alone(c, job), c.name))
    late = (f"no single QPU meets the deadline (fastest alone: {fastest.name}, "
            f"{_alone(fastest, job):.2f}s of {job.deadline or 0.0:.2f}s)")
    if job.splitting == "Never":
        return Placement([_whole(fastest, job)], False, f"{late} and shotSplitting is Never",
                         [fastest.name])
    best_split: tuple[float, list[ShotShare], list[Candidate]] | None = None
    for leader in order:  # noise classes, the most faithful first
        group = [c for c in order if same_class(c, leader, job.gap)
                 and c.fidelity <= leader.fidelity + 1e-12]
        if len(group) < 2:
            continue
        shares = split_shots(job.shots, [c.descriptor for c in group], True, job.bases)
        end = max(s.end for s in shares)
        if _fits(end, job):
            names = ", ".join(s.qpu for s in shares)
            return Placement(shares, True, f"{late}: shots split over {names} (one noise class, "
                             f"estimated fidelities within {job.gap:g}), ending at {end:.2f}s",
                             [c.name for c in group])
        if best_split is None or end < best_split[0]:
            best_split = (end, shares, group)
    if best_split is not None and best_split[0] < _alone(fastest, job):
        end, shares, group = best_split
        return Placement(shares, False, f"{late}, and split over one noise class the QPUs "
                         f"still need {end:.2f}s", [c.name for c in group])
    return Placement([_whole(fastest, job)], False, late, [fastest.name])


def simulator_pools(candidates: Sequence[Candidate], rule: IdealSimulators,
                    ) -> list[tuple[list[Candidate], str]]:
    """The candidate sets to try in turn (none when ``candidates`` is empty), each with why it
    is tried: the noisy QPUs first, the ideal simulators only as ``rule`` allows."""
    noisy = [c for c in candidates if not c.ideal]
    ideal = [c for c in candidates if c.ideal]
    if rule == "Allowed" or not ideal:
        return [(list(candidates), "")] if candidates else []
    if rule == "Forbidden":
        return [(noisy, "")] if noisy else []
    pools = [(noisy, "")] if noisy else []
    why = ("no noisy QPU meets the deadline" if noisy else "no noisy QPU is eligible")
    return [*pools, (ideal, why)]


def record_simulator_rules(rules: list[RuleOutcome], candidates: Sequence[Candidate],
                           rule: IdealSimulators, used_pool: Sequence[Candidate]) -> None:
    """One ``idealSimulator`` rule per eligible ideal simulator: may it run the job?"""
    used = {c.name for c in used_pool}
    threshold = {"Fallback": "only when no noisy QPU can run the job in time",
                 "Allowed": "competes with noisy QPUs", "Forbidden": "never"}[rule]
    for c in candidates:
        if c.ideal:
            rules.append(RuleOutcome(name="idealSimulator", value=f"hardware.idealSimulators "
                                     f"{rule}", threshold=threshold, passed=c.name in used,
                                     qpu=c.name))


def record_placement_rules(rules: list[RuleOutcome], pool: Sequence[Candidate],
                           placement: Placement, job: Demand, final: bool = True) -> None:
    """One ``placement`` rule per candidate: its fidelity and time alone, and whether it got
    shots; then the job's ``shotSplitting`` rule. A placement that was not ``final`` (the
    noisy QPUs, too late, before an ideal simulator took the job) used no QPU."""
    used = {s.qpu for s in placement.shares} if final else set()
    criterion = ("most faithful" if job.deadline is None
                 else f"most faithful within {job.deadline:.2f}s")
    for c in preference(pool, job):
        rules.append(RuleOutcome(
            name="placement", value=f"{_fid(c)}, {_alone(c, job):.2f}s alone",
            threshold=criterion, passed=c.name in used, qpu=c.name))
    if final:
        rules.append(RuleOutcome(name="shotSplitting",
                                 value=f"{len(placement.shares)} QPU(s)",
                                 threshold=job.splitting, passed=True))
