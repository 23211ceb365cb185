"""Telemetry as the detect and predict primitives read it: series on a regular time grid."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qbackbone.api.telemetry import InjectedAnomaly


@dataclass
class Telemetry:
    """Per-link utilisation and per-node traffic, one row per time step.

    ``link_values`` is steps x links (utilisation, 0..1+ for generated telemetry; whatever
    unit a CSV carries), ``node_values`` steps x nodes (traffic in the demands' unit; empty
    for CSV input). ``labels`` marks steps inside an injected or labelled anomaly (None:
    unlabelled); ``link_labels`` (steps x links) which links each anomaly involves.
    """

    step_minutes: int
    links: list[str]
    link_values: np.ndarray
    nodes: list[str] = field(default_factory=list)
    node_values: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    labels: np.ndarray | None = None
    link_labels: np.ndarray | None = None
    anomalies: list[InjectedAnomaly] = field(default_factory=list)
    source: str = "csv"

    @property
    def steps(self) -> int:
        """Number of time steps."""
        return int(self.link_values.shape[0])

    @property
    def steps_per_day(self) -> int:
        """Samples per day (at least 1)."""
        return max(1, round(24 * 60 / self.step_minutes))

    def series(self, which: str) -> tuple[list[str], np.ndarray]:
        """Names and values (steps x series) of the links or the nodes."""
        if which == "nodes" and self.nodes:
            return self.nodes, self.node_values
        return self.links, self.link_values
