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
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import islice, pairwise
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
from qbackbone.core.optimize.problem import ProblemError, ReducedProblem, Sense
from qbackbone.core.optimize.qubo import (
    LinearConstraint,
    QuboBuilder,
    SlackRow,
    objective_range,
)
from qbackbone.core.optimize.topology import ConfigMapReader, link_name, load_topology

SLACK_BITS = 3
Edge = tuple[str, str]


@dataclass(frozen=True)
class AggregatedDemand:
    """Demands between one unordered node pair, summed, with their candidate paths."""

    source: str
    target: str
    volume: float
    paths: list[list[str]]


def _edges(path: list[str]) -> list[Edge]:
    return [tuple(sorted((a, b))) for a, b in pairwise(path)]  # type: ignore[misc]


def candidate_paths(graph: nx.Graph, source: str, target: str, k: int,
                    max_stretch: float) -> list[list[str]]:
    """The k shortest simple paths by hops, pruned to max_stretch times the shortest."""
    paths = list(islice(nx.shortest_simple_paths(graph, source, target), k))
    shortest = len(paths[0]) - 1
    return [p for p in paths if len(p) - 1 <= max_stretch * shortest]


def aggregate_demands(graph: nx.Graph, spec: TrafficEngineeringProblem) -> list[AggregatedDemand]:
    """Merge demands of the same unordered pair; find candidate paths; largest first."""
    volume: defaultdict[tuple[str, str], float] = defaultdict(float)
    for d in spec.demands:
        for node in (d.source, d.target):
            if node not in graph:
                raise ProblemError(f"demand {d.source}->{d.target}: node {node!r} is not in the "
                                   "topology")
        if d.source == d.target:
            raise ProblemError(f"demand {d.source}->{d.target}: source and target are the same")
        pair = (d.source, d.target) if d.source < d.target else (d.target, d.source)
        volume[pair] += d.volume
    out = []
    for (s, t), v in volume.items():
        if not nx.has_path(graph, s, t):
            raise ProblemError(f"demand {s}<->{t}: no path in the topology")
        out.append(AggregatedDemand(s, t, v, candidate_paths(graph, s, t, spec.candidate_paths,
                                                             spec.max_stretch)))
    return sorted(out, key=lambda d: (-d.volume, d.source, d.target))


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
            for e in _edges(demand.paths[p]):
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


def _background(pinned: list[AggregatedDemand]) -> dict[Edge, float]:
    load: dict[Edge, float] = {}
    for demand in pinned:
        for e in _edges(demand.paths[0]):
            load[e] = load.get(e, 0.0) + demand.volume
    return load


def prune_paths(graph: nx.Graph, free: list[AggregatedDemand], pinned: list[AggregatedDemand]
                ) -> tuple[list[AggregatedDemand], list[AggregatedDemand], list[AggregatedDemand]]:
    """Drop candidate paths the demand alone would overload (given the pinned background).

    A demand left with one path is pinned to it; repeated until nothing changes. Returns the
    free and pinned demands, and the stranded ones: pinned to their least-overloaded path
    because every candidate overloads on its own.
    """
    stranded: list[AggregatedDemand] = []
    changed = True
    while changed:
        changed = False
        background = _background(pinned)
        kept_free = []
        for d in free:
            def overload(path: list[str], d: AggregatedDemand = d,
                         background: dict[Edge, float] = background) -> float:
                return max(background.get(e, 0.0) + d.volume - graph.edges[e]["capacity"]
                           for e in _edges(path))
            fitting = [p for p in d.paths if overload(p) <= 0]
            if not fitting:
                fitting = [min(d.paths, key=overload)]
                stranded.append(d)
            if len(fitting) == len(d.paths):
                kept_free.append(d)
                continue
            changed = True
            narrowed = AggregatedDemand(d.source, d.target, d.volume, fitting)
            (kept_free if len(fitting) > 1 else pinned).append(narrowed)
        free = kept_free
    return free, pinned, stranded


def _build(graph: nx.Graph, free: list[AggregatedDemand],
           pinned: list[AggregatedDemand]) -> TrafficProblem:
    free, pinned, stranded = prune_paths(graph, list(free), list(pinned))
    notes = [f"demand {d.source}<->{d.target} ({d.volume:g}) overloads every candidate path "
             "on its own" for d in stranded]
    background = _background(pinned)
    names = [[f"x[{d.source}-{d.target}][{p}]" for p in range(len(d.paths))] for d in free]
    builder, congestion = QuboBuilder(), QuboBuilder()
    variable_of = [[builder.variable(n) for n in row] for row in names]
    owner = {i: d for d, idx in enumerate(variable_of) for i in idx}
    for row in names:
        for n in row:
            congestion.variable(n)
    # Congestion: per link, (background + sum v x)^2 / cap^2.
    on_link: defaultdict[Edge, list[tuple[int, float]]] = defaultdict(list)
    for demand, idx in zip(free, variable_of, strict=True):
        for p, i in enumerate(idx):
            for e in _edges(demand.paths[p]):
                on_link[e].append((i, demand.volume))
    for e in set(on_link) | set(background):
        cap = graph.edges[e]["capacity"]
        congestion.add_squared([(i, v / cap) for i, v in on_link.get(e, [])],
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
    for e in sorted(on_link):
        room = graph.edges[e]["capacity"] - background.get(e, 0.0)
        users = on_link[e]
        worst = sum(max((v for i, v in users if owner[i] == d), default=0.0)
                    for d in range(len(free)))
        if worst <= room:
            continue
        cross = [(a, b) for k, a in enumerate(users) for b in users[k + 1:]
                 if owner[a[0]] != owner[b[0]]]
        if all(a[1] + b[1] > room for a, b in cross):
            # At most one demand fits: a penalty per pair, no slack variables needed.
            for (i, _), (j, _) in cross:
                builder.add_quadratic(i, j, weight)
                constraints.append(LinearConstraint({i: 1, j: 1}, 1, equality=False))
            pairwise += 1
            continue
        limit = (1 << SLACK_BITS) - 1
        unit = room / limit
        units = {i: math.ceil(v / unit - 1e-9) for i, v in users}
        rows.append(builder.add_capacity(link_name(*e), units, limit, weight))
        constraints.append(rows[-1].constraint)
    if rows or pairwise:
        notes.append(f"capacity penalties on {len(rows) + pairwise} link(s): {pairwise} "
                     f"at-most-one, {len(rows)} with {SLACK_BITS} slack bits")
    qubo = builder.build()
    return TrafficProblem(qubo=qubo, notes=notes, objective_qubo=objective.widened(qubo.variables),
                          constraints=constraints, graph=graph, free=free,
                          pinned=pinned, variable_of=variable_of, capacity_rows=rows,
                          background=background, stranded=stranded)


def _pin(graph: nx.Graph, demand: AggregatedDemand,
         pinned: list[AggregatedDemand]) -> AggregatedDemand:
    """The demand on the candidate path that adds least overload, then congestion, to the
    background of the demands pinned so far."""
    background = _background(pinned)

    def cost(path: list[str]) -> tuple[float, float]:
        loads = [(background.get(e, 0.0) + demand.volume) / graph.edges[e]["capacity"]
                 for e in _edges(path)]
        return (sum(max(0.0, u - 1.0) for u in loads), sum(u * u for u in loads))

    return AggregatedDemand(demand.source, demand.target, demand.volume,
                            [min(demand.paths, key=cost)])


def reduce_traffic(spec: TrafficEngineeringProblem, max_variables: int | None,
                   read_config_map: ConfigMapReader | None = None) -> TrafficProblem:
    """The QUBO of a traffic-engineering problem, aggregated to max_variables when asked."""
    graph = load_topology(spec.topology, read_config_map)
    demands = aggregate_demands(graph, spec)
    free = [d for d in demands if len(d.paths) > 1]
    pinned = [d for d in demands if len(d.paths) == 1]
    problem = _build(graph, free, pinned)
    notes = [f"{len(spec.demands)} demands on {graph.number_of_nodes()} nodes and "
             f"{graph.number_of_edges()} links: {len(demands)} node pairs, "
             f"{len(problem.pinned)} with a single usable candidate path"]
    full, aggregated = problem, 0
    if spec.aggregate_to_fit and max_variables is not None:
        while problem.qubo.size > max_variables and free:
            pinned = [*pinned, _pin(graph, free.pop(), pinned)]  # the smallest free demand
            aggregated += 1
            problem = _build(graph, free, pinned)
        if len(problem.stranded) > len(full.stranded):
            notes.append(f"pinning demands to fit {max_variables} variables would leave a "
                         "demand no feasible path: the problem is kept whole")
            problem = full
        elif aggregated:
            notes.append(f"{aggregated} smallest demand(s) pinned to their least-loaded "
                         f"candidate path so the QUBO fits {max_variables} variables")
    if not problem.free:
        notes.append("every demand is pinned: nothing left to optimise")
    problem.notes = notes + problem.notes
    return problem
