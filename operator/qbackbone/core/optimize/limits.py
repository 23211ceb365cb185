"""Bounds on problem inputs, each checked before the work it bounds.

A topology document is measured before it is parsed, the graph before paths are searched,
the demands before paths are searched for them, and a QUBO's variable count (and so its
dense n x n matrices) before any matrix is allocated. Quantities (volumes, capacities,
revenues, coefficients) must be finite, positive where a capacity or a volume is meant, and
within [MIN_QUANTITY, MAX_QUANTITY] so that squared utilisations and penalty weights stay
finite and exact enough in double precision.
"""

from __future__ import annotations

import math

from qbackbone.core.optimize.problem import ProblemError, ProblemTooLarge

MAX_DOCUMENT_CHARS = 4 * 1024 * 1024  # a ConfigMap holds at most 1 MiB; Topology Zoo < 1 MB
MAX_NODES = 2_000  # the largest Topology Zoo network has 754
MAX_LINKS = 10_000
MAX_DEMAND_PAIRS = 1_000  # each costs a k-shortest-paths search (a full mesh of 45 PoPs)
MAX_QUBO_VARIABLES = 1_024  # every QUBO matrix is dense: n^2 doubles (8 MiB here)
MAX_QUANTITY = 1e15  # beyond 2^53 doubles stop counting whole units
MIN_QUANTITY = 1e-9
MAX_COEFFICIENT_SUM = 1e15


def dense_mib(variables: int) -> float:
    """Memory of one dense variables x variables matrix of doubles, in MiB."""
    return variables * variables * 8 / 2**20


def check_variables(count: int, what: str, max_variables: int | None, hint: str) -> None:
    """ProblemTooLarge when a QUBO of ``count`` variables is beyond what may be built."""
    if count <= MAX_QUBO_VARIABLES:
        return
    policy = (f"the policy's optimization.maxVariables ({max_variables}) only decides which "
              "QUBOs go to a QPU" if max_variables is not None else "")
    raise ProblemTooLarge(
        f"{what} needs {count:,} QUBO variables (a dense matrix of {dense_mib(count):,.0f} "
        f"MiB); at most {MAX_QUBO_VARIABLES:,} variables are solved"
        + (f" ({policy})" if policy else "") + f": {hint}")


def check_count(count: int, limit: int, what: str, hint: str) -> None:
    """ProblemTooLarge when ``count`` of something exceeds ``limit``."""
    if count > limit:
        raise ProblemTooLarge(f"{what}: {count:,} exceeds the limit of {limit:,}; {hint}")


def check_quantity(where: str, value: object, *, zero_ok: bool = False) -> float:
    """A finite number in [MIN_QUANTITY, MAX_QUANTITY] (or 0 when ``zero_ok``), as a float.

    ``where`` names the field for the message (e.g. "demands[2].volume").
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProblemError(f"{where} is {_show(value)}, not a number: give a positive number")
    try:
        number = float(value)
    except OverflowError:  # an integer beyond the float range
        number = math.inf
    if not math.isfinite(number):
        raise ProblemError(f"{where} is {_show(value)}: give a finite number")
    if number == 0 and zero_ok:
        return 0.0
    if number <= 0:
        floor = "zero or more" if zero_ok else "positive"
        raise ProblemError(f"{where} is {number:g}: it must be {floor}")
    if number > MAX_QUANTITY:
        raise ProblemError(f"{where} is {number:g}, above the limit of {MAX_QUANTITY:g}: express "
                           "volumes and capacities in a larger unit (e.g. Mbit/s, not bit/s)")
    if number < MIN_QUANTITY:
        raise ProblemError(f"{where} is {number:g}, below the limit of {MIN_QUANTITY:g}: express "
                           "volumes and capacities in a smaller unit")
    return number


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
