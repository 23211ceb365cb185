"""The decomposition loop: regional sub-QUBOs solved in rounds, reconciled, then repaired.

Round k: every region is split into blocks that fit a QPU; each block is solved (QAOA on a
QPU or classically, by the BlockSolver the caller gives) against the state of round k-1,
so blocks are independent and may run in parallel; the coordinator reconciles the proposals
(reconcile.py) and prices contested resources. Rounds stop when one no longer improves the
whole state, after `iterations`, or when the time budget is spent. A final repair and local
search on the whole problem make the decision feasible; their effect is reported. The loop
is the same for every kind of problem (base.Decomposable: traffic engineering, slice
admission).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from qbackbone.core.optimize.decompose.base import Decomposable, Key, Score, State, SubProblem
from qbackbone.core.optimize.decompose.reconcile import (
    Proposal,
    propose,
    reconcile,
    update_prices,
)
from qbackbone.core.optimize.decompose.regions import Region
from qbackbone.core.optimize.decompose.repair import repair_routing


@dataclass(frozen=True)
class BlockResult:
    """How one sub-problem was solved."""

    x: np.ndarray  # the sub-problem's refined assignment
    solver: str  # qaoa, bruteForce, cpSat, simulatedAnnealing
    path: str  # SingleQPU or Classical
    qpu: str | None = None
    backend: str | None = None
    method: str = ""
    shots: int = 0
    noisy: bool = False
    mitigation: str | None = None
    feasible_before_repair: float | None = None
    note: str = ""


class BlockSolver(Protocol):
    """Solves one sub-problem (the pipeline's: through the QIP to a QPU, or classically)."""

    def __call__(self, sub: SubProblem, region: Region, seed: int) -> BlockResult: ...


@dataclass(frozen=True)
class SolvedBlock:
    """A sub-problem of a round and how it went."""

    round: int
    region: int
    block: int
    demands: int
    variables: int
    result: BlockResult
    seconds: float
    moves: int


@dataclass(frozen=True)
class RoundRecord:
    """One coordinator round."""

    index: int
    subproblems: int
    before: Score
    merged: Score  # every proposal applied at once
    after: Score
    strategy: str
    accepted: int
    rejected: int
    priced_links: int
    seconds: float


@dataclass
class Decomposition:
    """The outcome: the routing, the regions, every round and block, and the final repair."""

    routing: State  # the final state (paths; admissions)
    x: np.ndarray
    regions: list[Region]
    homes: list[int]
    initial: Score
    rounds: list[RoundRecord] = field(default_factory=list)
    blocks: list[SolvedBlock] = field(default_factory=list)
    stop: str = ""
    before_repair: Score = (0.0, 0.0)
    after_repair: Score = (0.0, 0.0)
    repair: str = "none"  # none, greedy, cpSat(...) or failed
    final: Score = (0.0, 0.0)
    seconds: float = 0.0


@dataclass(frozen=True)
class Settings:
    """What the policy's decomposition section says, resolved."""

    width: int
    iterations: int
    time_budget: float
    seed: int = 0
    parallel: int = 1  # blocks solved at once (threads)
    polish: bool = True  # whole-problem local search after the repair
    tolerance: float = 1e-3  # a feasible round gaining less (relative congestion) ends it
    repair_seconds: float = 10.0  # CP-SAT time for the final repair, when it is needed


def initial_routing(whole: Decomposable) -> State:
    """The state without optimisation: every demand on its shortest candidate path, no
    slice admitted."""
    return whole.initial()


def _round_blocks(whole: Decomposable, regions: Sequence[Region], homes: Sequence[int],
                  routing: State, prices: dict[Key, float], width: int,
                  active: set[int]) -> list[SubProblem]:
    subs = []
    for r in range(len(regions)):
        members = [d for d, h in enumerate(homes) if h == r and d in active]
        for b, demands in enumerate(whole.blocks(members, routing, prices, width)):
            subs.append(whole.subproblem(r, b, demands, routing, prices, width))
    return subs


def decompose_and_solve(whole: Decomposable, regions: list[Region], solver: BlockSolver,
                        settings: Settings,
                        progress: Callable[[str], None] | None = None) -> Decomposition:
    """Rounds of regional solves and reconciliation, then the final repair."""
    start = time.perf_counter()
    say = progress or (lambda _: None)
    homes = whole.homes(regions)
    routing = initial_routing(whole)
    outcome = Decomposition(routing, whole.encode(routing), regions, homes,
                            whole.score(routing))
    prices: dict[Key, float] = {}
    outcome.stop = "iterations"
    stale = 0  # rounds in a row that did not improve
    active = set(range(whole.units))  # units whose surroundings changed: solved again
    for index in range(settings.iterations):
        if time.perf_counter() - start > settings.time_budget:
            outcome.stop = "timeBudget"
            break
        began = time.perf_counter()
        before = whole.score(routing)
        subs = [s for s in _round_blocks(whole, regions, homes, routing, prices, settings.width,
                                         active)
                if s.problem.qubo.size]  # a block whose units have no choice left
        if not subs:
            outcome.stop = "converged"
            break

        def solve(k: int, subs: list[SubProblem] = subs,
                  base: int = settings.seed + 1000 * index) -> tuple[BlockResult, float]:
            t0 = time.perf_counter()
            sub = subs[k]
            result = solver(sub, regions[sub.region], base + k)
            return result, time.perf_counter() - t0

        if settings.parallel > 1:
            with ThreadPoolExecutor(settings.parallel) as pool:
                solved = list(pool.map(solve, range(len(subs))))
        else:
            solved = [solve(k) for k in range(len(subs))]
        proposals: list[Proposal] = []
        for k, (sub, (result, seconds)) in enumerate(zip(subs, solved, strict=True)):
            moves = sub.moves(whole, result.x, routing)
            proposals.append(propose(whole, routing, k, moves))
            outcome.blocks.append(SolvedBlock(index, sub.region, sub.block, len(sub.demands),
                                              sub.variables, result, round(seconds, 4),
                                              len(moves)))
        reconciled = reconcile(whole, routing, proposals)
        prices = update_prices(whole, routing, proposals, prices)
        active = _active(whole, routing, reconciled.routing, proposals, reconciled.rejected,
                         subs, prices)
        routing = reconciled.routing
        outcome.rounds.append(RoundRecord(
            index, len(subs), before, reconciled.merged, reconciled.score,
            reconciled.strategy, len(reconciled.accepted), len(reconciled.rejected),
            len(prices), round(time.perf_counter() - began, 4)))
        say(f"round {index + 1}: {len(subs)} sub-QUBOs, overload {before[0]:.6g} -> "
            f"{reconciled.score[0]:.6g}, objective {before[1]:.6g} -> "
            f"{reconciled.score[1]:.6g} ({reconciled.strategy}: {len(reconciled.accepted)} "
            f"accepted, {len(reconciled.rejected)} rejected; merged all: "
            f"{reconciled.merged[1]:.6g}{' OVERLOADED' if reconciled.merged[0] > 0 else ''})")
        gain = (before[1] - reconciled.score[1]) / max(abs(before[1]), 1e-12)
        if before[0] <= 0 and reconciled.strategy != "none" and gain < settings.tolerance:
            outcome.stop = "converged"  # still feasible, and the round gained too little
            break
        stale = stale + 1 if reconciled.strategy == "none" else 0
        if stale and (not prices or stale >= 2):  # prices may still move the next round
            outcome.stop = "converged"
            break
    return _finish(whole, outcome, routing, settings, start)


def _active(whole: Decomposable, before: State, after: State,
            proposals: Sequence[Proposal], rejected: Sequence[int], subs: Sequence[SubProblem],
            prices: dict[Key, float]) -> set[int]:
    """Units worth solving again: those that may use a resource whose load or price changed,
    and those of a proposal that was rejected (they still want to move)."""
    old, new = whole.loads(before), whole.loads(after)
    changed = {e for e in set(old) | set(new)
               if abs(old.get(e, 0.0) - new.get(e, 0.0)) > 1e-9} | set(prices)
    out = {d for p in proposals if p.index in rejected for d in subs[p.index].demands}
    out.update(whole.neighbourhood(changed))
    return out


def _finish(whole: Decomposable, outcome: Decomposition, routing: State,
            settings: Settings, start: float) -> Decomposition:
    """Repair to feasibility (when needed), then local search on the whole problem."""
    outcome.before_repair = whole.score(routing)
    repaired, outcome.repair = repair_routing(whole, routing, settings.repair_seconds)
    x = whole.encode(repaired)
    outcome.after_repair = whole.score(repaired)
    if settings.polish and not whole.problem.violations(x):
        x = whole.problem.improve(x)
    final = whole.decode(x)
    assert final is not None
    outcome.routing, outcome.x, outcome.final = final, x, whole.score(final)
    outcome.seconds = round(time.perf_counter() - start, 4)
    return outcome
