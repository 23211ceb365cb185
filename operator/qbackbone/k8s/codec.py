"""What travels through ConfigMaps: circuits as base64 QPY, the rest as JSON or YAML."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

from qiskit import QuantumCircuit, qpy

# The API server refuses a ConfigMap whose data exceeds 1 MiB; keep room for metadata.
CONFIGMAP_DATA_LIMIT = 1024 * 1024 - 16 * 1024


class TooLarge(ValueError):
    """An object would exceed the 1 MiB ConfigMap limit."""


def circuits_to_text(circuits: Sequence[QuantumCircuit]) -> str:
    """Circuits as one base64 QPY string (layouts and parameters survive)."""
    buffer = io.BytesIO()
    qpy.dump(list(circuits), buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def circuits_from_text(text: str) -> list[QuantumCircuit]:
    """The inverse of :func:`circuits_to_text`."""
    return list(qpy.load(io.BytesIO(base64.b64decode(text))))


def data_size(data: Mapping[str, str]) -> int:
    """Bytes a ConfigMap's data counts against the limit."""
    return sum(len(k.encode()) + len(v.encode()) for k, v in data.items())


def check_size(data: Mapping[str, str], what: str) -> None:
    """TooLarge, naming ``what`` and the size, when ``data`` would not fit a ConfigMap."""
    size = data_size(data)
    if size > CONFIGMAP_DATA_LIMIT:
        raise TooLarge(f"{what} needs {size / 2**20:.2f} MiB, over the ConfigMap limit of "
                       f"{CONFIGMAP_DATA_LIMIT / 2**20:.2f} MiB; use fewer observables or "
                       "a narrower circuit, or split the job")
