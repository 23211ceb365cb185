"""An exhaustive optimum for tiny problems, written independently of the schedulers.

For every job subset (largest first), every split of each subcircuit's shots over its eligible
QPUs (at most one fragment per QPU) and every precedence-feasible order of the fragments, a
serial schedule-generation scheme starts each fragment as early as precedence, arrival and its
QPU's free time (gaps included) allow. These active schedules contain an optimal one.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from qbackbone.core.scheduling import Problem

Frag = tuple[str, int, int, int]  # job, subcircuit, qpu index, shots


def _splits(shots: int, qpus: list[int]) -> Iterator[list[tuple[int, int]]]:
    for k in range(1, len(qpus) + 1):
        for chosen in itertools.combinations(qpus, k):
            for cut in itertools.combinations(range(1, shots), k - 1):
                bounds = (0, *cut, shots)
                yield [(q, bounds[i + 1] - bounds[i]) for i, q in enumerate(chosen)]


def _fits(problem: Problem, names: tuple[str, ...], frags: list[Frag]) -> bool:
    jobs = {j.name: j for j in problem.jobs}
    for order in itertools.permutations(frags):
        busy: list[list[tuple[float, float]]] = [[] for _ in problem.qpus]
        end: dict[tuple[str, int], float] = {}
        done: dict[tuple[str, int], int] = {}
        ok = True
        for job_name, s, q, n in order:
            job = jobs[job_name]
            preds = [a for a, b in job.precedence if b == s]
            need = {a: sum(1 for f in frags if f[0] == job_name and f[1] == a) for a in preds}
            if any(done.get((job_name, a), 0) < need[a] for a in preds):
                ok = False
                break
            qpu = problem.qpus[q]
            dur = qpu.setup_time + n * qpu.shot_time
            t = max([job.arrival, qpu.available_at, *(end[(job_name, a)] for a in preds)])
            for a, b in sorted(busy[q]):
                if t + dur <= a:
                    break
                t = max(t, b)
            busy[q].append((t, t + dur))
            key = (job_name, s)
            end[key] = max(end.get(key, 0.0), t + dur)
            done[key] = done.get(key, 0) + 1
            if t + dur > job.deadline + 1e-9:
                ok = False
                break
        if ok:
            return True
    return False


def brute_force_optimum(problem: Problem) -> int:
    names = [j.name for j in problem.jobs]
    for k in range(len(names), 0, -1):
        for subset in itertools.combinations(names, k):
            options = []
            for name in subset:
                job = next(j for j in problem.jobs if j.name == name)
                for s, sub in enumerate(job.subcircuits):
                    elig = [i for i, q in enumerate(problem.qpus) if q.can_run(sub)]
                    options.append([[(name, s, q, n) for q, n in split]
                                    for split in _splits(sub.shots, elig)])
            for combo in itertools.product(*options):
                frags = [f for part in combo for f in part]
                if _fits(problem, subset, frags):
                    return k
    return 0
