"""The final repair of a whole state that still overloads a resource after the rounds.

First the whole problem's greedy repair (moving demands off overloaded links; dropping the
admitted slices that earn least per unit of the overflowing capacity). If a resource is still
overloaded, CP-SAT re-decides the units that could use an overloaded resource with every other
unit fixed (a large-neighbourhood repair on the exact model), and, if that neighbourhood
cannot be made feasible, every unit, within the time left.
"""

from __future__ import annotations

import time

from qbackbone.core.optimize.classical import cp_sat
from qbackbone.core.optimize.decompose.base import Decomposable, Key, State


def overloaded_links(whole: Decomposable, state: State) -> set[Key]:
    """Resources used beyond their capacity (links, for traffic engineering)."""
    return whole.overloaded(state)


def neighbourhood(whole: Decomposable, keys: set[Key]) -> list[int]:
    """Units that may use any of the resources."""
    return whole.neighbourhood(keys)


def cp_sat_reroute(whole: Decomposable, state: State, movable: list[int],
                   time_limit: float) -> State | None:
    """The best state CP-SAT finds changing only `movable` units (None: none feasible)."""
    model, constraints = whole.exact_model()
    fixed = set(range(whole.units)) - set(movable)
    constraints += [whole.fix(d, state[d]) for d in sorted(fixed)]
    found = cp_sat(model, time_limit, constraints=constraints)
    return None if found is None else whole.state_of_model(found.x)


def repair_routing(whole: Decomposable, state: State, time_limit: float) -> tuple[State, str]:
    """A feasible state near `state` (when one is found) and how it was repaired."""
    if not whole.overloaded(state):
        return state, "none"
    start = time.perf_counter()
    unit, resource = whole.nouns
    greedy = whole.decode(whole.problem.repair(whole.encode(state)))
    if greedy is not None and not whole.overloaded(greedy):
        return greedy, "greedy"
    current = greedy if greedy is not None and whole.score(greedy) < whole.score(state) \
        else state
    movable = whole.neighbourhood(whole.overloaded(current))
    found = cp_sat_reroute(whole, current, movable, 0.5 * time_limit)
    if found is not None:
        return found, f"cpSat({len(movable)} {unit}s near overloaded {resource}s)"
    left = time_limit - (time.perf_counter() - start)
    found = cp_sat_reroute(whole, current, list(range(whole.units)), max(left, 0.5))
    if found is not None:
        return found, f"cpSat(every {unit})"
    return current, "failed"
