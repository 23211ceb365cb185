"""The reduce phase of a problem job: spec.problem to a ReducedProblem (a QUBO and its decoder)."""

from __future__ import annotations

import math

import numpy as np

from qbackbone.api.problem import ProblemSpec, QuboProblem
from qbackbone.core.optimize.limits import MAX_COEFFICIENT_SUM, check_variables
from qbackbone.core.optimize.problem import PlainQubo, ProblemError, ReducedProblem
from qbackbone.core.optimize.qubo import Qubo, QuboBuilder
from qbackbone.core.optimize.slices import reduce_slices
from qbackbone.core.optimize.topology import ConfigMapReader
from qbackbone.core.optimize.traffic import reduce_traffic


def qubo_from_spec(spec: QuboProblem, max_variables: int | None = None) -> Qubo:
    """The QUBO of an explicit binary or Ising model; its size is checked before it is built."""
    hint = "split the model, or fix variables you already know"
    if spec.variables is not None:
        check_variables(len(spec.variables), "qubo.variables", max_variables, hint)
    used = set(spec.linear) | {t.i for t in spec.quadratic} | {t.j for t in spec.quadratic}
    names = list(spec.variables) if spec.variables is not None else sorted(used)
    check_variables(len(names), "this qubo", max_variables, hint)
    if len(set(names)) != len(names):
        raise ProblemError("qubo.variables: every name must appear once")
    unknown = sorted(used - set(names))
    if unknown:
        raise ProblemError(f"qubo: variable(s) {', '.join(unknown[:10])} are not in "
                           "qubo.variables")
    if not names:
        raise ProblemError("qubo: no variables: give qubo.linear or qubo.quadratic terms")
    values = list(spec.linear.values()) + [t.value for t in spec.quadratic] + [spec.offset]
    if not all(math.isfinite(v) for v in values):
        raise ProblemError("qubo: coefficients must be finite numbers")
    total = sum(abs(v) for v in values)  # inf when it overflows
    if total > MAX_COEFFICIENT_SUM:
        raise ProblemError(f"qubo: the coefficients' absolute values add up to {total:g}, above "
                           f"the limit of {MAX_COEFFICIENT_SUM:g}: scale qubo.linear, "
                           "qubo.quadratic and qubo.offset down (the optimum does not change)")
    for t in spec.quadratic:
        if t.i == t.j and spec.form == "ising":
            raise ProblemError(f"qubo: an Ising coupling needs two different spins ({t.i})")
    index = {n: k for k, n in enumerate(names)}
    if spec.form == "ising":
        h = np.zeros(len(names))
        for n, v in spec.linear.items():
            h[index[n]] += v
        coupling: dict[tuple[int, int], float] = {}
        for t in spec.quadratic:
            key = (min(index[t.i], index[t.j]), max(index[t.i], index[t.j]))
            coupling[key] = coupling.get(key, 0.0) + t.value
        return Qubo.from_ising(names, list(h), coupling, spec.offset)
    builder = QuboBuilder()
    for n in names:
        builder.variable(n)
    builder.add_constant(spec.offset)
    for n, v in spec.linear.items():
        builder.add_linear(index[n], v)
    for t in spec.quadratic:
        builder.add_quadratic(index[t.i], index[t.j], t.value)
    return builder.build()


def reduce_problem(spec: ProblemSpec, max_variables: int | None,
                   read_config_map: ConfigMapReader | None = None) -> ReducedProblem:
    """Build the QUBO; ProblemError when the problem cannot be reduced."""
    if not spec.is_qubo:  # detect and predict are not QUBOs (core/pipeline/detect, forecast)
        raise ProblemError(f"spec.problem.{spec.kind} runs in `qbackbone run`; the operator "
                           "does not run detect or predict jobs yet")
    if spec.qubo is not None:
        qubo = qubo_from_spec(spec.qubo, max_variables)
        return PlainQubo(qubo=qubo, notes=[f"explicit {spec.qubo.form} model, "
                                           f"{qubo.size} variables"])
    if spec.traffic_engineering is not None:
        return reduce_traffic(spec.traffic_engineering, max_variables, read_config_map)
    assert spec.slice_admission is not None
    return reduce_slices(spec.slice_admission, max_variables)
