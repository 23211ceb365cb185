"""Spatial decomposition of problems wider than any QPU (issue 21): traffic engineering and
slice admission.

regions (sites or a balanced partition) -> sub-problems (QPU-sized blocks, other units fixed)
-> coordinator (rounds of block solves, reconcile, prices) -> final repair. base.Decomposable
is what the coordinator needs of a whole problem; traffic.py and slices.py give it for each
kind. reference holds the independent load check and the whole-problem classical references;
places holds where slice resources are and the independent admission check.
"""

from qbackbone.core.optimize.decompose.base import Decomposable, State, SubProblem
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
from qbackbone.core.optimize.decompose.places import AdmissionCheck, check_admission
from qbackbone.core.optimize.decompose.reference import (
    LoadCheck,
    Reference,
    annealing_reference,
    cp_sat_reference,
    ratio,
    recompute_loads,
)
from qbackbone.core.optimize.decompose.regions import Region, make_regions
from qbackbone.core.optimize.decompose.slices import SliceDecomposition
from qbackbone.core.optimize.decompose.solvers import ClassicalBlockSolver
from qbackbone.core.optimize.decompose.traffic import TrafficDecomposition

__all__ = [
    "AdmissionCheck",
    "BlockResult",
    "BlockSolver",
    "ClassicalBlockSolver",
    "Decomposable",
    "Decomposition",
    "LoadCheck",
    "Reference",
    "Region",
    "RoundRecord",
    "Settings",
    "SliceDecomposition",
    "SolvedBlock",
    "State",
    "SubProblem",
    "TrafficDecomposition",
    "annealing_reference",
    "check_admission",
    "cp_sat_reference",
    "decompose_and_solve",
    "initial_routing",
    "make_regions",
    "ratio",
    "recompute_loads",
]
