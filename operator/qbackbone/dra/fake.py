"""The fake resource manager (``--fake-qpus N``), as dra-example-driver has one: the plugin
resolves its own fake QPUs without QPUNodes and can publish them in a node-local ResourceSlice,
so it can be tested alone.

Fake QPU ``i`` is an ideal aer simulator named ``<prefix>-<i>`` (prefix default ``fake-qpu``),
published as device of the same name in pool ``<node>/fake`` (node names cannot contain ``/``,
so it never clashes with the central publisher's pool ``<node>``) with every attribute the
publisher gives a device, in a slice labelled ``qbackbone.io/dra-publisher: kubelet-plugin``
and ``qbackbone.io/dra-node: <node>`` (the publisher manages only ``central`` slices).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from qbackbone.deviceplugin.config import QPU
from qbackbone.dra.attributes import DRIVER, device_of
from qbackbone.dra.prepare import PrepareError
from qbackbone.dra.slices import API_VERSION, MANAGED_BY_LABEL

PUBLISHER = "kubelet-plugin"
NODE_LABEL = "qbackbone.io/dra-node"
FAKE_QUBITS = 8


@dataclass(frozen=True)
class FakeQPUs:
    """``count`` fake QPUs of node ``node``."""

    node: str
    count: int
    prefix: str = "fake-qpu"

    @property
    def pool(self) -> str:
        return f"{self.node}/fake"

    def names(self) -> list[str]:
        return [f"{self.prefix}-{i}" for i in range(self.count)]

    def qpunode(self, name: str) -> dict[str, Any]:
        """A Ready QPUNode-shaped object for a fake QPU (what its attributes come from)."""
        return {"metadata": {"name": name},
                "spec": {"backend": {"provider": "aer", "name": "aer_simulator"},
                         "qubits": FAKE_QUBITS, "nodeName": self.node},
                "status": {"deviceQubits": FAKE_QUBITS,
                           "conditions": [{"type": "Ready", "status": "True"}]}}

    def resolve(self, pool: str, device: str) -> QPU:
        """The fake QPU of ``device`` (a :data:`~qbackbone.dra.prepare.Resolver`)."""
        if pool != self.pool or device not in self.names():
            raise PrepareError(f"device {device} of pool {pool} is not a fake QPU of "
                               f"node {self.node}")
        return QPU(name=device, provider="aer", backend="aer_simulator", nodes=(self.node,))

    def slice_name(self) -> str:
        base = f"{DRIVER}-{self.node}-fake"
        if len(base) <= 253:
            return base
        return f"{DRIVER}-fake-{hashlib.sha256(self.node.encode()).hexdigest()[:16]}"

    def node_label(self) -> str:
        """The node as a label value (at most 63 characters: else a hash of it)."""
        if len(self.node) <= 63:
            return self.node
        return hashlib.sha256(self.node.encode()).hexdigest()[:63]

    def resource_slice(self) -> dict[str, Any]:
        """The node-local ResourceSlice of the fake QPUs."""
        devices = [device_of(self.qpunode(n)).entry for n in self.names()]
        return {"apiVersion": API_VERSION, "kind": "ResourceSlice",
                "metadata": {"name": self.slice_name(),
                             "labels": {MANAGED_BY_LABEL: PUBLISHER,
                                        NODE_LABEL: self.node_label()}},
                "spec": {"driver": DRIVER, "nodeName": self.node,
                         "pool": {"name": self.pool, "generation": 1, "resourceSliceCount": 1},
                         "devices": devices}}
