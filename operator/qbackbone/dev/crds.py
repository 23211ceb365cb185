"""Put the project's CRDs on a local control plane and wait until the API server serves them."""

from __future__ import annotations

import subprocess
from functools import partial
from pathlib import Path
from typing import Any

from kubernetes import client

from qbackbone.dev.cluster import ClusterInfo
from qbackbone.dev.waiting import wait_for

CRD_NAMES = ("quantumjobs.qbackbone.io", "qpunodes.qbackbone.io",
             "invocationpolicies.qbackbone.io")


def established(ext: client.ApiextensionsV1Api, name: str) -> bool:
    """Whether a CRD reports Established."""
    crd: Any = ext.read_custom_resource_definition(name)
    return any(c.type == "Established" and c.status == "True"
               for c in (crd.status.conditions if crd.status else None) or [])


def install_crds(cluster: ClusterInfo, api: client.ApiClient, directory: Path,
                 timeout: float = 30.0) -> None:
    """``kubectl apply --server-side`` the CRDs in ``directory``, then wait for all three to
    be Established; CalledProcessError (with kubectl's stderr) when the apply fails."""
    subprocess.run([str(Path(cluster.bin_dir) / "kubectl"), f"--kubeconfig={cluster.kubeconfig}",
                    "apply", "--server-side", "--force-conflicts", "-f", str(directory)],
                   check=True, capture_output=True, text=True, timeout=60)
    ext = client.ApiextensionsV1Api(api)
    for name in CRD_NAMES:
        wait_for(partial(established, ext, name), timeout, what=f"CRD {name} Established")
