"""Circuit cutting for jobs larger than any single QPU (issue 4).

Pure library: :func:`plan_cuts` chooses gate / LO-wire / LOCC-wire cuts against a QPU fleet
and returns a serialisable :class:`CutPlan`; :func:`execute_plan` runs it through a
:class:`SubcircuitRunner` (measurement before preparation) and reconstructs expectation values
with standard errors. :class:`AerRunner` is the ideal seeded reference runner.
"""

from .capacity import QPUCapacity
from .errors import CutExecutionError, CutPlanningError
from .execute import execute_plan
from .lo import reconstruct as reconstruct_lo
from .locc import LoccExecution
from .models import (
    BundleSpec,
    CandidateSummary,
    CutPlan,
    CutResult,
    CutSpec,
    SubcircuitRecord,
    SubcircuitSpec,
)
from .mub import locc_channels, locc_gamma, pauli_partition
from .planner import plan_cuts, unitary_part
from .runner import AerRunner, SubcircuitRunner, merge_counts

__all__ = [
    "AerRunner",
    "BundleSpec",
    "CandidateSummary",
    "CutExecutionError",
    "CutPlan",
    "CutPlanningError",
    "CutResult",
    "CutSpec",
    "LoccExecution",
    "QPUCapacity",
    "SubcircuitRecord",
    "SubcircuitRunner",
    "SubcircuitSpec",
    "execute_plan",
    "locc_channels",
    "locc_gamma",
    "merge_counts",
    "pauli_partition",
    "plan_cuts",
    "reconstruct_lo",
    "unitary_part",
]
