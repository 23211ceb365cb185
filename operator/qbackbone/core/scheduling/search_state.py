"""The annealer's search state: a job order, excluded jobs, per-subcircuit QPU choices and cut
variants, decoded incrementally (timelines cached before every position of the order), and its
energy. Starts that several component searches share are decoded once (``memo``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .engine import Busy
from .model import Schedule
from .placement import Choice, Compiled, JobData, Placed
from .timing import TIME_EPS, on_time

_INF = float("inf")
#: Fixed work of placing one job, beside one unit per eligible QPU per subcircuit.
PLACE_COST = 15

Result = tuple[list[Placed], float] | None


def place_costs(c: Compiled) -> list[int]:
    """Work units of placing each job of ``c`` once."""
    return [PLACE_COST + sum(len(e) for e in jd.eligible) for jd in c.jobs]


def decode_work(c: Compiled) -> int:
    """Work units of decoding every job of ``c`` once."""
    return sum(place_costs(c))


class SearchState:
    """Incremental decoding: timelines are cached before every position of the order."""

    def __init__(
        self,
        c: Compiled,
        alt: Compiled | None,
        split: bool,
        order: list[int],
        choices: list[list[Choice]] | None = None,
        flip: bool = False,
        memo: dict[Any, Any] | None = None,
    ) -> None:
        self.c = c
        self.variants = (c, alt or c)
        self.flippable = [
            alt is not None and not jd.committed and job != alt.problem.jobs[jd.index]
            for jd, job in zip(c.jobs, c.problem.jobs, strict=True)
        ]
        self.flip = [flip and f for f in self.flippable]
        self.split = split
        self.order = order
        self.pos = [0] * len(c.jobs)
        for i, j in enumerate(order):
            self.pos[j] = i
        self.excluded = [False] * len(c.jobs)
        self.work = 0
        self.cost = place_costs(c)
        self.limit = [jd.deadline + TIME_EPS for jd in c.jobs]  # on time: finish <= limit
        self.deadline = [jd.deadline for jd in c.jobs]
        self.window = [max(jd.deadline - jd.release, 1e-9) for jd in c.jobs]
        self.committed = [jd.committed for jd in c.jobs]
        self.choices: list[list[Choice]] = choices or [[None] * len(jd.topo) for jd in c.jobs]
        self.snaps: list[Busy] = [c.fresh()]
        self.res: list[Result] = []
        key = (id(c), id(alt), split, flip, tuple(order),
               None if choices is None else tuple(map(tuple, choices)))
        if memo is not None and key in memo:  # decoded by another component: same state
            self.snaps, self.res = list(memo[key][0]), list(memo[key][1])
            return
        busy = c.fresh()
        for j in order:
            trial = busy.copy()
            frags, finish = self.place(trial, j)
            if is_kept(c.jobs[j], finish):
                busy = trial
            self.res.append((frags, finish))
            self.snaps.append(busy)
        if memo is not None:
            memo[key] = (list(self.snaps), list(self.res))

    def place(self, busy: Busy, j: int) -> tuple[list[Placed], float]:
        """Place job ``j`` in the cut variant the state gives it (``busy`` modified)."""
        return self.variants[self.flip[j]].place(busy, j, self.choices[j], self.split)

    def decode_from(
        self, p: int, order: Sequence[int], excluded: Sequence[bool], last: int
    ) -> tuple[list[Busy], list[tuple[list[Placed], float] | None]]:
        """Timelines and results for positions >= p after a move that changed positions
        p..last. The cached prefix is reused; after ``last``, a job released after every
        time where the new timelines differ from the cached ones (``horizon``) sees the same
        free time, so its cached placement is reused instead of recomputed."""
        c = self.c
        snaps = self.snaps[: p + 1]
        res = self.res[:p]
        busy = snaps[p]
        old_res, old_pos, old_snaps = self.res, self.pos, self.snaps
        horizon = -_INF
        for k in range(p, last + 1):
            r = old_res[k]
            if r is not None and is_kept(c.jobs[self.order[k]], r[1]):
                horizon = max(horizon, r[1])
        for k in range(p, len(order)):
            j = order[k]
            jd = c.jobs[j]
            old = old_res[old_pos[j]]
            new: tuple[list[Placed], float] | None
            if excluded[j]:
                new = None
            elif k > last and jd.release >= horizon and old is not None:
                new = old
                if is_kept(jd, old[1]) and old[0]:
                    busy = busy.copy()
                    for _, q, _, st, en in old[0]:
                        busy.insert(q, st, en)
            else:
                trial = busy.copy()
                frags, finish = self.place(trial, j)
                self.work += self.cost[j]
                new = (frags, finish)
                kept = is_kept(jd, finish)
                if kept:
                    busy = trial
                was = old is not None and is_kept(jd, old[1])
                if kept != was or (kept and old is not None and old[0] != frags):
                    if kept:
                        horizon = max(horizon, finish)
                    if was and old is not None:
                        horizon = max(horizon, old[1])
            res.append(new)
            snaps.append(busy)
            if k >= last and busy.same(old_snaps[k + 1]):
                snaps.extend(old_snaps[k + 2 :])
                res.extend(old_res[k + 1 :])
                break
        return snaps, res

    def served(self, res: Sequence[Result]) -> list[bool]:
        out = [False] * len(self.c.jobs)
        limit, committed = self.limit, self.committed
        for j, r in zip(self.order, res, strict=True):
            if r is not None:
                f = r[1]
                out[j] = f <= limit[j] or (committed[j] and f < _INF)
        return out

    def energy(self, order: Sequence[int], res: Sequence[Result]) -> tuple[float, int]:
        """-(jobs served) plus a guide below one job: unserved jobs closer to their deadline
        and served jobs with more slack score better. (:func:`is_kept`, inlined: this runs
        once per move over every job.)"""
        limit, committed, deadline, window = self.limit, self.committed, self.deadline, self.window
        served = 0
        guide = 0.0
        for j, r in zip(order, res, strict=True):
            if r is None:
                guide += 1.0
                continue
            f = r[1]
            if f <= limit[j] or (committed[j] and f < _INF):
                served += 1
                slack = (deadline[j] - f) / window[j]
                guide -= 0.2 * (0.0 if slack <= 0.0 else 1.0 if slack >= 1.0 else slack)
            else:
                late = (f - deadline[j]) / window[j]
                guide += late if late < 1.0 else 1.0
        return -served + 0.5 * guide / max(1, len(order)), served


def used_qpus(st: SearchState) -> list[list[Choice]]:
    """Pin every placed subcircuit to the QPUs it got in ``st`` (same decode, any mode)."""
    out = [list(row) for row in st.choices]
    for j, r in zip(st.order, st.res, strict=True):
        if r is not None:
            for s in {f[0] for f in r[0]}:
                out[j][s] = tuple(sorted({f[1] for f in r[0] if f[0] == s}))
    return out



def warm_state(c: Compiled, plan: Schedule, order: Sequence[int]
               ) -> tuple[list[int], list[list[Choice]]]:
    """A start that follows ``plan``, a previous plan of an overlapping problem (jobs and QPUs
    matched by name; times ignored, they may be from another clock): its jobs in the order of
    their first fragment (committed jobs first), then the others as in ``order``; each of its
    subcircuits pinned to the QPUs it used there that are still eligible."""
    index = {jd.name: jd.index for jd in c.jobs}
    qindex = {q.name: i for i, q in enumerate(c.qpus)}
    first: dict[int, float] = {}
    used: dict[tuple[int, int], set[int]] = {}
    for f in plan.fragments:
        j, q = index.get(f.job), qindex.get(f.qpu)
        if j is None or q is None or not 0 <= f.subcircuit < len(c.jobs[j].eligible):
            continue
        first[j] = min(first.get(j, _INF), f.start)
        used.setdefault((j, f.subcircuit), set()).add(q)
    choices: list[list[Choice]] = [[None] * len(jd.eligible) for jd in c.jobs]
    for (j, s), qs in used.items():
        pinned = tuple(sorted(qs.intersection(c.jobs[j].eligible[s])))
        if pinned:
            choices[j][s] = pinned
    pos = {j: i for i, j in enumerate(order)}
    ordered = sorted(order, key=lambda j: (not c.jobs[j].committed, j not in first,
                                           first.get(j, 0.0), pos[j]))
    return ordered, choices


def is_kept(jd: JobData, finish: float) -> bool:
    """Kept in the plan: on time, or already running (cannot be dropped)."""
    return on_time(finish, jd.deadline) or (jd.committed and finish < _INF)


