"""Traffic engineering: route each demand on one of its k shortest paths, least congestion.

QUBO: x[d,p] = 1 when demand d takes candidate path p.
- Congestion: sum over links of (load / capacity)^2, load = background + chosen volumes.
- One path per demand: A * (sum_p x[d,p] - 1)^2.
- Capacity, only on links the candidates could overload: volumes in integer units of
  (capacity - background) / (2^bits - 1), rounded up (conservative), with slack bits s:
  A * (sum units * x + s - capacity units)^2.
A is one more than the largest range the congestion terms can span, so any assignment that
breaks a constraint (residual >= 1 unit) costs more than every feasible one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

import networkx as nx
import numpy as np

from qbackbone.api.problem import (
    LinkLoad,
    ProblemKind,
    ProblemSolution,
    RoutedDemand,
    TrafficEngineeringProblem,
)
from qbackbone.core.optimize.limits import check_variables
from qbackbone.core.optimize.problem import ReducedProblem, Sense
from qbackbone.core.optimize.qubo import (
    LinearConstraint,
    QuboBuilder,
    SlackRow,
    objective_range,
)
from qbackbone.core.optimize.routing import (
    SLACK_BITS,
    AggregatedDemand,
    Edge,
    Layout,
    aggregate_demands,
    fewest_pins,
    path_edges,
    pin_sequence,
    plan_layout,
)
from qbackbone.core.optimize.topology import ConfigMapReader, link_name, load_topology


@dataclass
class TrafficProblem(ReducedProblem):
    """The reduced traffic-engineering problem."""

    graph: nx.Graph = field(default_factory=nx.Graph)
    free: list[AggregatedDemand] = field(default_factory=list)
    pinned: list[AggregatedDemand] = field(default_factory=list)
    variable_of: list[list[int]] = field(default_factory=list)  # free demand -> path -> index
    capacity_rows: list[SlackRow] = field(default_factory=list)  # links the demands could overload
    background: dict[Edge, float] = field(default_factory=dict)
    stranded: list[AggregatedDemand] = field(default_factory=list)  # no path fits on its own

    kind: ClassVar[ProblemKind] = "trafficEngineering"
    sense: ClassVar[Sense] = "minimize"

    # -- decisions -------------------------------------------------------------------------
    def choices(self, x: np.ndarray) -> list[list[int]]:
        """The selected path indices of every free demand (one, when feasible)."""
        return [[p for p, i in enumerate(idx) if x[i]] for idx in self.variable_of]

    def loads(self, routing: list[int]) -> dict[Edge, float]:
        """Link loads when free demand d takes candidate routing[d] (a shorter routing
        places only the first len(routing) demands)."""
        load = dict(self.background)
        for demand, p in zip(self.free[:len(routing)], routing, strict=True):
            for e in path_edges(demand.paths[p]):
                load[e] = load.get(e, 0.0) + demand.volume
        return load

    def congestion(self, load: dict[Edge, float]) -> float:
        """Sum of squared utilisations."""
        return sum((v / self.graph.edges[e]["capacity"]) ** 2 for e, v in load.items())

    def overload(self, load: dict[Edge, float]) -> float:
        """Total load above capacity."""
        return sum(max(0.0, v - self.graph.edges[e]["capacity"]) for e, v in load.items())

    def routing_of(self, x: np.ndarray) -> list[int] | None:
        """The routing when every free demand has exactly one path."""
        chosen = self.choices(x)
        return None if any(len(c) != 1 for c in chosen) else [c[0] for c in chosen]

    def encode(self, routing: list[int]) -> np.ndarray:
        """The assignment of a routing, with the slack bits that zero each capacity penalty."""
        x = np.zeros(self.qubo.size, dtype=np.int8)
        for idx, p in zip(self.variable_of, routing, strict=True):
            x[idx[p]] = 1
        for row in self.capacity_rows:
            row.fill_slack(x)
        return x

    # -- ReducedProblem --------------------------------------------------------------------
    def objective(self, x: np.ndarray) -> float:
        routing = self.routing_of(x)
        if routing is None:
            return math.inf
        return self.congestion(self.loads(routing))

    def violations(self, x: np.ndarray) -> list[str]:
        out = []
        for demand, chosen in zip(self.free, self.choices(x), strict=True):
            if len(chosen) != 1:
                out.append(f"demand {demand.source}<->{demand.target} has {len(chosen)} paths "
                           "(needs exactly 1)")
        routing = self.routing_of(x)
        if routing is not None:
            for e, v in sorted(self.loads(routing).items()):
                cap = self.graph.edges[e]["capacity"]
                if v > cap * (1 + 1e-9):
                    out.append(f"link {link_name(*e)} carries {v:g} over capacity {cap:g}")
        return out

    def repair(self, x: np.ndarray) -> np.ndarray:
        routing: list[int] = []
        for demand_index, chosen in enumerate(self.choices(x)):
            options = chosen or list(range(len(self.free[demand_index].paths)))
            routing.append(options[0] if len(options) == 1 else
                           self._cheapest(options, routing))
        routing = self._relieve_overload(routing)
        return self.encode(routing)

    def improve(self, x: np.ndarray) -> np.ndarray:
        routing = self.routing_of(x)
        if routing is None:
            return x
        best = self._score(routing)
        improved = True
        while improved:
            improved = False
            for d, demand in enumerate(self.free):
                for p in range(len(demand.paths)):
                    if p == routing[d]:
                        continue
                    trial = [*routing[:d], p, *routing[d + 1:]]
                    score = self._score(trial)
                    if score < best:
                        routing, best, improved = trial, score, True
        return self.encode(routing)

    def describe(self, x: np.ndarray, solution: ProblemSolution) -> None:
        routing = self.routing_of(x)
        if routing is None:
            return
        routes = [RoutedDemand(source=d.source, target=d.target, volume=d.volume,
                               path=d.paths[p]) for d, p in zip(self.free, routing, strict=True)]
        routes += [RoutedDemand(source=d.source, target=d.target, volume=d.volume,
                                path=d.paths[0], pinned=True) for d in self.pinned]
        load = self.loads(routing)
        solution.routes = routes
        solution.link_loads = [
            LinkLoad(link=link_name(*e), load=round(v, 6),
                     capacity=self.graph.edges[e]["capacity"],
                     utilisation=round(v / self.graph.edges[e]["capacity"], 6))
            for e, v in sorted(load.items())]
        solution.max_utilisation = round(max(ll.utilisation for ll in solution.link_loads), 6)

    # -- helpers ---------------------------------------------------------------------------
    def _score(self, routing: list[int]) -> tuple[float, float]:
        load = self.loads(routing)
        return (self.overload(load), self.congestion(load))

    def _cheapest(self, options: list[int], partial: list[int]) -> int:
        """The path option of the next demand (number len(partial)) adding least overload,
        then congestion, to the demands routed so far."""
        return min(options, key=lambda p: self._score([*partial, p]))

    def _relieve_overload(self, routing: list[int]) -> list[int]:
        """Move demands off overloaded links while that lowers the overload."""
        while True:
            current = self._score(routing)
            if current[0] <= 0:
                return routing
            moves = [[*routing[:d], p, *routing[d + 1:]]
                     for d, demand in enumerate(self.free) for p in range(len(demand.paths))
                     if p != routing[d]]
            if not moves:
                return routing
            best = min(moves, key=self._score)
            if self._score(best) >= current:
                return routing
            routing = best


def _build(graph: nx.Graph, plan: Layout) -> TrafficProblem:
    free, pinned, background, on_link = plan.free, plan.pinned, plan.background, plan.on_link
    notes = [f"demand {d.source}<->{d.target} ({d.volume:g}) overloads every candidate path "
             "on its own" for d in plan.stranded]
    names = [[f"x[{d.source}-{d.target}][{p}]" for p in range(len(d.paths))] for d in free]
    builder, congestion = QuboBuilder(), QuboBuilder()
    variable_of = [[builder.variable(n) for n in row] for row in names]
    for row in names:
        for n in row:
            congestion.variable(n)
    # Congestion: per link, (background + sum v x)^2 / cap^2.
    for e in set(on_link) | set(background):
        cap = graph.edges[e]["capacity"]
        congestion.add_squared([(i, v / cap) for i, v, _ in on_link.get(e, [])],
                               background.get(e, 0.0) / cap, 1.0)
    objective = congestion.build()
    weight = objective_range(objective.linear, objective.quadratic) + 1.0
    builder.add_constant(objective.offset)
    for i, value in enumerate(objective.linear):
        builder.add_linear(i, value)
    for i, j, value in objective.couplings():
        builder.add_quadratic(i, j, value)
    constraints = []
    for idx in variable_of:
        builder.add_squared([(i, 1.0) for i in idx], -1.0, weight)
        constraints.append(LinearConstraint({i: 1 for i in idx}, 1))
    rows: list[SlackRow] = []
    pairwise = 0
    for e, at_most_one in plan.rows:
        users = on_link[e]
        if at_most_one:
            # At most one demand fits: a penalty per pair, no slack variables needed.
            for k, (i, _, a) in enumerate(users):
                for j, _, b in users[k + 1:]:
                    if a != b:
                        builder.add_quadratic(i, j, weight)
                        constraints.append(LinearConstraint({i: 1, j: 1}, 1, equality=False))
            pairwise += 1
            continue
        limit = (1 << SLACK_BITS) - 1
        unit = (graph.edges[e]["capacity"] - background.get(e, 0.0)) / limit
        units = {i: math.ceil(v / unit - 1e-9) for i, v, _ in users}
        rows.append(builder.add_capacity(link_name(*e), units, limit, weight))
        constraints.append(rows[-1].constraint)
    if rows or pairwise:
        notes.append(f"capacity penalties on {len(rows) + pairwise} link(s): {pairwise} "
                     f"at-most-one, {len(rows)} with {SLACK_BITS} slack bits")
    qubo = builder.build()
    return TrafficProblem(qubo=qubo, notes=notes, objective_qubo=objective.widened(qubo.variables),
                          constraints=constraints, graph=graph, free=free,
                          pinned=pinned, variable_of=variable_of, capacity_rows=rows,
                          background=background, stranded=plan.stranded)


def build_traffic(graph: nx.Graph, plan: Layout) -> TrafficProblem:
    """The TrafficProblem (QUBO and decoder) of a planned layout, e.g. one region's demands
    with every other demand as background load."""
    return _build(graph, plan)


_TOO_LARGE_HINT = ("set aggregateToFit: true, or give fewer demands or candidatePaths")


def reduce_traffic(spec: TrafficEngineeringProblem, max_variables: int | None,
                   read_config_map: ConfigMapReader | None = None) -> TrafficProblem:
    """The QUBO of a traffic-engineering problem, aggregated to max_variables when asked."""
    graph = load_topology(spec.topology, read_config_map)
    demands = aggregate_demands(graph, spec)
    free = [d for d in demands if len(d.paths) > 1]
    pinned = [d for d in demands if len(d.paths) == 1]
    full = plan_layout(graph, free, pinned)
    notes = [f"{len(spec.demands)} demands on {graph.number_of_nodes()} nodes and "
             f"{graph.number_of_edges()} links: {len(demands)} node pairs, "
             f"{len(full.pinned)} with a single usable candidate path"]
    chosen = full
    if spec.aggregate_to_fit and max_variables is not None and full.variables > max_variables:
        pins = pin_sequence(graph, free, pinned)

        def pinned_first(k: int) -> Layout:
            return plan_layout(graph, free[:len(free) - k], [*pinned, *pins[:k]])

        aggregated = fewest_pins(lambda k: pinned_first(k).variables <= max_variables,
                                 len(free))
        chosen = pinned_first(aggregated)
        if len(chosen.stranded) > len(full.stranded):
            notes.append(f"pinning demands to fit {max_variables} variables would leave a "
                         "demand no feasible path: the problem is kept whole")
            chosen = full
        else:
            notes.append(f"{aggregated} smallest demand(s) pinned to their least-loaded "
                         f"candidate path so the QUBO fits {max_variables} variables")
    hint = _TOO_LARGE_HINT
    if spec.aggregate_to_fit and chosen is full:
        hint = ("aggregateToFit kept it whole because pinning demands would leave one no "
                "feasible path: give fewer demands, fewer candidatePaths or more capacity")
    check_variables(chosen.variables, "this traffic-engineering problem", max_variables, hint)
    problem = _build(graph, chosen)
    if not problem.free:
        notes.append("every demand is pinned: nothing left to optimise")
    problem.notes = notes + problem.notes
    return problem
