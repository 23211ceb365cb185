"""The Allocate contract: what a fragment container is told about the QPU it was given.

Pure functions, no gRPC: :mod:`qbackbone.deviceplugin.plugin` turns the result into a
``ContainerAllocateResponse``.

Environment of a container allocated QPU ``q``:

- ``QBACKBONE_QPU=q`` and ``QBACKBONE_QPUS=q`` (the latter is what the dev node agent sets, so
  the worker reads the same variable under the agent and under a real kubelet);
- ``QBACKBONE_QPU_BACKEND=<provider>/<backend>`` (e.g. ``ibm-runtime/ibm_torino``);
- ``QBACKBONE_QPU_RESOURCE=qpu.qbackbone.io/q``;
- for a QPU with credentials: ``QBACKBONE_QPU_CREDENTIALS_FILE`` and, for ibm-runtime,
  ``QB_IBM_TOKEN_FILE`` (what the IBM executor reads), both the path
  ``/var/run/secrets/qbackbone/<secret>/<key>``. Never the token itself: the pod spec mounts
  the Secret there as a volume; the plugin only points at it. When the node provisions tokens
  on the host (``--credentials-host-dir``), the response also carries a read-only Mount of
  ``<dir>/<secret>`` at ``/var/run/secrets/qbackbone/<secret>``.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import NamedTuple

from qbackbone.deviceplugin.config import QPU

SECRETS_MOUNT_ROOT = PurePosixPath("/var/run/secrets/qbackbone")

ENV_QPU = "QBACKBONE_QPU"
ENV_QPUS = "QBACKBONE_QPUS"
ENV_BACKEND = "QBACKBONE_QPU_BACKEND"
ENV_RESOURCE = "QBACKBONE_QPU_RESOURCE"
ENV_CREDENTIALS_FILE = "QBACKBONE_QPU_CREDENTIALS_FILE"
ENV_IBM_TOKEN_FILE = "QB_IBM_TOKEN_FILE"


class MountSpec(NamedTuple):
    """A host directory to mount into the container."""

    container_path: str
    host_path: str
    read_only: bool = True


class Allocation(NamedTuple):
    """What one container gets for its QPU."""

    envs: dict[str, str]
    mounts: list[MountSpec]


def secret_dir(qpu: QPU) -> PurePosixPath | None:
    """Where the QPU's credentials Secret is mounted in the container."""
    return None if qpu.credentials is None else SECRETS_MOUNT_ROOT / qpu.credentials.name


def container_allocation(qpu: QPU, credentials_host_dir: Path | None = None) -> Allocation:
    """The environment (and mounts) for a container allocated ``qpu``."""
    envs = {
        ENV_QPU: qpu.name,
        ENV_QPUS: qpu.name,
        ENV_BACKEND: f"{qpu.provider}/{qpu.backend}",
        ENV_RESOURCE: qpu.resource_name,
    }
    mounts: list[MountSpec] = []
    directory = secret_dir(qpu)
    if directory is not None and qpu.credentials is not None:
        token_file = str(directory / qpu.credentials.key)
        envs[ENV_CREDENTIALS_FILE] = token_file
        if qpu.provider == "ibm-runtime":
            envs[ENV_IBM_TOKEN_FILE] = token_file
        if credentials_host_dir is not None:
            mounts.append(MountSpec(container_path=str(directory),
                                    host_path=str(credentials_host_dir / qpu.credentials.name)))
    return Allocation(envs, mounts)
