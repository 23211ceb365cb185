"""Circuits as text: base64 QPY (exact, keeps layouts and parameters), for cut plans and
ConfigMaps alike."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from qiskit import QuantumCircuit, qpy


def circuits_to_b64(circuits: Sequence[QuantumCircuit]) -> str:
    """Base64 QPY of a list of circuits."""
    buf = io.BytesIO()
    qpy.dump(list(circuits), buf)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def circuits_from_b64(data: str) -> list[QuantumCircuit]:
    """Inverse of :func:`circuits_to_b64`."""
    return list(qpy.load(io.BytesIO(base64.b64decode(data))))
