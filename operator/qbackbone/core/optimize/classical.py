"""Classical QUBO solvers: brute force, CP-SAT (exact, with a proof) and simulated annealing."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from qbackbone.core.optimize.qubo import LinearConstraint, Qubo

BRUTE_FORCE_MAX_VARIABLES = 20
BRUTE_FORCE_PREFERRED_VARIABLES = 16
_CHUNK_BITS = 16
CP_SAT_MAX_TERMS = 50_000  # about 7.5 kB each in CP-SAT: ~400 MB at this size
_CP_SAT_SCALE = 1e6  # the largest |coefficient| becomes this integer in CP-SAT's objective


@dataclass(frozen=True)
class QuboSolution:
    """An assignment, its energy, and whether it is proven optimal."""

    x: np.ndarray
    energy: float
    method: str
    proven_optimal: bool
    seconds: float
    bound: float | None = None  # CP-SAT: a lower bound on the energy (of its scaled model)


def brute_force(qubo: Qubo) -> QuboSolution:
    """Every assignment, in vectorised chunks (at most BRUTE_FORCE_MAX_VARIABLES variables)."""
    n = qubo.size
    if n > BRUTE_FORCE_MAX_VARIABLES:
        raise ValueError(f"brute force is limited to {BRUTE_FORCE_MAX_VARIABLES} variables, "
                         f"got {n}")
    start = time.perf_counter()
    shifts = np.arange(n)
    best_e, best_x = math.inf, np.zeros(n, dtype=np.int8)
    chunk = 1 << min(n, _CHUNK_BITS)
    for base in range(0, 1 << n, chunk):
        codes = np.arange(base, base + chunk, dtype=np.int64)
        xs = ((codes[:, None] >> shifts) & 1).astype(np.int8)
        energies = np.asarray(qubo.energy(xs))
        k = int(np.argmin(energies))
        if energies[k] < best_e:
            best_e, best_x = float(energies[k]), xs[k].copy()
    return QuboSolution(best_x, best_e, "bruteForce", True, time.perf_counter() - start)


def cp_sat(qubo: Qubo, time_limit: float, workers: int = 2,
           constraints: Sequence[LinearConstraint] = ()) -> QuboSolution | None:
    """Exact minimisation with OR-Tools CP-SAT; None when no assignment is found in time.

    Products x_i x_j become Booleans constrained only in the direction the sign of their
    coefficient needs. Coefficients are scaled to integers, so the proof holds for the scaled
    model; the energy reported is the exact one. `constraints` are added as hard constraints
    (None is returned when they cannot all hold).
    """
    start = time.perf_counter()
    n = qubo.size
    scale = _CP_SAT_SCALE / max(float(np.abs(qubo.linear).max(initial=0.0)),
                                float(np.abs(qubo.quadratic).max(initial=0.0)), 1e-12)
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{i}") for i in range(n)]
    objective = [round(scale * qubo.linear[i]) * x[i] for i in range(n)
                 if round(scale * qubo.linear[i]) != 0]
    for i, j, q in qubo.couplings():
        c = round(scale * q)
        if c == 0:
            continue
        y = model.new_bool_var(f"y{i}_{j}")
        if c > 0:  # minimisation pushes y down: only y >= x_i + x_j - 1 is needed
            model.add(y >= x[i] + x[j] - 1)
        else:  # minimisation pushes y up: only y <= x_i, y <= x_j are needed
            model.add_implication(y, x[i])
            model.add_implication(y, x[j])
        objective.append(c * y)
    for constraint in constraints:
        lhs = sum(a * x[i] for i, a in constraint.coefficients.items())
        if constraint.equality:
            model.add(lhs == constraint.rhs)
        else:
            model.add(lhs <= constraint.rhs)
    model.minimize(sum(objective))
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(time_limit, 0.01)
    solver.parameters.num_workers = workers
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None
    best = np.array([solver.value(v) for v in x], dtype=np.int8)
    return QuboSolution(best, float(qubo.energy(best)), "cpSat", status == cp_model.OPTIMAL,
                        time.perf_counter() - start,
                        float(solver.best_objective_bound) / scale + qubo.offset)


def solve_exact(qubo: Qubo, time_limit: float, objective: Qubo | None = None,
                constraints: Sequence[LinearConstraint] = ()) -> QuboSolution | None:
    """Brute force when tiny, else CP-SAT within the time limit.

    With `objective` and `constraints` (the penalty-free form of the same problem), CP-SAT
    solves that form, which it proves far faster; when the constraints cannot hold it solves
    the QUBO itself. Energies are always those of `qubo`. None (no proof) also when the
    CP-SAT model would hold more than CP_SAT_MAX_TERMS variables and products.
    """
    # Brute force beats CP-SAT on dense unconstrained QUBOs up to ~16 variables; with hard
    # constraints CP-SAT prunes so well that it wins above 12.
    if qubo.size <= (12 if constraints else BRUTE_FORCE_PREFERRED_VARIABLES):
        return brute_force(qubo)
    if _cp_sat_terms(qubo) > CP_SAT_MAX_TERMS:
        return None  # the model alone would take gigabytes: no proof, annealing instead
    start = time.perf_counter()
    if objective is not None and constraints and (
            _cp_sat_terms(objective) + sum(len(c.coefficients) for c in constraints)
            <= CP_SAT_MAX_TERMS):
        found = cp_sat(objective, time_limit, constraints=constraints)
        if found is not None:
            return QuboSolution(found.x, float(qubo.energy(found.x)), found.method,
                                found.proven_optimal, found.seconds, found.bound)
        time_limit = max(0.0, time_limit - (time.perf_counter() - start))
    return cp_sat(qubo, time_limit)


def _cp_sat_terms(qubo: Qubo) -> int:
    """Variables and products a CP-SAT model of the QUBO holds (each costs kilobytes)."""
    return qubo.size + int(np.count_nonzero(qubo.quadratic))


def local_search(qubo: Qubo, x: np.ndarray) -> np.ndarray:
    """Steepest single-flip descent to a local minimum."""
    current = np.asarray(x, dtype=np.int8).copy()
    if qubo.size == 0:
        return current
    # The local field is updated per flip (O(n), not O(n^2)) and recomputed exactly before
    # the search stops, so rounding never ends or prolongs it.
    sym = qubo.quadratic + qubo.quadratic.T
    field = qubo.linear + sym @ current
    exact = True
    for _ in range(10 * qubo.size + 10):
        deltas = (1.0 - 2.0 * current) * field
        k = int(np.argmin(deltas))
        if deltas[k] >= -1e-12:
            if exact:
                break
            field, exact = qubo.linear + sym @ current, True
            continue
        field += (1.0 - 2.0 * current[k]) * sym[:, k]
        current[k] ^= 1
        exact = False
    return current


def simulated_annealing(qubo: Qubo, time_limit: float, seed: int | None = None,
                        sweeps: int = 400, restarts: int = 8) -> QuboSolution:
    """Single-flip Metropolis annealing with geometric cooling, restarts until the time is up."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = qubo.size
    sym = qubo.quadratic + qubo.quadratic.T
    scale = max(float(np.abs(qubo.linear).max(initial=0.0)),
                float(np.abs(sym).max(initial=0.0)), 1e-12)
    nonzero = np.abs(np.concatenate([qubo.linear, sym.ravel()]))
    smallest = float(nonzero[nonzero > 1e-12].min(initial=scale))
    # Hot enough to cross penalty walls, cold enough to resolve the objective's finest term.
    t_hot, t_cold = 2.0 * scale, 0.05 * smallest
    best_x = np.zeros(n, dtype=np.int8)
    best_e = float(qubo.energy(best_x))
    for restart in range(restarts):
        if restart > 0 and time.perf_counter() - start > time_limit:
            break
        x = rng.integers(0, 2, n).astype(np.int8)
        field = qubo.linear + sym @ x
        for sweep in range(sweeps):
            temperature = t_hot * (t_cold / t_hot) ** (sweep / max(sweeps - 1, 1))
            order = rng.permutation(n)
            thresholds = rng.random(n)
            for i in order:
                delta = (1 - 2 * x[i]) * field[i]
                if delta <= 0 or thresholds[i] < math.exp(-delta / temperature):
                    step = 1 - 2 * x[i]
                    x[i] ^= 1
                    field += step * sym[:, i]
            if time.perf_counter() - start > time_limit:
                break
        x = local_search(qubo, x)
        energy = float(qubo.energy(x))
        if energy < best_e:
            best_e, best_x = energy, x.copy()
    return QuboSolution(best_x, best_e, "simulatedAnnealing", False, time.perf_counter() - start)
