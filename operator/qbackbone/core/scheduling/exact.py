"""An exact reference: the scheduling problem as a CP-SAT model (OR-Tools).

Time is discretised to integer ``unit`` seconds, always conservatively: release times round up,
deadlines round down, setup and per-shot times round up. A CP-SAT solution therefore maps to a
schedule that is feasible in continuous time (it is checked with the validator by the callers
and the tests), and a proven optimum of the discretised model is a lower bound on the
continuous optimum that is tight up to the rounding (with the default 0.1 us unit, a relative
1e-4 on durations). As in the heuristics, a subcircuit has at most one fragment per QPU.
"""

from __future__ import annotations

import math
import time
from typing import Any, NamedTuple

from ortools.sat.python import cp_model

from .model import Fragment, Problem, Schedule


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
) -> ExactResult:
    """Maximise the jobs served within ``time_limit`` seconds of CP-SAT search."""
    if problem.fixed:
        raise ValueError("the exact model does not take fragments that already run")
    started = time.perf_counter()
    m = cp_model.CpModel()

    def up(t: float) -> int:
        return math.ceil(t / unit - 1e-9)

    def down(t: float) -> int:
        return math.floor(t / unit + 1e-9)

    setup = [up(q.setup_time) for q in problem.qpus]
    rate = [up(q.shot_time) for q in problem.qpus]
    served: dict[str, Any] = {}
    frag_vars: dict[tuple[int, int, int], tuple[Any, Any, Any, Any]] = {}
    by_qpu: list[list[Any]] = [[] for _ in problem.qpus]
    for ji, job in enumerate(problem.jobs):
        x = m.new_bool_var(f"x{ji}")
        served[job.name] = x
        dl = down(job.deadline)
        completion = []
        for si, sub in enumerate(job.subcircuits):
            elig = [qi for qi, q in enumerate(problem.qpus) if q.can_run(sub)]
            if not elig:
                m.add(x == 0)
            done = m.new_int_var(0, max(0, dl), f"c{ji}_{si}")
            completion.append(done)
            counts = []
            for qi in elig:
                q = problem.qpus[qi]
                rel = up(max(job.arrival, problem.now, q.available_at))
                if rel > dl:
                    continue
                p = m.new_bool_var(f"p{ji}_{si}_{qi}")
                n = m.new_int_var(0, sub.shots, f"n{ji}_{si}_{qi}")
                st = m.new_int_var(rel, dl, f"s{ji}_{si}_{qi}")
                en = m.new_int_var(rel, dl, f"e{ji}_{si}_{qi}")
                size = m.new_int_var(0, max(0, dl - rel), f"d{ji}_{si}_{qi}")
                m.add(size == setup[qi] + rate[qi] * n).only_enforce_if(p)
                m.add(n == 0).only_enforce_if(~p)
                m.add(n >= 1).only_enforce_if(p)
                m.add_implication(p, x)
                m.add(done >= en).only_enforce_if(p)
                by_qpu[qi].append(m.new_optional_interval_var(st, size, en, p, f"i{ji}_{si}_{qi}"))
                frag_vars[(ji, si, qi)] = (p, n, st, en)
                counts.append(n)
            if counts:
                m.add(sum(counts) == sub.shots * x)
            else:
                m.add(x == 0)
        for a, b in job.precedence:
            for (jj, si, _qi), (p, _n, st, _en) in frag_vars.items():
                if jj == ji and si == b:
                    m.add(st >= completion[a]).only_enforce_if(p)
    for intervals in by_qpu:
        if len(intervals) > 1:
            m.add_no_overlap(intervals)
    m.maximize(sum(served.values()))
    if hint is not None:
        _add_hint(m, problem, hint, served, frag_vars)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    code = solver.solve(m)
    status = solver.status_name(code)
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return ExactResult(None, status, 0, float(solver.best_objective_bound),
                           time.perf_counter() - started)
    frags = []
    for (ji, si, qi), (p, n, st, _en) in frag_vars.items():
        if solver.boolean_value(p):
            q = problem.qpus[qi]
            shots = int(solver.value(n))
            start = solver.value(st) * unit
            frags.append(Fragment(problem.jobs[ji].name, si, q.name, shots, start,
                                  start + q.duration(shots)))
    admitted = frozenset(name for name, x in served.items() if solver.boolean_value(x))
    frags.sort(key=lambda f: (f.start, f.qpu))
    schedule = Schedule(admitted, tuple(frags), "cpsat")
    return ExactResult(schedule, status, len(admitted), float(solver.best_objective_bound),
                       time.perf_counter() - started)


def _add_hint(
    m: cp_model.CpModel,
    problem: Problem,
    hint: Schedule,
    served: dict[str, Any],
    frag_vars: dict[tuple[int, int, int], tuple[Any, Any, Any, Any]],
) -> None:
    """Warm start from a heuristic schedule (CP-SAT repairs or ignores a bad hint)."""
    jobs = {j.name: i for i, j in enumerate(problem.jobs)}
    qpus = {q.name: i for i, q in enumerate(problem.qpus)}
    used = {(jobs[f.job], f.subcircuit, qpus[f.qpu]): f for f in hint.fragments}
    for name, x in served.items():
        m.add_hint(x, name in hint.admitted)
    for key, (p, n, _st, _en) in frag_vars.items():
        f = used.get(key)
        m.add_hint(p, f is not None)
        m.add_hint(n, f.shots if f is not None else 0)
