"""Water-filling: an integer split of one subcircuit's shots over QPUs that finishes first."""

from __future__ import annotations

import math
from collections.abc import Sequence

_INF = float("inf")


def waterfill(
    shots: int, avail: Sequence[float], rate: Sequence[float], min_time: Sequence[float]
) -> list[int]:
    """Integer split of ``shots`` minimising the latest finish, QPU k free for shots from
    ``avail[k]`` (its start plus setup) at ``rate[k]`` seconds per shot. QPUs join in order of
    ``avail``; one joins only while its share of the time would be at least ``min_time[k]``."""
    k = len(avail)
    if k == 1:
        return [shots]
    order = sorted(range(k), key=avail.__getitem__)
    inv = 0.0
    weighted = 0.0
    finish = _INF
    used = 0
    for pos, q in enumerate(order):
        a = avail[q]
        if pos and finish <= a:
            break
        new_inv = inv + 1.0 / rate[q]
        new_weighted = weighted + a / rate[q]
        new_finish = (shots + new_weighted) / new_inv
        if pos and new_finish - a < min_time[q]:
            break
        inv, weighted, finish, used = new_inv, new_weighted, new_finish, pos + 1
    n = [0] * k
    if used == 1:
        n[order[0]] = shots
        return n
    active = order[:used]
    total = 0
    for q in active:
        v = max(0, math.floor((finish - avail[q]) / rate[q] + 1e-9))
        n[q] = v
        total += v
    while total > shots:  # rounding noise: take back from the latest finisher
        q = max((i for i in active if n[i]), key=lambda i: avail[i] + n[i] * rate[i])
        n[q] -= 1
        total -= 1
    while total < shots:  # the few leftover shots go where they finish first
        q = min(active, key=lambda i: avail[i] + (n[i] + 1) * rate[i])
        n[q] += 1
        total += 1
    return n


def waterfill_capped(
    shots: int,
    avail: Sequence[float],
    rate: Sequence[float],
    min_time: Sequence[float],
    cap: Sequence[float],
) -> list[int] | None:
    """:func:`waterfill` where QPU k takes at most ``cap[k]`` shots: a QPU whose share would
    exceed its cap is filled to the cap (or left out when the cap is below ``min_time``) and
    the rest is water-filled over the others. ``None`` if the caps cannot hold every shot."""
    k = len(avail)
    n = [0] * k
    pool = list(range(k))
    left = shots
    while left > 0:
        if not pool:
            return None
        part = waterfill(left, [avail[i] for i in pool], [rate[i] for i in pool],
                         [min_time[i] for i in pool])
        over = [i for i, v in zip(pool, part, strict=True) if v > cap[i]]
        if not over:
            for i, v in zip(pool, part, strict=True):
                n[i] += v
            return n
        for i in over:
            take = int(cap[i])
            if take > 0 and take * rate[i] >= min_time[i]:
                n[i] = take
                left -= take
            pool.remove(i)
    return n
