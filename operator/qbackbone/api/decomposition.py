"""status.result.decomposition: how a problem wider than every QPU was split and solved.

Traffic engineering reports congestion (minimised) and link overload; slice admission reports
revenue (maximised) and capacity overflow (relative to each capacity). The other objective's
fields are left out.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qbackbone.api.common import ApiModel


class RegionReport(ApiModel):
    """One region: its nodes, its demands, and how its sub-QUBOs were solved."""

    name: str
    site: str | None = Field(default=None, description="The site label the region came from.")
    nodes: int
    demands: int = Field(description="Demands (slice requests) homed here; a demand's anchor "
                         "is the middle node of its shortest candidate path, a request's the "
                         "PoP carrying the largest share of its use.")
    border_demands: int = Field(description="Of them, those with a candidate path leaving "
                                "the region (requests using a border resource).")
    subproblems: int = Field(description="Sub-QUBOs solved over every round.")
    max_variables: int = Field(description="Widest of its sub-QUBOs (qubits).")
    paths: list[str] = Field(default_factory=list, description="SingleQPU and/or Classical.")
    solvers: list[str] = Field(default_factory=list)
    qpus: list[str] = Field(default_factory=list)
    shots: int = 0
    noisy: bool = Field(default=False, description="A noisy QPU sampled some sub-QUBO.")
    mitigation: list[str] = Field(default_factory=list, description="Mitigation applied to "
                                  "noisy samples (e.g. readout), per QPU.")


class RoundReport(ApiModel):
    """One coordinator round: regional proposals against the previous routing, reconciled."""

    index: int
    subproblems: int
    overload_before: float
    congestion_before: float | None = None
    revenue_before: float | None = None
    merged_overload: float = Field(description="Every proposal applied at once.")
    merged_congestion: float | None = None
    merged_revenue: float | None = None
    overload_after: float
    congestion_after: float | None = None
    revenue_after: float | None = None
    strategy: Literal["merged", "greedy", "none"] = Field(
        description="merged: all proposals together were best; greedy: accepted one at a "
        "time, best first, while each improved; none: no proposal improved.")
    accepted: int
    rejected: int
    priced_links: int = Field(description="Shared links carrying a capacity price (reserved "
                              "volume) into the next round.")
    seconds: float


class ReferenceReport(ApiModel):
    """A classical answer to the whole problem in the same time."""

    method: str
    objective: float | None = None
    feasible: bool
    bound: float | None = Field(default=None, description="CP-SAT's lower bound on the optimum.")
    proven: bool = False
    seconds: float
    ratio: float | None = Field(default=None, description="reference / decomposed objective "
                                "when minimised (congestion), decomposed / reference when "
                                "maximised (revenue): 1 is as good, above 1 is better.")


class DecompositionReport(ApiModel):
    """Regions, rounds, per-region solvers, the reconciliation's effect and the references."""

    kind: Literal["trafficEngineering", "sliceAdmission"] = "trafficEngineering"
    whole_variables: int = Field(description="Variables of the whole QUBO (no demand pinned).")
    width: int = Field(description="Widest sub-QUBO allowed (maxRegionVariables, maxVariables "
                       "and the widest QPU).")
    region_source: Literal["attribute", "partition"]
    regions: list[RegionReport]
    rounds: list[RoundReport]
    stop: str = Field(description="converged, iterations or timeBudget.")
    qpu_calls: int
    classical_calls: int
    initial_overload: float = Field(description="Every demand on its shortest path; no slice "
                                    "admitted.")
    initial_congestion: float | None = None
    initial_revenue: float | None = None
    reconciled_overload: float
    reconciled_congestion: float | None = None
    reconciled_revenue: float | None = None
    repaired_congestion: float | None = Field(
        default=None, description="After the final repair (unchanged when the reconciled "
        "routing was feasible).")
    repaired_revenue: float | None = None
    repair: str = Field(default="none", description="How the final repair made it feasible: "
                        "none (it was), greedy (demands moved off overloaded links; the admitted "
                        "slices earning least per unit of an overflowing capacity dropped), "
                        "cpSat(...) (CP-SAT re-decided the demands or slices near overloaded "
                        "resources, or every one), or failed.")
    final_congestion: float | None = Field(default=None, description="After local search on "
                                           "the whole problem.")
    final_revenue: float | None = None
    border_resources: list[str] = Field(
        default_factory=list, description="Slice admission: the capacities shared by requests "
        "of two regions (or lying in two), reconciled by the coordinator.")
    unservable: list[str] = Field(
        default_factory=list, description="Slice admission: requests rejected before the rounds "
        "because they cannot fit on their own, with the reason.")
    seconds: float
    load_check: str = Field(description="The independent recomputation of link loads from "
                            "the reported routes (of every capacity's use from the admitted "
                            "slices).")
    cp_sat: ReferenceReport | None = None
