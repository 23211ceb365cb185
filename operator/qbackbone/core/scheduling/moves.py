"""The annealer's neighbourhood: one random move of a :class:`.search_state.SearchState`."""

from __future__ import annotations

import random

from .placement import Choice
from .search_state import SearchState

_Move = tuple[int, int, list[int], list[bool], tuple[int, int, Choice] | None]


def propose(st: SearchState, rng: random.Random, lo: int, split: bool) -> _Move | None:
    """One random neighbour: (first position to re-decode, order, excluded, choice change)."""
    order, excl, pos = st.order, st.excluded, st.pos
    served = st.served(st.res)
    movable = order[lo:]
    if not movable:
        return None
    up = [j for j in movable if served[j]]
    down = [j for j in movable if not served[j]]
    r = rng.random()
    new_order = list(order)
    new_excl = list(excl)
    if r < 0.15 and down:  # admit a dropped job: try it earlier in the order
        j = rng.choice(down)
        new_excl[j] = False
        a = pos[j]
        b = rng.randint(lo, a)
        new_order.insert(b, new_order.pop(a))
        return b, a, new_order, new_excl, None
    if r < 0.30 and up and down:  # swap an admitted job for a dropped one
        a_job, d_job = rng.choice(up), rng.choice(down)
        new_excl[a_job], new_excl[d_job] = True, False
        a, b = pos[a_job], pos[d_job]
        new_order[a], new_order[b] = d_job, a_job
        return min(a, b), max(a, b), new_order, new_excl, None
    if r < 0.35 and up:  # drop an admitted job
        j = rng.choice(up)
        new_excl[j] = True
        return pos[j], pos[j], new_order, new_excl, None
    if r < 0.40:  # re-cut a job: LOCC with precedence <-> LO without (more shots)
        cands = [j for j in movable if st.flippable[j] and not excl[j]]
        if cands:
            j = rng.choice(cands)
            return pos[j], pos[j], new_order, new_excl, (j, -1, None)
    if r < 0.68:  # move shots: change the QPUs of one subcircuit
        tried = [j for j in movable if not excl[j]]
        j = rng.choice(tried or movable)
        jd = st.c.jobs[j]
        subs = [s for s in jd.topo if len(jd.eligible[s]) > 1 and jd.remaining[s]]
        if subs:
            s = rng.choice(subs)
            elig = jd.eligible[s]
            auto = st.choices[j][s] is None
            cur = st.choices[j][s] or (elig if split else ())
            u = rng.random()
            if not split:
                ch: Choice = (rng.choice([q for q in elig if (q,) != cur]),)
            elif u < 0.1:  # back to the automatic split (or forced onto every eligible QPU)
                ch = elig if auto else None
            elif len(cur) > 1 and (len(cur) == len(elig) or u < 0.55):
                drop = rng.choice(cur)
                ch = tuple(q for q in cur if q != drop)
            else:
                ch = tuple(sorted((*cur, rng.choice([q for q in elig if q not in cur]))))
            return pos[j], pos[j], new_order, new_excl, (j, s, ch)
    # move a job in the order (changes start times)
    a = rng.randrange(lo, len(order))
    if rng.random() < 0.5:
        b = min(len(order) - 1, max(lo, a + rng.choice((-3, -2, -1, 1, 2, 3))))
    else:
        b = rng.randrange(lo, len(order))
    if a == b:
        return None
    new_order.insert(b, new_order.pop(a))
    return min(a, b), max(a, b), new_order, new_excl, None
