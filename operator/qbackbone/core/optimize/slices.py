"""Slice admission: admit the slices that earn the most and fit the PoP and link capacities.

QUBO: x[s] = 1 when slice s is admitted; energy -sum revenue * x plus, for every resource the
requests could overflow, A * (sum units * x + slack - capacity units)^2. Amounts are counted in
units of capacity / (2^bits - 1), rounded up (conservative). A = total revenue + 1, so any
assignment that breaks a capacity costs more than admitting nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from qbackbone.api.problem import ProblemKind, ProblemSolution, SliceAdmissionProblem
from qbackbone.core.optimize.limits import check_quantity, check_variables
from qbackbone.core.optimize.problem import ProblemError, ReducedProblem, Sense
from qbackbone.core.optimize.qubo import QuboBuilder, SlackRow


@dataclass
class SliceProblem(ReducedProblem):
    """The reduced slice-admission problem."""

    spec: SliceAdmissionProblem | None = None
    rows: list[SlackRow] = field(default_factory=list)  # resources the requests could overflow

    kind: ClassVar[ProblemKind] = "sliceAdmission"
    sense: ClassVar[Sense] = "maximize"

    @property
    def _spec(self) -> SliceAdmissionProblem:
        assert self.spec is not None
        return self.spec

    def admitted(self, x: np.ndarray) -> list[int]:
        """Indices of admitted slices."""
        return [s for s in range(len(self._spec.slices)) if x[s]]

    def usage(self, chosen: list[int]) -> dict[str, float]:
        """Resource use of the chosen slices."""
        used: dict[str, float] = {}
        for s in chosen:
            for resource, amount in self._spec.slices[s].demands.items():
                used[resource] = used.get(resource, 0.0) + amount
        return used

    def _overflowing(self, chosen: list[int]) -> set[str]:
        capacity = {r.name: r.capacity for r in self._spec.resources}
        return {r for r, v in self.usage(chosen).items() if v > capacity[r] * (1 + 1e-9)}

    def _fits(self, chosen: list[int]) -> bool:
        return not self._overflowing(chosen)

    def encode(self, chosen: list[int]) -> np.ndarray:
        """The assignment admitting `chosen`, with slack bits zeroing each capacity penalty."""
        x = np.zeros(self.qubo.size, dtype=np.int8)
        x[chosen] = 1
        for row in self.rows:
            row.fill_slack(x)
        return x

    def objective(self, x: np.ndarray) -> float:
        return float(sum(self._spec.slices[s].revenue for s in self.admitted(x)))

    def violations(self, x: np.ndarray) -> list[str]:
        capacity = {r.name: r.capacity for r in self._spec.resources}
        return [f"{r} needs {v:g} of capacity {capacity[r]:g}"
                for r, v in sorted(self.usage(self.admitted(x)).items())
                if v > capacity[r] * (1 + 1e-9)]

    def repair(self, x: np.ndarray) -> np.ndarray:
        chosen = self.admitted(x)
        while chosen and not self._fits(chosen):
            # Drop the admitted slice that earns least per unit of overflowing capacity it uses.
            over = self._overflowing(chosen)

            def value(s: int, over: set[str] = over) -> float:
                req = self._spec.slices[s]
                load = sum(a for r, a in req.demands.items() if r in over)
                return req.revenue / (load + 1e-9) if load > 0 else math.inf
            chosen.remove(min(chosen, key=value))
        return self.encode(chosen)

    def improve(self, x: np.ndarray) -> np.ndarray:
        chosen = self.admitted(x)
        revenue = [r.revenue for r in self._spec.slices]
        improved = True
        while improved:
            improved = False
            rejected = sorted(set(range(len(revenue))) - set(chosen), key=lambda s: -revenue[s])
            for s in rejected:  # add whatever still fits
                if self._fits([*chosen, s]):
                    chosen, improved = [*chosen, s], True
            for out in list(chosen):  # swap one admitted for one rejected that earns more
                for s in rejected:
                    trial = [c for c in chosen if c != out] + [s]
                    if revenue[s] > revenue[out] and s not in chosen and self._fits(trial):
                        chosen, improved = trial, True
                        break
                if improved:
                    break
        return self.encode(sorted(chosen))

    def describe(self, x: np.ndarray, solution: ProblemSolution) -> None:
        chosen = set(self.admitted(x))
        names = [s.name for s in self._spec.slices]
        solution.admitted = [names[s] for s in sorted(chosen)]
        solution.rejected = [names[s] for s in range(len(names)) if s not in chosen]


def _check_slices(spec: SliceAdmissionProblem) -> dict[str, float]:
    """Names unique, resources known, every amount a number in range: the capacities."""
    capacity = {r.name: check_quantity(f"sliceAdmission.resources[{k}].capacity", r.capacity,
                                       zero_ok=True) for k, r in enumerate(spec.resources)}
    if len(capacity) != len(spec.resources):
        raise ProblemError("resources: every name must appear once")
    names = [s.name for s in spec.slices]
    if len(set(names)) != len(names):
        raise ProblemError("slices: every name must appear once")
    for k, s in enumerate(spec.slices):
        check_quantity(f"sliceAdmission.slices[{k}].revenue", s.revenue)
        unknown = sorted(set(s.demands) - set(capacity))
        if unknown:
            raise ProblemError(f"slice {s.name!r} uses unknown resource(s) {', '.join(unknown)} "
                               f"(known: {', '.join(sorted(capacity))})")
        for resource, amount in s.demands.items():
            check_quantity(f"sliceAdmission.slices[{k}].demands.{resource}", amount, zero_ok=True)
    check_quantity("the revenue of all slices, added up,", sum(s.revenue for s in spec.slices))
    return capacity


def reduce_slices(spec: SliceAdmissionProblem, max_variables: int | None = None) -> SliceProblem:
    """The QUBO of a slice-admission problem; its size is checked before it is built."""
    capacity = _check_slices(spec)
    overflowing = [name for name, cap in sorted(capacity.items())
                   if sum(s.demands.get(name, 0.0) for s in spec.slices) > cap]
    check_variables(len(spec.slices) + spec.slack_bits * len(overflowing),
                    "this slice-admission problem", max_variables,
                    "give fewer slice requests, or fewer slackBits")
    builder = QuboBuilder()
    idx = [builder.variable(f"admit[{s.name}]") for s in spec.slices]
    weight = sum(s.revenue for s in spec.slices) + 1.0
    for i, s in zip(idx, spec.slices, strict=True):
        builder.add_linear(i, -s.revenue)
    objective = QuboBuilder()
    for i, s in zip(idx, spec.slices, strict=True):
        objective.variable(f"admit[{s.name}]")
        objective.add_linear(i, -s.revenue)
    constraints = []
    rows: list[SlackRow] = []
    limit = (1 << spec.slack_bits) - 1
    for name in overflowing:
        cap = capacity[name]
        users = {i: s.demands[name] for i, s in zip(idx, spec.slices, strict=True)
                 if s.demands.get(name, 0.0) > 0}
        unit = cap / limit if cap > 0 else 1.0
        # More than the capacity is infeasible alone; capping keeps units within CP-SAT's int64.
        units = {i: min(math.ceil(a / unit - 1e-9), limit + 1) for i, a in users.items()}
        rows.append(builder.add_capacity(name, units, limit if cap > 0 else 0, weight))
        constraints.append(rows[-1].constraint)
    notes = [f"{len(spec.slices)} slice requests on {len(capacity)} resources; "
             f"{len(rows)} resource(s) could overflow and carry {spec.slack_bits} slack bits"]
    qubo = builder.build()
    return SliceProblem(qubo=qubo, notes=notes, spec=spec, rows=rows,
                        objective_qubo=objective.build().widened(qubo.variables),
                        constraints=constraints)
