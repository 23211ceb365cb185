"""Run a cut plan through a :class:`SubcircuitRunner` and reconstruct the observables."""

from __future__ import annotations

import time
from collections.abc import Sequence

from qbackbone.core.circuits.serialize import circuits_from_b64

from .lo import reconstruct
from .locc import LoccExecution
from .models import CutPlan, CutResult, SubcircuitRecord
from .readout import MeasuredCounts
from .runner import SubcircuitRunner


def execute_plan(plan: CutPlan, runner: SubcircuitRunner, seed: int | None = None) -> CutResult:
    """Run every subcircuit (measurement before preparation) and reconstruct values with SEs."""
    records: list[SubcircuitRecord] = []
    timings = {"generation_s": 0.0, "execution_s": 0.0, "reconstruction_s": 0.0}

    def record(name: str, shots: int, circuits: int, start: float, end: float) -> None:
        records.append(SubcircuitRecord(name=name, order=len(records), shots=shots,
                                        circuits=circuits, wall_time_s=end - start,
                                        started=start, ended=end))
        timings["execution_s"] += end - start

    if plan.method == "lo":
        counts: dict[str, Sequence[dict[str, int] | MeasuredCounts]] = {}
        for sub in plan.subcircuits:
            t0 = time.perf_counter()
            assert sub.subexperiments_qpy is not None
            circuits = circuits_from_b64(sub.subexperiments_qpy)
            timings["generation_s"] += time.perf_counter() - t0
            start = time.time()
            counts[sub.name] = runner.run(sub.name, circuits, sub.subexperiment_shots)
            record(sub.name, sum(sub.subexperiment_shots), len(circuits), start, time.time())
        t0 = time.perf_counter()
        values, errors = reconstruct(plan, counts)
        timings["reconstruction_s"] = time.perf_counter() - t0
    else:
        t0 = time.perf_counter()
        run = LoccExecution(plan, seed)
        timings["generation_s"] += time.perf_counter() - t0
        for name in run.order:
            t0 = time.perf_counter()
            circuits, shots = run.circuits(name)
            timings["generation_s"] += time.perf_counter() - t0
            start = time.time()
            counts_list = runner.run(name, circuits, shots)
            end = time.time()
            t0 = time.perf_counter()
            run.submit(name, counts_list)
            timings["reconstruction_s"] += time.perf_counter() - t0
            record(name, sum(shots), len(circuits), start, end)
        t0 = time.perf_counter()
        values, errors = run.estimate()
        timings["reconstruction_s"] += time.perf_counter() - t0
    return CutResult(values=values, std_errors=errors, records=records, timings=timings)
