"""QAOA for a QUBO: the circuit, an exact small simulator, and how the angles are chosen.

The cost Hamiltonian is the QUBO's Ising form divided by its largest coefficient, so angles
transfer between instances of one problem class. Angles come from the template registry
(data/qaoa-templates.yaml, tuned by benchmarks/optimize/tune_qaoa_templates.py) when one fits
the class, depth and size; otherwise a short COBYLA run on the exact simulator picks them,
starting from a linear ramp.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import yaml
from qiskit import QuantumCircuit
from scipy.optimize import minimize

from qbackbone.core.optimize.qubo import Qubo

SIMULATE_MAX_QUBITS = 20
OPTIMISER_ITERATIONS = 60
RAMP_SCALE = 0.8


@dataclass(frozen=True)
class Angles:
    """QAOA angles and where they came from (template, optimised, ramp)."""

    gammas: tuple[float, ...]
    betas: tuple[float, ...]
    source: str

    @property
    def layers(self) -> int:
        """QAOA depth p."""
        return len(self.gammas)


@dataclass(frozen=True)
class CostHamiltonian:
    """Normalised Ising cost: sum h_i Z_i + sum J_ij Z_i Z_j (Z = +1 on |0>)."""

    h: np.ndarray
    coupling: dict[tuple[int, int], float]
    scale: float

    @staticmethod
    def of(qubo: Qubo) -> CostHamiltonian:
        """The cost Hamiltonian of a QUBO, normalised to a largest |coefficient| of 1."""
        h, coupling, _ = qubo.to_ising()
        largest = max([float(np.abs(h).max(initial=0.0))] + [abs(v) for v in coupling.values()])
        scale = largest if largest > 1e-12 else 1.0
        return CostHamiltonian(h / scale, {k: v / scale for k, v in coupling.items()}, scale)

    def diagonal(self, n: int) -> np.ndarray:
        """The cost of every basis state (index bit k is qubit k)."""
        codes = np.arange(1 << n)
        z = 1.0 - 2.0 * ((codes[:, None] >> np.arange(n)) & 1)
        out = z @ self.h
        for (i, j), v in self.coupling.items():
            out += v * z[:, i] * z[:, j]
        return np.asarray(out)


def qaoa_circuit(qubo: Qubo, angles: Angles) -> QuantumCircuit:
    """|+>^n, then p layers of exp(-i gamma C) and exp(-i beta sum X); all qubits measured."""
    n = qubo.size
    cost = CostHamiltonian.of(qubo)
    circuit = QuantumCircuit(n, n, name="qaoa")
    circuit.h(range(n))
    for gamma, beta in zip(angles.gammas, angles.betas, strict=True):
        for (i, j), v in sorted(cost.coupling.items()):
            circuit.rzz(2.0 * gamma * v, i, j)
        for i, v in enumerate(cost.h):
            if abs(v) > 1e-12:
                circuit.rz(2.0 * gamma * float(v), i)
        circuit.rx(2.0 * beta, range(n))
    circuit.measure(range(n), range(n))
    return circuit


def qaoa_state(diagonal: np.ndarray, n: int, gammas: np.ndarray,
               betas: np.ndarray) -> np.ndarray:
    """The exact QAOA statevector (the same unitary as qaoa_circuit, up to a global phase)."""
    state = np.full(1 << n, (1 << n) ** -0.5, dtype=complex)
    for gamma, beta in zip(gammas, betas, strict=True):
        state = state * np.exp(-1j * gamma * diagonal)
        c, s = np.cos(beta), -1j * np.sin(beta)
        tensor = state.reshape([2] * n)
        for axis in range(n):
            a = np.take(tensor, 0, axis=axis)
            b = np.take(tensor, 1, axis=axis)
            tensor = np.stack([c * a + s * b, s * a + c * b], axis=axis)
        state = tensor.reshape(-1)
    return state


def expected_cost(diagonal: np.ndarray, n: int, gammas: np.ndarray, betas: np.ndarray) -> float:
    """<C> of the QAOA state."""
    state = qaoa_state(diagonal, n, gammas, betas)
    return float(np.real(np.vdot(state, diagonal * state)))


def linear_ramp(layers: int) -> Angles:
    """Annealing-like angles: gamma grows and |beta| shrinks across the layers.

    The betas are negative: |+>^n is the ground state of -sum X, so exp(-i beta sum X) with
    beta < 0 (and gamma > 0) is a Trotterised anneal towards the MINIMUM of C. With beta > 0
    the same schedule anneals towards the maximum (measured: worse than random angles).
    """
    t = (np.arange(layers) + 0.5) / layers
    return Angles(tuple(RAMP_SCALE * t), tuple(-RAMP_SCALE * (1 - t)), "linearRamp")


@cache
def _templates() -> list[dict[str, Any]]:
    text = resources.files("qbackbone.core.optimize").joinpath(
        "data/qaoa-templates.yaml").read_text()
    return list(yaml.safe_load(text)["templates"])


def template_for(kind: str, layers: int, variables: int) -> Angles | None:
    """The registry's angles for this problem class and depth, if tuned for this size."""
    for entry in _templates():
        if (entry["kind"] == kind and entry["layers"] == layers
                and int(entry["minVariables"]) <= variables <= int(entry["maxVariables"])):
            return Angles(tuple(entry["gammas"]), tuple(entry["betas"]),
                          f"template:{kind}/p{layers}")
    return None


def optimise_angles(qubo: Qubo, layers: int, start: Angles | None = None,
                    iterations: int = OPTIMISER_ITERATIONS) -> Angles:
    """Minimise <C> on the exact simulator (COBYLA), from `start` or a linear ramp."""
    n = qubo.size
    diagonal = CostHamiltonian.of(qubo).diagonal(n)
    initial = start or linear_ramp(layers)
    x0 = np.array(initial.gammas + initial.betas)

    def cost(v: np.ndarray) -> float:
        return expected_cost(diagonal, n, v[:layers], v[layers:])

    best = minimize(cost, x0, method="COBYLA", options={"maxiter": iterations, "rhobeg": 0.2})
    return Angles(tuple(float(g) for g in best.x[:layers]),
                  tuple(float(b) for b in best.x[layers:]), "optimised")


def choose_angles(qubo: Qubo, kind: str, layers: int) -> Angles:
    """Template when one fits; else optimised on the simulator when small; else a ramp."""
    template = template_for(kind, layers, qubo.size)
    if template is not None:
        return template
    if qubo.size <= SIMULATE_MAX_QUBITS:
        return optimise_angles(qubo, layers)
    return linear_ramp(layers)
