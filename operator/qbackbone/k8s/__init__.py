"""Kubernetes adapters beside the domain core: manifests, status writes, reading the fleet.

Nothing in ``qbackbone.core`` imports this package; the controllers and the worker do.
"""

GROUP = "qbackbone.io"
VERSION = "v1alpha1"
JOBS, QPUNODES, POLICIES = "quantumjobs", "qpunodes", "invocationpolicies"

__all__ = ["GROUP", "JOBS", "POLICIES", "QPUNODES", "VERSION"]
