"""What the node agent serves: its nodes and the QPUs each one hosts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from qbackbone.api.qpunode import qpu_resource

# Env var through which a container learns the QPUs allocated to it, as a device plugin's
# Allocate response would tell it.
QPU_ENV = "QBACKBONE_QPUS"
# Env var naming the file a container writes its termination message to (the agent's stand-in
# for terminationMessagePath, which is a path inside a container filesystem the agent lacks).
TERMINATION_ENV = "QBACKBONE_TERMINATION_MESSAGE_PATH"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class NodeSpec:
    """A Node the agent registers, hosting ``qpus`` (one unit of each)."""

    name: str
    qpus: tuple[str, ...]
    cpu: str = "8"
    memory: str = "32Gi"
    pods: str = "110"
    labels: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _DNS_LABEL.match(self.name):
            raise ValueError(f"node name {self.name!r} is not a DNS label")
        for qpu in self.qpus:
            qpu_resource(qpu)

    @classmethod
    def parse(cls, text: str) -> NodeSpec:
        """Parse ``node[:qpu1,qpu2,...]``; ``node`` alone hosts one QPU of the same name."""
        name, _, qpus = text.partition(":")
        names = tuple(q for q in qpus.split(",") if q) if qpus else (name,)
        return cls(name=name, qpus=names)

    def resources(self) -> dict[str, str]:
        """Capacity (and allocatable): cpu, memory, pods and one unit per QPU."""
        res = {"cpu": self.cpu, "memory": self.memory, "pods": self.pods}
        res.update({qpu_resource(q): "1" for q in self.qpus})
        return res
