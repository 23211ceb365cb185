"""status.result.decomposition: how a problem wider than every QPU was split and solved."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from qbackbone.api.common import ApiModel


class RegionReport(ApiModel):
    """One region: its nodes, its demands, and how its sub-QUBOs were solved."""

    name: str
    site: str | None = Field(default=None, description="The site label the region came from.")
    nodes: int
    demands: int = Field(description="Demands homed here (anchor: the middle node of the "
                         "shortest candidate path).")
    border_demands: int = Field(description="Of them, those with a candidate path leaving "
                                "the region.")
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
    congestion_before: float
    merged_overload: float = Field(description="Every proposal applied at once.")
    merged_congestion: float
    overload_after: float
    congestion_after: float
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
    ratio: float | None = Field(default=None, description="reference objective / decomposed "
                                "objective (minimised: 1 is as good, above 1 is better).")


class DecompositionReport(ApiModel):
    """Regions, rounds, per-region solvers, the reconciliation's effect and the references."""

    whole_variables: int = Field(description="Variables of the whole QUBO (no demand pinned).")
    width: int = Field(description="Widest sub-QUBO allowed (maxRegionVariables, maxVariables "
                       "and the widest QPU).")
    region_source: Literal["attribute", "partition"]
    regions: list[RegionReport]
    rounds: list[RoundReport]
    stop: str = Field(description="converged, iterations or timeBudget.")
    qpu_calls: int
    classical_calls: int
    initial_overload: float = Field(description="Every demand on its shortest path.")
    initial_congestion: float
    reconciled_overload: float
    reconciled_congestion: float
    repaired_congestion: float = Field(description="After the final repair (unchanged when the "
                                       "reconciled routing was feasible).")
    repair: str = Field(default="none", description="How the final repair made it feasible: "
                        "none (it was), greedy (demands moved off overloaded links), "
                        "cpSat(...) (CP-SAT re-routed the demands near overloaded links, or "
                        "every demand), or failed.")
    final_congestion: float = Field(description="After local search on the whole problem.")
    seconds: float
    load_check: str = Field(description="The independent recomputation of link loads from "
                            "the reported routes.")
    cp_sat: ReferenceReport | None = None
