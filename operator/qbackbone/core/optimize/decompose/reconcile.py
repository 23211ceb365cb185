"""The classical coordinator's reconciliation of regional proposals made in parallel.

Every block proposes changes (paths; admissions) against the same state (the units of the
other regions fixed). Applied together they can collide on shared resources (links; PoP and
link capacities), so the coordinator keeps the better of (a) all proposals merged and (b)
proposals accepted one at a time, best first, each only when it still improves the whole
state. Resources that the merge overloads get a capacity price for the next round: reserved
capacity every region sees as used (a subgradient step on the violated shared capacity),
halved where the collision is gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qbackbone.core.optimize.decompose.base import Decomposable, Key, Score, State, apply

PRICE_STEP = 0.5  # of the overload, reserved on a contested link for the next round
PRICE_DECAY = 0.5


@dataclass(frozen=True)
class Proposal:
    """One block's answer: the path changes it asks for, and their effect on their own."""

    index: int  # sub-problem number in the round
    moves: dict[int, int]
    alone: Score  # whole-problem score of the routing with only these moves


@dataclass
class Reconciled:
    """The routing after a round, and what reconciling cost or saved."""

    routing: State
    score: Score
    merged: Score  # all proposals applied at once
    accepted: list[int] = field(default_factory=list)  # proposal indices kept
    rejected: list[int] = field(default_factory=list)
    strategy: str = "none"  # "merged", "greedy" or "none" (nothing improved)


def propose(whole: Decomposable, routing: State, index: int,
            moves: dict[int, int]) -> Proposal:
    """A proposal with its stand-alone score."""
    return Proposal(index, moves, whole.score(apply(routing, moves)))


def reconcile(whole: Decomposable, routing: State,
              proposals: Sequence[Proposal]) -> Reconciled:
    """The better of merging every proposal and accepting them greedily."""
    base = whole.score(routing)
    useful = [p for p in proposals if p.moves]
    merged_moves: dict[int, int] = {}
    for p in useful:
        merged_moves.update(p.moves)
    merged_routing = apply(routing, merged_moves)
    merged = whole.score(merged_routing)
    greedy, current, accepted = list(routing), base, []
    for p in sorted(useful, key=lambda p: p.alone):
        if p.alone >= base:
            continue
        trial = apply(greedy, p.moves)
        trial_score = whole.score(trial)
        if trial_score < current:
            greedy, current = trial, trial_score
            accepted.append(p.index)
    if merged < current and merged < base:
        return Reconciled(merged_routing, merged, merged, [p.index for p in useful], [],
                          "merged")
    if current < base:
        return Reconciled(greedy, current, merged, accepted,
                          [p.index for p in useful if p.index not in accepted], "greedy")
    return Reconciled(list(routing), base, merged, [], [p.index for p in useful], "none")


def update_prices(whole: Decomposable, routing: State, proposals: Sequence[Proposal],
                  prices: Mapping[Key, float]) -> dict[Key, float]:
    """Reserve capacity on resources the merged proposals overload; decay the others."""
    merged: dict[int, int] = {}
    for p in proposals:
        merged.update(p.moves)
    load = whole.loads(apply(routing, merged))
    out: dict[Key, float] = {}
    for e in set(load) | set(prices):
        over = load.get(e, 0.0) - whole.capacity(e)
        value = (prices.get(e, 0.0) + PRICE_STEP * over if over > 1e-9
                 else PRICE_DECAY * prices.get(e, 0.0))
        if value > 1e-6:
            out[e] = value
    return out
