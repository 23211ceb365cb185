"""A decomposed job's verification in network terms and its status.result.decomposition.

The independent check recomputes the decision from what the job asked and what the result
says, without the QUBO: link loads from the reported routes (traffic engineering), or every
capacity's use and the revenue from the admitted slice names (slice admission).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from qbackbone.api.decomposition import (
    DecompositionReport,
    ReferenceReport,
    RegionReport,
    RoundReport,
)
from qbackbone.api.problem import ProblemSolution, ProblemSpec
from qbackbone.core.optimize.decompose import (
    Decomposable,
    Decomposition,
    Reference,
    Region,
    SliceDecomposition,
    check_admission,
    ratio,
    recompute_loads,
)
from qbackbone.core.optimize.decompose.regions import ATTRIBUTE
from qbackbone.core.optimize.decompose.traffic import TrafficDecomposition

MAX_LISTED = 50  # border resources and unservable requests named in the report


@dataclass
class IndependentCheck:
    """The decision recomputed from the job and the result alone."""

    summary: str
    objective: float
    violations: list[str] = field(default_factory=list)


def independent_check(whole: Decomposable, spec: ProblemSpec, solution: ProblemSolution,
                      objective: float) -> IndependentCheck:
    """Every constraint and the objective recomputed without the QUBO; a recomputed objective
    that differs from the reported one is a violation."""
    if isinstance(whole, TrafficDecomposition):
        assert spec.traffic_engineering is not None
        loads = recompute_loads(whole.problem.graph, solution.routes or [],
                                spec.traffic_engineering.demands)
        check = IndependentCheck(
            "passed: every demand routed, link loads recomputed from the routes "
            f"(congestion {loads.congestion:.6g}) within capacity", loads.congestion,
            list(loads.violations))
        what = "congestion"
    else:
        assert spec.slice_admission is not None
        use = check_admission(spec.slice_admission, solution.admitted or [],
                              solution.rejected or [])
        check = IndependentCheck(
            f"passed: every request decided once, the use of all {len(use.usage)} capacities "
            f"recomputed from the {len(solution.admitted or [])} admitted slices within "
            f"capacity (revenue {use.revenue:.6g})", use.revenue, list(use.violations))
        what = "revenue"
    if check.violations:
        check.summary = "FAILED: " + "; ".join(check.violations[:5])
    if abs(check.objective - objective) > 1e-6 * max(1.0, abs(objective)):
        check.violations.append(f"recomputed {what} {check.objective:.6g} differs from the "
                                f"reported objective {objective:.6g}")
    return check


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _reference(reference: Reference | None, objective: float,
               whole: Decomposable) -> ReferenceReport | None:
    if reference is None:
        return None
    finite = math.isfinite(reference.objective)
    return ReferenceReport(
        method=reference.method, objective=round(reference.objective, 9) if finite else None,
        feasible=reference.feasible,
        bound=None if reference.bound is None else round(reference.bound, 9),
        proven=reference.proven, seconds=reference.seconds,
        ratio=None if not finite else _round(ratio(objective, reference.objective,
                                                   whole.sense)))


def _regions(whole: Decomposable, regions: list[Region],
             outcome: Decomposition) -> list[RegionReport]:
    border = whole.border_units(regions, outcome.homes)
    out = []
    for r, region in enumerate(regions):
        homed = [d for d, h in enumerate(outcome.homes) if h == r]
        blocks = [b for b in outcome.blocks if b.region == r]
        results = [b.result for b in blocks]
        out.append(RegionReport(
            name=region.name, site=region.site, nodes=len(region.nodes), demands=len(homed),
            border_demands=sum(d in border for d in homed),
            subproblems=len(blocks), max_variables=max((b.variables for b in blocks), default=0),
            paths=sorted({x.path for x in results}), solvers=sorted({x.solver for x in results}),
            qpus=sorted({x.qpu for x in results if x.qpu}), shots=sum(x.shots for x in results),
            noisy=any(x.noisy for x in results),
            mitigation=sorted({f"{x.qpu}: {x.mitigation}" for x in results if x.mitigation})))
    return out


def _objective(whole: Decomposable, value: float) -> dict[str, float]:
    """A minimised score as the report's field: congestion, or revenue (minus the score)."""
    if whole.sense == "maximize":
        return {"revenue": round(-value, 9)}
    return {"congestion": round(value, 9)}


def _named(prefix: str, suffix: str, values: dict[str, float]) -> dict[str, float]:
    return {(f"{prefix}_{k}" if prefix else k) + (f"_{suffix}" if suffix else ""): v
            for k, v in values.items()}


def decomposition_report(whole: Decomposable, regions: list[Region], width: int,
                         outcome: Decomposition, reference: Reference | None,
                         objective: float, load_check: str) -> DecompositionReport:
    """status.result.decomposition: regions, rounds, the reconciliation and the reference."""
    rounds = [RoundReport(
        index=k.index, subproblems=k.subproblems, overload_before=round(k.before[0], 6),
        merged_overload=round(k.merged[0], 6), overload_after=round(k.after[0], 6),
        strategy=k.strategy, accepted=k.accepted, rejected=k.rejected,
        priced_links=k.priced_links, seconds=k.seconds,
        **_named("", "before", _objective(whole, k.before[1])),
        **_named("merged", "", _objective(whole, k.merged[1])),
        **_named("", "after", _objective(whole, k.after[1]))) for k in outcome.rounds]
    quantum = sum(b.result.path == "SingleQPU" for b in outcome.blocks)
    final = objective if whole.sense == "minimize" else -objective
    extra: dict[str, object] = {}
    if isinstance(whole, SliceDecomposition):
        extra["border_resources"] = sorted(whole.border_resources(regions,
                                                                  outcome.homes))[:MAX_LISTED]
        extra["unservable"] = [whole.unservable[k] for k in sorted(whole.unservable)][:MAX_LISTED]
    return DecompositionReport(
        kind=whole.kind, whole_variables=whole.problem.qubo.size, width=width,
        region_source="attribute" if regions[0].origin == ATTRIBUTE else "partition",
        regions=_regions(whole, regions, outcome), rounds=rounds, stop=outcome.stop,
        qpu_calls=quantum, classical_calls=len(outcome.blocks) - quantum,
        initial_overload=round(outcome.initial[0], 6),
        reconciled_overload=round(outcome.before_repair[0], 6), repair=outcome.repair,
        seconds=outcome.seconds, load_check=load_check,
        cp_sat=_reference(reference, objective, whole),
        **_named("initial", "", _objective(whole, outcome.initial[1])),
        **_named("reconciled", "", _objective(whole, outcome.before_repair[1])),
        **_named("repaired", "", _objective(whole, outcome.after_repair[1])),
        **_named("final", "", _objective(whole, final)), **extra)
