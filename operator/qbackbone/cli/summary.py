"""The human side of `qbackbone run`: progress and a short summary on stderr."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from qbackbone.api.problem import ProblemSolution
from qbackbone.api.quantumjob import QuantumJobStatus


class TerminalProgress:
    """Prints each pipeline step with the time since the job started."""

    def __init__(self, job: str, stream: TextIO | None = None) -> None:
        self.job = job
        self.stream = stream or sys.stderr  # looked up now: sys.stderr may be replaced
        self.start = time.perf_counter()

    def step(self, phase: str, message: str) -> None:
        """One line per step."""
        elapsed = time.perf_counter() - self.start
        print(f"[{self.job} {elapsed:6.2f}s] {phase}: {message}", file=self.stream, flush=True)


def _solution_lines(s: ProblemSolution) -> list[str]:
    lines = [f"  {s.kind} by {s.solver}: objective {s.objective:.6g} ({s.objective_sense}), "
             f"{'feasible' if s.feasible else 'INFEASIBLE'}, {s.variables} variables"]
    if s.approximation_ratio is not None:
        lines.append(f"  approximation ratio {s.approximation_ratio:.4f} against the "
                     f"{'proven ' if s.optimum_proven else ''}optimum {s.optimum:.6g}")
    if s.feasible_fraction_before_repair is not None:
        lines.append(f"  feasible samples: {s.feasible_fraction_before_repair:.1%} raw, "
                     f"{s.feasible_fraction_after_repair:.1%} after repair")
    for route in (s.routes or [])[:8]:
        lines.append(f"  route {route.source}->{route.target} ({route.volume:g}): "
                     f"{' '.join(route.path)}{' [pinned]' if route.pinned else ''}")
    if s.routes and len(s.routes) > 8:
        lines.append(f"  ... {len(s.routes) - 8} more routes in status.result.solution.routes")
    if s.max_utilisation is not None:
        lines.append(f"  max link utilisation {s.max_utilisation:.2f}")
    if s.admitted is not None:
        lines.append(f"  admitted: {', '.join(s.admitted) or 'none'}; rejected: "
                     f"{', '.join(s.rejected or []) or 'none'}")
    return lines


def summarise(name: str, status: QuantumJobStatus, stream: TextIO | None = None) -> None:
    """Decision and why, plan, result, verification and timings, in a few lines."""
    out: list[str] = [f"== {name}: {status.phase}"]
    d = status.decision
    if d is not None:
        out.append(f"decision: {d.path or 'refused'} (policy {d.policy}, generation "
                   f"{d.policy_generation}): {d.message}")
        failed = [r for r in d.rules if not r.passed]
        for rule in failed[:6]:
            where = f" on {rule.qpu}" if rule.qpu else ""
            out.append(f"  rule {rule.name}{where}: {rule.value} vs {rule.threshold}")
        if len(failed) > 6:
            out.append(f"  ... {len(failed) - 6} more failed rules in status.decision.rules")
    if status.plan is not None:
        for frag in status.plan.fragments:
            fid = (f", est. fidelity {frag.estimated_fidelity}"
                   if frag.estimated_fidelity is not None else "")
            out.append(f"plan: {frag.qpu} ({frag.backend}) {frag.shots} shots, "
                       f"~{frag.planned_end_seconds:.2f}s{fid}")
    r = status.result
    if r is not None:
        ideal = " (ideal simulator)" if r.ideal_simulator and r.path != "Classical" else ""
        out.append(f"result: {r.path} on {', '.join(r.backends)}{ideal}, {r.shots} shots")
        for m in r.mitigation or []:
            out.append(f"  mitigation {m.level} on {', '.join(m.qpus)}: "
                       f"{', '.join(m.techniques) or 'none'} (x{m.shot_multiplier:g} shots)")
        for ev in r.expectation_values or []:
            sys_part = (f" +- {ev.systematic_error:.4f} (sys)" if ev.systematic_error else "")
            out.append(f"  <{ev.observable}> = {ev.value:+.4f} +- {ev.std_error:.4f}{sys_part}")
        if r.solution is not None:
            out.extend(_solution_lines(r.solution))
        if r.counts:
            top = sorted(r.counts.items(), key=lambda kv: -kv[1])[:4]
            out.append("  top counts: " + ", ".join(f"{k}: {v}" for k, v in top))
        if r.mitigated_probabilities:
            best = sorted(r.mitigated_probabilities.items(), key=lambda kv: -kv[1])[:4]
            out.append("  readout-mitigated: " + ", ".join(f"{k}: {p:.3f}" for k, p in best))
    v = status.verification
    if v is not None:
        out.append(f"verification: {v.method} {'passed' if v.passed else 'FAILED'}"
                   f"{' (noisy QPUs)' if v.noisy else ''}: {v.details}")
    t = status.timings
    if t is not None:
        parts = [f"{k.removesuffix('_seconds')} {val:.2f}s"
                 for k, val in t.model_dump().items() if val is not None]
        out.append("timings: " + ", ".join(parts))
    failed_cond = next((c for c in status.conditions if c.type == "Failed"), None)
    if failed_cond is not None:
        out.append(f"FAILED {failed_cond.reason}: {failed_cond.message}")
    print("\n".join(out), file=stream or sys.stderr, flush=True)
