"""A small quantum reservoir regressor for forecasting.

Input at time t: the seasonal differences d = y - y(-season) at lags 1..q, scaled to unit
spread. Each is encoded as RY(pi/2 * tanh(d)) on its own qubit, then ``LAYERS`` fixed random
layers (RY/RZ, a CX ring; seeded, not trained) mix them. The readout features are <Z_i> and
<Z_i Z_j> (neighbours) of the exact statevector (an ideal reservoir; on a QPU each would be
an Estimator observable). A ridge regression maps them, with the lags themselves, to the next
seasonal difference; forecasts recurse, adding back y(t - season). Intervals: in-sample
residual sd times sqrt(k).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qiskit import QuantumCircuit
from qiskit.quantum_info import Operator

from qbackbone.core.predict.methods import Forecast

LAYERS = 3
RIDGE = 1e-2


def _reservoir(qubits: int, seed: int) -> QuantumCircuit:
    rng = np.random.default_rng(seed)
    qc = QuantumCircuit(qubits)
    for _ in range(LAYERS):
        for i in range(qubits):
            qc.ry(float(rng.uniform(0, 2 * np.pi)), i)
            qc.rz(float(rng.uniform(0, 2 * np.pi)), i)
        for i in range(qubits):
            qc.cx(i, (i + 1) % qubits)
    return qc


def _z_signs(qubits: int) -> np.ndarray:
    index = np.arange(2 ** qubits)
    return np.array([1 - 2 * ((index >> i) & 1) for i in range(qubits)], dtype=float)


@dataclass
class QuantumReservoir:
    """Reservoir features + ridge readout, on seasonal differences."""

    season: int
    qubits: int = 6
    seed: int = 0
    name: str = "quantumReservoir"

    def __post_init__(self) -> None:
        self.circuit = _reservoir(self.qubits, self.seed)
        self.unitary = np.asarray(Operator(self.circuit).data)
        self.signs = _z_signs(self.qubits)
        self.limit = np.inf

    def features(self, lags: np.ndarray) -> np.ndarray:
        """Readout of the reservoir for rows of scaled lags (rows x qubits)."""
        angles = np.pi / 2 * np.tanh(lags)
        out = []
        for row in angles:
            single = [np.array([np.cos(a / 2), np.sin(a / 2)]) for a in row]
            state = single[-1]
            for s in reversed(single[:-1]):  # qubit 0 rightmost
                state = np.kron(state, s)
            probs = np.abs(self.unitary @ state) ** 2
            z = self.signs @ probs
            zz = [(self.signs[i] * self.signs[(i + 1) % self.qubits]) @ probs
                  for i in range(self.qubits)]
            out.append(np.concatenate([z, zz]))
        return np.array(out)

    def _design(self, diffs: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        q = self.qubits
        lags = np.array([diffs[t - q:t][::-1] for t in range(q, len(diffs))]) / scale
        design = np.hstack([self.features(lags), lags, np.ones((len(lags), 1))])
        return design, diffs[q:]

    def _fit(self, history: np.ndarray) -> tuple[np.ndarray, float, float]:
        diffs = history[self.season:] - history[:-self.season]
        scale = float(diffs.std()) or 1.0
        self.limit = 3.0 * scale  # recursion never strays beyond what training saw
        design, target = self._design(diffs, scale)
        gram = design.T @ design + RIDGE * len(design) * np.eye(design.shape[1])
        weights = np.linalg.solve(gram, design.T @ target)
        resid = target - design @ weights
        return weights, scale, float(resid.std())

    def _predict_diff(self, recent: np.ndarray, weights: np.ndarray, scale: float) -> float:
        lags = recent[::-1][None, :] / scale
        design = np.hstack([self.features(lags), lags, np.ones((1, 1))])
        return float(np.clip((design @ weights)[0], -self.limit, self.limit))

    def forecast(self, history: np.ndarray, horizon: int) -> Forecast:
        weights, scale, sd = self._fit(history)
        series = list(history)
        diffs = list(history[self.season:] - history[:-self.season])
        for _ in range(horizon):
            d = self._predict_diff(np.array(diffs[-self.qubits:]), weights, scale)
            series.append(series[-self.season] + d)
            diffs.append(d)
        k = np.arange(1, horizon + 1)
        return Forecast(np.array(series[len(history):]), sd * np.sqrt(k))

    def one_step(self, history: np.ndarray, future: np.ndarray) -> np.ndarray:
        weights, scale, _ = self._fit(history)
        series = np.concatenate([history, future])
        out = []
        for t in range(len(history), len(series)):
            diffs = series[self.season:t] - series[:t - self.season]
            d = self._predict_diff(diffs[-self.qubits:], weights, scale)
            out.append(series[t - self.season] + d)
        return np.array(out)
