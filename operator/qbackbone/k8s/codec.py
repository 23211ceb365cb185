"""What travels through ConfigMaps must fit them (circuits go as base64 QPY, see
core.circuits.serialize; the rest as JSON or YAML)."""

from __future__ import annotations

from collections.abc import Mapping

# The API server refuses a ConfigMap whose data exceeds 1 MiB; keep room for metadata.
CONFIGMAP_DATA_LIMIT = 1024 * 1024 - 16 * 1024


class TooLarge(ValueError):
    """An object would exceed the 1 MiB ConfigMap limit."""


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
