"""The custom resources of ``qbackbone.io/v1alpha1`` as pydantic models (one source of truth)."""

from qbackbone.api.common import API_VERSION, GROUP, VERSION, ApiModel, Condition, ObjectMeta
from qbackbone.api.policy import InvocationPolicy, InvocationPolicySpec, InvocationPolicyStatus
from qbackbone.api.qpunode import QPUNode, QPUNodeSpec, QPUNodeStatus
from qbackbone.api.quantumjob import QuantumJob, QuantumJobSpec, QuantumJobStatus

__all__ = [
    "API_VERSION",
    "GROUP",
    "VERSION",
    "ApiModel",
    "Condition",
    "InvocationPolicy",
    "InvocationPolicySpec",
    "InvocationPolicyStatus",
    "ObjectMeta",
    "QPUNode",
    "QPUNodeSpec",
    "QPUNodeStatus",
    "QuantumJob",
    "QuantumJobSpec",
    "QuantumJobStatus",
]
