"""The classical coordinator's reconciliation of regional proposals made in parallel.

Every block proposes path changes against the same routing (the border flows of the other
regions fixed). Applied together they can collide on shared links, so the coordinator keeps
the better of (a) all proposals merged and (b) proposals accepted one at a time, best first,
each only when it still improves the whole routing. Links that the merge overloads get a
capacity price for the next round: reserved volume every region sees as background load (a
subgradient step on the violated shared capacity), halved on links where the collision is gone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qbackbone.core.optimize.decompose.subproblems import Routing, apply, score
from qbackbone.core.optimize.routing import Edge
from qbackbone.core.optimize.traffic import TrafficProblem

PRICE_STEP = 0.5  # of the overload, reserved on a contested link for the next round
PRICE_DECAY = 0.5


@dataclass(frozen=True)
class Proposal:
    """One block's answer: the path changes it asks for, and their effect on their own."""

    index: int  # sub-problem number in the round
    moves: dict[int, int]
    alone: tuple[float, float]  # whole-problem score of the routing with only these moves


@dataclass
class Reconciled:
    """The routing after a round, and what reconciling cost or saved."""

    routing: Routing
    score: tuple[float, float]
    merged: tuple[float, float]  # all proposals applied at once
    accepted: list[int] = field(default_factory=list)  # proposal indices kept
    rejected: list[int] = field(default_factory=list)
    strategy: str = "none"  # "merged", "greedy" or "none" (nothing improved)


def propose(whole: TrafficProblem, routing: Routing, index: int,
            moves: dict[int, int]) -> Proposal:
    """A proposal with its stand-alone score."""
    return Proposal(index, moves, score(whole, apply(routing, moves)))


def reconcile(whole: TrafficProblem, routing: Routing,
              proposals: Sequence[Proposal]) -> Reconciled:
    """The better of merging every proposal and accepting them greedily."""
    base = score(whole, routing)
    useful = [p for p in proposals if p.moves]
    merged_moves: dict[int, int] = {}
    for p in useful:
        merged_moves.update(p.moves)
    merged_routing = apply(routing, merged_moves)
    merged = score(whole, merged_routing)
    greedy, current, accepted = list(routing), base, []
    for p in sorted(useful, key=lambda p: p.alone):
        if p.alone >= base:
            continue
        trial = apply(greedy, p.moves)
        trial_score = score(whole, trial)
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


def update_prices(whole: TrafficProblem, routing: Routing, proposals: Sequence[Proposal],
                  prices: Mapping[Edge, float]) -> dict[Edge, float]:
    """Reserve volume on links the merged proposals overload; decay the others."""
    merged: dict[int, int] = {}
    for p in proposals:
        merged.update(p.moves)
    load = whole.loads(apply(routing, merged))
    out: dict[Edge, float] = {}
    for e in set(load) | set(prices):
        over = load.get(e, 0.0) - whole.graph.edges[e]["capacity"]
        value = (prices.get(e, 0.0) + PRICE_STEP * over if over > 1e-9
                 else PRICE_DECAY * prices.get(e, 0.0))
        if value > 1e-6:
            out[e] = value
    return out
