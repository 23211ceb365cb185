"""Status helpers: merge-patch diffs, kept transition times, terminal statuses, the write."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from qbackbone.api.common import Condition
from qbackbone.api.conditions import ConditionType, Phase, set_condition
from qbackbone.api.quantumjob import QuantumJobStatus
from qbackbone.k8s.kube import Kube

M = TypeVar("M", bound=BaseModel)
TERMINAL = (Phase.SUCCEEDED.value, Phase.FAILED.value)


def merge_patch(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """The RFC 7386 merge patch that turns ``old`` into ``new`` (removed keys become None)."""
    old = old or {}
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            sub = merge_patch(before, value)
            if sub:
                patch[key] = sub
        elif value != before:
            patch[key] = value
    return patch


def parse_status(model: type[M], raw: Mapping[str, Any] | None) -> M | None:
    """The stored status as a model, or None when absent or not parseable."""
    if not raw:
        return None
    try:
        return model.model_validate(dict(raw))
    except ValidationError:
        return None


def keep_transition_times(old: list[Condition], new: list[Condition]) -> list[Condition]:
    """New conditions whose lastTransitionTime is the old one wherever the status did not flip."""
    before = {c.type: c for c in old}
    kept = []
    for cond in new:
        prior = before.get(cond.type)
        if prior is not None and prior.status == cond.status:
            cond = cond.model_copy(update={"last_transition_time": prior.last_transition_time})
        kept.append(cond)
    return kept


def failed_job_status(reason: str, message: str, generation: int | None,
                      base: QuantumJobStatus | None = None) -> QuantumJobStatus:
    """A terminal Failed status (for failures outside the pipeline, e.g. InvalidManifest)."""
    status = (base.model_copy(deep=True) if base is not None
              else QuantumJobStatus(observed_generation=generation))
    status.phase = Phase.FAILED
    now = datetime.now(UTC)
    for type_, ok in ((ConditionType.SUCCEEDED, False), (ConditionType.FAILED, True)):
        set_condition(status.conditions, type_, ok, reason, message, generation, now)
    return status


def write_status(kube: Kube, plural: str, namespace: str | None, name: str,
                 stored: Mapping[str, Any] | None, new: BaseModel) -> bool:
    """Patch the status subresource when ``new`` differs from ``stored``; True if written.

    Conditions keep their lastTransitionTime where their status did not change.
    """
    old_model = parse_status(type(new), stored)
    conditions = getattr(new, "conditions", None)
    if old_model is not None and conditions is not None:
        new = new.model_copy(update={"conditions": keep_transition_times(
            getattr(old_model, "conditions", []), conditions)})
    if old_model is not None and old_model == new:
        return False
    wire = new.model_dump(mode="json", by_alias=True, exclude_none=True)
    patch = merge_patch(stored, wire)
    if not patch:
        return False
    kube.patch_status(plural, namespace, name, patch)
    return True
