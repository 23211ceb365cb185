"""An exact reference: the scheduling problem as a CP-SAT model (OR-Tools).

Time is discretised to integer ``unit`` seconds, always conservatively: release times round up,
deadlines round down, setup and per-shot times round up, and fragments that already run
(``Problem.fixed``) round outward (start down, end up). A CP-SAT solution therefore maps to a
schedule that is feasible in continuous time (it is checked with the validator by the callers
and the tests), and a proven optimum of the discretised model is a lower bound on the
continuous optimum that is tight up to the rounding (with the default 0.1 us unit, a relative
1e-4 on durations; the generator puts its data on this grid, so there it is exact). As in the
heuristics, a subcircuit has at most one new fragment per QPU.

Fixed fragments have the heuristics' semantics (:class:`.placement.Compiled`): they occupy
their QPU intervals; their jobs are *committed*: always admitted, with the cut they run with,
their remaining shots (shots minus what fixed fragments ran) placed after ``now`` and after
the fixed ends of their predecessors; a committed job that cannot finish by its deadline stays
admitted and is ``late`` (not served). QPUs that never free up keep their fixed fragments only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from ortools.sat.python import cp_model

from .canonical import canonical
from .exact_fixed import Committed, committed_work, horizon, merged_spans, usable, variants
from .model import Fragment, Problem, Schedule
from .timing import on_time


class ExactResult(NamedTuple):
    schedule: Schedule | None
    status: str  # OPTIMAL, FEASIBLE, INFEASIBLE, UNKNOWN, MODEL_INVALID
    served: int
    bound: float  # proven upper bound on jobs served
    seconds: float


_FragVars = dict[tuple[int, int, int, int], tuple[Any, Any, Any, Any]]


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
    ``recut`` each job with cut wires and no fixed fragments may run with either cut kind, as
    in the QB scheduler. ``deterministic_limit`` also bounds CP-SAT's deterministic time: with
    one worker and a fixed seed the result then depends only on the problem and the limit
    (unless the wall ``time_limit`` ends the search first). The model is built in the
    problem's canonical order (:func:`.canonical.canonical`), so relabelling QPUs and jobs
    does not change it. ``served`` counts admitted jobs that end by their deadline, as
    :attr:`.model.Schedule.served` (late committed jobs are admitted, not served). A
    committed job whose remaining shots have no usable QPU makes the model INFEASIBLE (no
    valid schedule exists)."""
    started = time.perf_counter()
    problem = canonical(problem)
    work = committed_work(problem)
    m = cp_model.CpModel()

    def up(t: float) -> int:  # values within float noise of the grid snap to it
        r = t / unit
        return round(r) if abs(r - round(r)) <= 1e-6 else math.ceil(r)

    def down(t: float) -> int:
        r = t / unit
        return round(r) if abs(r - round(r)) <= 1e-6 else math.floor(r)

    setup = [up(q.setup_time) for q in problem.qpus]
    rate = [up(q.shot_time) for q in problem.qpus]
    hi_all = horizon(problem, work, setup, rate, up)
    now = up(problem.now)
    lo_t = min([0, now, *(down(f.start) for f in problem.fixed)])
    by_qpu: list[list[Any]] = [[] for _ in problem.qpus]
    qindex = {q.name: i for i, q in enumerate(problem.qpus)}
    for name, spans in merged_spans(problem, down, up).items():
        qi = qindex[name]
        for a, b in spans:  # only what new fragments (all after now) could meet
            if b > now and math.isfinite(problem.qpus[qi].available_at):
                by_qpu[qi].append(m.new_fixed_size_interval_var(a, b - a, f"f{qi}_{a}"))
    served: dict[str, Any] = {}
    lo_used: dict[str, Any] = {}
    frag_vars: _FragVars = {}
    for ji, job in enumerate(problem.jobs):
        x = m.new_bool_var(f"x{ji}")
        served[job.name] = x
        w = work.get(job.name)
        dl = down(job.deadline)
        vs = variants(job, recut, w)
        if w is None:  # optional: admitted with one variant, on time, or dropped
            chosen = [m.new_bool_var(f"z{ji}_{v}") for v in range(len(vs))]
            m.add(sum(chosen) == x)
            hi = dl
        else:  # committed: always admitted, may end late; served only if on time
            chosen = [m.new_constant(1)]
            hi = hi_all
        if len(vs) > 1:
            lo_used[job.name] = chosen[1]
        for vi, (var, z) in enumerate(zip(vs, chosen, strict=True)):
            completion = []
            starts: dict[int, list[tuple[Any, Any]]] = {}
            ends: dict[int, list[tuple[Any, Any]]] = {}
            for si, sub in enumerate(var.subcircuits):
                need = sub.shots if w is None else w.remaining[si]
                floor = lo_t if w is None or w.end[si] == -math.inf else up(w.end[si])
                done = m.new_int_var(floor, max(floor, hi), f"c{ji}_{vi}_{si}")
                completion.append(done)
                if w is not None:
                    m.add(done <= dl).only_enforce_if(x)
                if need == 0:
                    continue
                counts = []
                present = []
                for qi in usable(problem, var, si, w):
                    q = problem.qpus[qi]
                    rel = up(max(job.arrival, problem.now, q.available_at))
                    if rel > hi:
                        continue
                    key = (ji, vi, si, qi)
                    p = m.new_bool_var(f"p{key}")
                    n = m.new_int_var(0, need, f"n{key}")
                    st = m.new_int_var(rel, hi, f"s{key}")
                    en = m.new_int_var(rel, hi, f"e{key}")
                    size = m.new_int_var(0, max(0, hi - rel), f"d{key}")
                    m.add(size == setup[qi] + rate[qi] * n).only_enforce_if(p)
                    m.add(n == 0).only_enforce_if(~p)
                    m.add(n >= 1).only_enforce_if(p)
                    m.add_implication(p, z)
                    m.add(done >= en).only_enforce_if(p)
                    by_qpu[qi].append(m.new_optional_interval_var(st, size, en, p, f"i{key}"))
                    frag_vars[key] = (p, n, st, en)
                    starts.setdefault(si, []).append((p, st))
                    ends.setdefault(si, []).append((p, en))
                    counts.append(n)
                    present.append(p)
                if counts:
                    m.add(sum(counts) == need * z)
                else:
                    m.add(z == 0)  # for a committed job: infeasible, as it is
                if not job.splittable and len(present) > 1:  # its policy forbids splits
                    m.add_at_most_one(present)
            for a, b in var.precedence:
                for p, st in starts.get(b, []):
                    m.add(st >= completion[a]).only_enforce_if(p)
                if w is not None and w.start[b] < math.inf:  # b already started
                    for p, en in ends.get(a, []):
                        m.add(en <= down(w.start[b])).only_enforce_if(p)
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
    # one worker may report a bound above the number of jobs: clamp it to that
    bound = min(float(solver.best_objective_bound), float(len(problem.jobs)))
    if code not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return ExactResult(None, status, 0, bound, time.perf_counter() - started)
    schedule = _extract(problem, solver, served, lo_used, frag_vars, work, unit)
    return ExactResult(schedule, status, schedule.served, bound, time.perf_counter() - started)


def _extract(
    problem: Problem,
    solver: cp_model.CpSolver,
    served: dict[str, Any],
    lo_used: dict[str, Any],
    frag_vars: _FragVars,
    work: dict[str, Committed],
    unit: float,
) -> Schedule:
    """The solver's plan as a :class:`Schedule`: fixed fragments, the new ones; committed
    jobs admitted, ``late`` when their last fragment ends after their deadline (the same test
    as the heuristics and the validator)."""
    frags = list(problem.fixed)
    for (ji, _vi, si, qi), (p, n, st, _en) in frag_vars.items():
        if solver.boolean_value(p):
            q = problem.qpus[qi]
            shots = int(solver.value(n))
            start = solver.value(st) * unit
            frags.append(Fragment(problem.jobs[ji].name, si, q.name, shots, start,
                                  start + q.duration(shots)))
    admitted = frozenset(
        name for name, x in served.items() if name in work or solver.boolean_value(x))
    finish: dict[str, float] = {}
    for f in frags:
        finish[f.job] = max(finish.get(f.job, -math.inf), f.end)
    late = frozenset(name for name in work
                     if not on_time(finish[name], problem.job(name).deadline))
    frags.sort(key=lambda f: (f.start, f.qpu))
    lo = frozenset(name for name, z in lo_used.items() if solver.boolean_value(z))
    return Schedule(admitted, tuple(frags), "cpsat", late=late, recut=lo & admitted)


def _add_hint(
    m: cp_model.CpModel,
    problem: Problem,
    hint: Schedule,
    served: dict[str, Any],
    frag_vars: _FragVars,
    up: Callable[[float], int],
) -> None:
    """Warm start from a heuristic schedule, start times included (CP-SAT repairs or ignores
    a bad hint). The hint's fixed fragments are part of the model, not hints."""
    jobs = {j.name: i for i, j in enumerate(problem.jobs)}
    qpus = {q.name: i for i, q in enumerate(problem.qpus)}
    fixed = set(problem.fixed)
    used = {(jobs[f.job], f.subcircuit, qpus[f.qpu]): f for f in hint.fragments
            if f not in fixed and f.job in jobs and f.qpu in qpus}
    for name, x in served.items():
        m.add_hint(x, name in hint.admitted and name not in hint.late)
    for (ji, vi, si, qi), (p, n, st, _en) in frag_vars.items():
        name = problem.jobs[ji].name
        f = used.get((ji, si, qi)) if vi == int(name in hint.recut) else None
        m.add_hint(p, f is not None)
        m.add_hint(n, f.shots if f is not None else 0)
        if f is not None:
            m.add_hint(st, up(f.start))
