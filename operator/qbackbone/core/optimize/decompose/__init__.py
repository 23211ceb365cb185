"""Spatial decomposition of traffic-engineering problems wider than any QPU (issue 21).

regions (sites or a balanced partition) -> subproblems (QPU-sized blocks, other flows fixed)
-> coordinator (rounds of block solves, reconcile, prices) -> final repair; reference holds
the independent load check and the whole-problem classical references.
"""

from qbackbone.core.optimize.decompose.coordinator import (
    BlockResult,
    BlockSolver,
    Decomposition,
    RoundRecord,
    Settings,
    SolvedBlock,
    decompose_and_solve,
    initial_routing,
)
from qbackbone.core.optimize.decompose.reference import (
    LoadCheck,
    Reference,
    annealing_reference,
    cp_sat_reference,
    ratio,
    recompute_loads,
)
from qbackbone.core.optimize.decompose.regions import Region, make_regions
from qbackbone.core.optimize.decompose.solvers import ClassicalBlockSolver
from qbackbone.core.optimize.decompose.subproblems import SubProblem

__all__ = [
    "BlockResult",
    "BlockSolver",
    "ClassicalBlockSolver",
    "Decomposition",
    "LoadCheck",
    "Reference",
    "Region",
    "RoundRecord",
    "Settings",
    "SolvedBlock",
    "SubProblem",
    "annealing_reference",
    "cp_sat_reference",
    "decompose_and_solve",
    "initial_routing",
    "make_regions",
    "ratio",
    "recompute_loads",
]
