"""CP-SAT inside the QB scheduler: on small problems, the exact model hinted with the
heuristics' best plan, within a deterministic effort derived from the heuristics' own work.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from .exact import solve_exact
from .exact_fixed import optional_fragments
from .model import Problem, Schedule
from .validate import validate

if TYPE_CHECKING:
    from .annealing import AnnealingParams

#: CP-SAT inside the QB scheduler (see :func:`anneal`): only on problems whose exact model has
#: at most ``EXACT_MAX_FRAGMENTS`` optional fragments (jobs x cut variants x subcircuits x
#: eligible QPUs; for generated instances about 40-60 at 5 jobs / 3 QPUs, 60-100 at 8/4,
#: 80-115 at 10/4, 100-140 at 12/4, 190 at 15/6, 350 at 20/8), where, hinted with the
#: heuristics' plan, it proved the optimum in 0.02-0.5 s on most instances. Its effort is
#: CP-SAT deterministic time: the work the heuristic searches spent (capped by the budget) /
#: ``EXACT_WORK_PER_DTIME`` x ``EXACT_MAX_FRAGMENTS`` / model size (smaller models get more:
#: 0.36 at 160 fragments, 1.2 at 48, with the default budget; the wall time per deterministic
#: second varied from 0.4 to 4 s), at least ``EXACT_MIN_DTIME``; one worker and a fixed seed,
#: so the result still depends only on the problem and the params. Measured on 20 instances
#: 5x3 with a busy QPU in half of them: every optimum a one-worker CP-SAT proves, 1.5 s mean
#: (up to 4 s where CP-SAT proves nothing); on 8/4: 0.4-2.4 s, 4.6 s where it proves nothing.
EXACT_MAX_FRAGMENTS = 160
EXACT_WORK_PER_DTIME = 700_000
EXACT_MIN_DTIME = 0.05


def exact_size(problem: Problem) -> int | None:
    """Optional fragments of ``problem``'s exact model (``None``: not for CP-SAT: times that
    are not finite, or fixed fragments that name no job, QPU or subcircuit of it). Fragments
    that already run are part of the model but not optional: only the remaining work counts
    (a committed job's shots left, in the cut it runs with)."""
    times = [t for j in problem.jobs for t in (j.arrival, j.deadline)]
    times += [t for f in problem.fixed for t in (f.start, f.end)]
    if not all(math.isfinite(t) for t in (*times, problem.now)):
        return None
    try:
        return optional_fragments(problem)
    except ValueError:
        return None


def exact_step(
    problem: Problem, params: AnnealingParams, best: Schedule, work: float, started: float
) -> tuple[Schedule, dict[str, float]]:
    """CP-SAT on a small problem, hinted with the heuristics' best plan: its plan when it
    serves more jobs (checked by the validator), else the heuristic one. Stats: ``exact``
    (1: CP-SAT ran), ``exact_served``, ``exact_bound``, ``exact_optimal`` (1: proven),
    ``exact_seconds``, ``exact_won`` (1: the answer is CP-SAT's)."""
    # every job with work left has an optional fragment: count them only on small problems
    small = len(problem.jobs) <= EXACT_MAX_FRAGMENTS
    size = exact_size(problem) if small and best.served < len(problem.jobs) else None
    if size is None or size > EXACT_MAX_FRAGMENTS:
        return best, {"exact": 0.0, "exact_won": 0.0}
    cap = params.budget(len(problem.jobs))
    if cap is not None:
        work = min(work, cap)
    # smaller models get more deterministic time per unit of work: it is cheaper there
    dtime = max(EXACT_MIN_DTIME, work / EXACT_WORK_PER_DTIME * EXACT_MAX_FRAGMENTS / max(1, size))
    wall = 60.0  # a safety net only: the deterministic limit ends the search long before
    if params.time_limit is not None:
        wall = max(0.01, params.time_limit - (time.perf_counter() - started))
    res = solve_exact(problem, time_limit=wall, hint=best, workers=1, seed=params.seed,
                      deterministic_limit=dtime)
    stats = {"exact": 1.0, "exact_served": float(res.served), "exact_bound": res.bound,
             "exact_optimal": float(res.status == "OPTIMAL"), "exact_seconds": res.seconds,
             "exact_won": 0.0}
    if (res.schedule is not None and res.served > best.served
            and validate(problem, res.schedule).valid):
        stats["exact_won"] = 1.0
        return replace(res.schedule, stats={**best.stats, "component": -1.0}), stats
    return best, stats
