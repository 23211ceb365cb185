"""An exact reference: the scheduling problem as a CP-SAT model (OR-Tools).

Time is discretised to integer ``unit`` seconds, always conservatively: release times round up,
deadlines round down, setup and per-shot times round up. A CP-SAT solution therefore maps to a
schedule that is feasible in continuous time (it is checked with the validator by the callers
and the tests), and a proven optimum of the discretised model is a lower bound on the
continuous optimum that is tight up to the rounding (with the default 0.1 us unit, a relative
1e-4 on durations; the generator puts its data on this grid, so there it is exact). As in the
heuristics, a subcircuit has at most one fragment per QPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ortools.sat.python import cp_model

from .canonical import canonical
from .model import Fragment, Problem, Schedule, flip_cut


class ExactResult(NamedTuple):
    schedule: Schedule | None
    status: str  # OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN, MODEL_INVALID
    served: int
    bound: float  # proven upper bound on jobs served
    seconds: float


def solve_exact(
    problem: Problem,
    time_limit: float = 30.0,
    unit: float = 1e-7,
    hint: Schedule | None = None,
    workers: int = 2,
    seed: int = 0,
    recut: bool = True,
    deterministic_limit: float | None = None,
) -> ExactResult:
    """Maximise the jobs served within ``time_limit`` seconds of CP-SAT search. With
    ``recut`` each job with cut wires may run with either cut kind, as in the QB scheduler.
    ``deterministic_limit`` also bounds CP-SAT's deterministic time: with one worker and a
    fixed seed the result then depends only on the problem and the limit (unless the wall
    ``time_limit`` ends the search first). The model is built in the problem's canonical order
    (:func:`.canonical.canonical`), so relabelling QPUs and jobs does not change it."""
    if problem.fixed:
        raise ValueError("the exact model does not take fragments that already run")
    started = time.perf_counter()
    problem = canonical(problem)
    m = cp_model.CpModel()

    def up(t: float) -> int:  # values within float noise of the grid snap to it
        r = t / unit
        return round(r) if abs(r - round(r)) <= 1e-6 else math.ceil(r)

    def down(t: float) -> int:
        r = t / unit
        return round(r) if abs(r - round(r)) <= 1e-6 else math.floor(r)

    setup = [up(q.setup_time) for q in problem.qpus]
    rate = [up(q.shot_time) for q in problem.qpus]
    served: dict[str, Any] = {}
    lo_used: dict[str, Any] = {}
    frag_vars: dict[tuple[int, int, int, int], tuple[Any, Any, Any, Any]] = {}
    by_qpu: list[list[Any]] = [[] for _ in problem.qpus]
    for ji, job in enumerate(problem.jobs):
        x = m.new_bool_var(f"x{ji}")
        served[job.name] = x
        variants = [job]
        if recut and flip_cut(job) != job:
            variants.append(flip_cut(job))
        chosen = [m.new_bool_var(f"z{ji}_{v}") for v in range(len(variants))]
        m.add(sum(chosen) == x)
        if len(variants) > 1:
            lo_used[job.name] = chosen[1]
        dl = down(job.deadline)
        starts: dict[tuple[int, int], list[tuple[Any, Any]]] = {}
        for vi, (var, z) in enumerate(zip(variants, chosen, strict=True)):
            completion = []
            for si, sub in enumerate(var.subcircuits):
                done = m.new_int_var(0, max(0, dl), f"c{ji}_{vi}_{si}")
                completion.append(done)
                counts = []
                present = []
                for qi, q in enumerate(problem.qpus):
                    if not q.can_run(sub) or not math.isfinite(q.available_at):
                        continue
                    rel = up(max(job.arrival, problem.now, q.available_at))
                    if rel > dl:
                        continue
                    key = (ji, vi, si, qi)
                    p = m.new_bool_var(f"p{key}")
                    n = m.new_int_var(0, sub.shots, f"n{key}")
                    st = m.new_int_var(rel, dl, f"s{key}")
                    en = m.new_int_var(rel, dl, f"e{key}")
                    size = m.new_int_var(0, max(0, dl - rel), f"d{key}")
                    m.add(size == setup[qi] + rate[qi] * n).only_enforce_if(p)
                    m.add(n == 0).only_enforce_if(~p)
                    m.add(n >= 1).only_enforce_if(p)
                    m.add_implication(p, z)
                    m.add(done >= en).only_enforce_if(p)
                    by_qpu[qi].append(m.new_optional_interval_var(st, size, en, p, f"i{key}"))
                    frag_vars[key] = (p, n, st, en)
                    starts.setdefault((vi, si), []).append((p, st))
                    counts.append(n)
                    present.append(p)
                if counts:
                    m.add(sum(counts) == sub.shots * z)
                else:
                    m.add(z == 0)
                if not job.splittable and len(present) > 1:  # its policy forbids splits
                    m.add_at_most_one(present)
            for a, b in var.precedence:
                for p, st in starts.get((vi, b), []):
                    m.add(st >= completion[a]).only_enforce_if(p)
    for intervals in by_qpu:
        if len(intervals) > 1:
            m.add_no_overlap(intervals)
    m.maximize(sum(served.values()))
    if hint is not None:
        _add_hint(m, problem, hint, served, frag_vars, up)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    if deterministic_limit is not None:
        solver.parameters.max_deterministic_time = deterministic_limit
    code = solver.solve(m)
    status = solver.status_name(code)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return ExactResult(None, status, 0, float(solver.best_objective_bound),
                           time.perf_counter() - started)
    frags = []
    for (ji, _vi, si, qi), (p, n, st, _en) in frag_vars.items():
        if solver.boolean_value(p):
            q = problem.qpus[qi]
            shots = int(solver.value(n))
            start = solver.value(st) * unit
            frags.append(Fragment(problem.jobs[ji].name, si, q.name, shots, start,
                                  start + q.duration(shots)))
    admitted = frozenset(name for name, x in served.items() if solver.boolean_value(x))
    frags.sort(key=lambda f: (f.start, f.qpu))
    lo = frozenset(name for name, z in lo_used.items() if solver.boolean_value(z))
    schedule = Schedule(admitted, tuple(frags), "cpsat", recut=lo)
    return ExactResult(schedule, status, len(admitted), float(solver.best_objective_bound),
                       time.perf_counter() - started)


def _add_hint(
    m: cp_model.CpModel,
    problem: Problem,
    hint: Schedule,
    served: dict[str, Any],
    frag_vars: dict[tuple[int, int, int, int], tuple[Any, Any, Any, Any]],
    up: Callable[[float], int],
) -> None:
    """Warm start from a heuristic schedule, start times included (CP-SAT repairs or ignores
    a bad hint)."""
    jobs = {j.name: i for i, j in enumerate(problem.jobs)}
    qpus = {q.name: i for i, q in enumerate(problem.qpus)}
    used = {(jobs[f.job], f.subcircuit, qpus[f.qpu]): f for f in hint.fragments}
    for name, x in served.items():
        m.add_hint(x, name in hint.admitted)
    for (ji, vi, si, qi), (p, n, st, _en) in frag_vars.items():
        name = problem.jobs[ji].name
        f = used.get((ji, si, qi)) if vi == int(name in hint.recut) else None
        m.add_hint(p, f is not None)
        m.add_hint(n, f.shots if f is not None else 0)
        if f is not None:
            m.add_hint(st, up(f.start))
