"""QPU node agent: a development and test stand-in for the kubelet (virtual-kubelet pattern).

It registers Nodes for QPU hosts with one unit of ``qpu.qbackbone.io/<qpu>`` per QPU, keeps
them Ready (node status and lease), and runs the pods bound to them as local processes,
reporting their status like a kubelet would. It is never needed in a real cluster, where the
kubelet and a QPU device plugin do this job; see docs/dev-cluster.md for what it does not do.
"""

from qbackbone.api.qpunode import QPU_RESOURCE_PREFIX, qpu_resource
from qbackbone.dev.nodeagent.agent import NodeAgent
from qbackbone.dev.nodeagent.config import NodeSpec

__all__ = ["QPU_RESOURCE_PREFIX", "NodeAgent", "NodeSpec", "qpu_resource"]
