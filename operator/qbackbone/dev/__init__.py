"""Development and test stand-ins: a local Kubernetes control plane and a QPU node agent.

Nothing here is needed in a real cluster: there the kubelet and a QPU device plugin take the
node agent's place, and the control plane is the cluster's own (DESIGN.md section 7).
"""

from qbackbone.dev.binaries import BinariesMissing, find_bin_dir
from qbackbone.dev.cluster import ClusterInfo, LocalCluster

__all__ = ["BinariesMissing", "ClusterInfo", "LocalCluster", "find_bin_dir"]
