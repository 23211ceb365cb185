"""Errors of the cutting engine; both are ValueErrors with a message a person can act on."""

from __future__ import annotations


class CutPlanningError(ValueError):
    """No cut plan exists within the policy limits (qubits, depth, overhead, subcircuits, kinds)."""


class CutExecutionError(ValueError):
    """Counts handed back do not match what the plan asked for."""
