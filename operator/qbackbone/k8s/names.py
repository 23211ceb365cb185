"""Deterministic names and labels of what the operator creates for a job."""

from __future__ import annotations

import hashlib

from qbackbone.api.qpunode import QPU_RESOURCE_PREFIX, qpu_resource

__all__ = ["QPU_RESOURCE_PREFIX", "qpu_resource"]  # re-exported for the adapters

LABEL_JOB = "qbackbone.io/job"
LABEL_ROLE = "qbackbone.io/role"
LABEL_QPU = "qbackbone.io/qpu"
ANNOTATION_QPU = "qbackbone.io/qpu"  # the full QPUNode name (a label holds 63 characters)
LABEL_FRAGMENT = "qbackbone.io/fragment"
LABEL_ATTEMPT = "qbackbone.io/attempt"
LABEL_SUBCIRCUIT = "qbackbone.io/subcircuit"
LABEL_MANAGED = "app.kubernetes.io/managed-by"
MANAGER = "qbackbone-operator"
CLASSICAL = "classical"
_MAX = 63  # a DNS label: pods become hostnames, names also go into label values


def _bounded(*parts: str) -> str:
    name = "-".join(parts)
    if len(name) <= _MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:_MAX - 9].rstrip('-')}-{digest}"


def decision_name(job: str) -> str:
    """The ConfigMap holding what the decision was made from (survives a restart)."""
    return _bounded(job, "decision")


def fragment_name(job: str, key: str) -> str:
    """A fragment of the job (key: its QPU, or ``<subcircuit>-<qpu>`` for a cut job): the
    first attempt's pod and the name its result ConfigMap derives from."""
    return _bounded(job, "frag", key)


def attempt_name(fragment: str, attempt: int) -> str:
    """The pod of a fragment's attempt: the fragment's name, then ``-r<n>`` for retries."""
    return fragment if attempt == 0 else _bounded(fragment, f"r{attempt}")


def cutplan_name(job: str) -> str:
    """The ConfigMap holding a cut job's plan (or why it runs the classical fallback)."""
    return _bounded(job, "cutplan")


def admission_name(job: str) -> str:
    """The ConfigMap holding the shot split the joint plan admitted the job with."""
    return _bounded(job, "admission")


def label_value(text: str) -> str:
    """A label value for any text (at most 63 characters; long ones end in a digest)."""
    return _bounded(text)


def classical_name(job: str) -> str:
    """The pod (and its input ConfigMap) running the classical fallback."""
    return _bounded(job, CLASSICAL)


def input_name(work: str) -> str:
    """The input ConfigMap of a fragment or classical pod."""
    return _bounded(work, "in")


def result_name(work: str) -> str:
    """The result ConfigMap a worker writes (owned by the job)."""
    return _bounded(work, "out")


def job_labels(job: str, role: str, qpu: str | None = None) -> dict[str, str]:
    """Labels on everything created for a job (label values are at most 63 characters)."""
    labels = {LABEL_JOB: job[:_MAX], LABEL_ROLE: role, LABEL_MANAGED: MANAGER}
    if qpu:
        labels[LABEL_QPU] = qpu[:_MAX]
    return labels


def claim_template_name(job: str, qpu: str) -> str:
    """The ResourceClaimTemplate that pins a job's fragments to QPU ``qpu`` (DRA mode)."""
    return _bounded(job, "qpu", qpu.lower().replace(".", "-"))
