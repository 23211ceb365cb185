"""Shared building blocks of the API: the base model, object metadata, conditions, durations."""

from __future__ import annotations

import math
import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel

GROUP = "qbackbone.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"


class ApiModel(BaseModel):
    """Base of every API object: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=True,
        allow_inf_nan=False,  # NaN and Infinity are never a valid setting, and not strict JSON
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as Kubernetes stores it: camelCase keys, unset optionals left out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ObjectMeta(BaseModel):
    """The part of Kubernetes object metadata the pipeline reads; the rest passes through."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    name: str = Field(min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    generation: int = 1
    creation_timestamp: datetime | None = None
    uid: str | None = None
    # The rest of Kubernetes' ObjectMeta, passed through untouched; anything else is a typo.
    generate_name: str | None = None
    self_link: str | None = None
    resource_version: str | None = None
    deletion_timestamp: datetime | None = None
    deletion_grace_period_seconds: int | None = None
    owner_references: list[dict[str, Any]] | None = None
    finalizers: list[str] | None = None
    managed_fields: list[dict[str, Any]] | None = None


class Condition(ApiModel):
    """A Kubernetes-style condition (the shape of metav1.Condition)."""

    type: str = Field(description="Condition type, e.g. Decided, Executed, Succeeded.")
    status: str = Field(description="True, False or Unknown.", pattern="^(True|False|Unknown)$")
    reason: str = Field(description="CamelCase reason a program can match on.")
    message: str = Field(default="", description="What happened, for a person.")
    last_transition_time: datetime = Field(description="When status last changed.")
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this condition was computed from."
    )


_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ns|us|µs|ms|s|m|h|d)")
_PLAIN_NUMBER = re.compile(r"^[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?$")
_UNIT_SECONDS = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0
}
_ISO_DURATION = re.compile(
    r"^P(?:(?P<d>[0-9]+(?:\.[0-9]+)?)D)?(?:T(?:(?P<h>[0-9]+(?:\.[0-9]+)?)H)?"
    r"(?:(?P<m>[0-9]+(?:\.[0-9]+)?)M)?(?:(?P<s>[0-9]+(?:\.[0-9]+)?)S)?)?$"
)
_MAX_DURATION_SECONDS = 10 * 365 * 86400.0  # ten years: anything longer is a mistake


def parse_duration(value: object) -> float:
    """Seconds from a number, a Go-style duration ("1m30s", "250us") or ISO 8601 ("PT30S").

    The result is finite and at most ten years either way; digits are ASCII only.
    """
    seconds = _parse_duration(value)
    if not math.isfinite(seconds) or abs(seconds) > _MAX_DURATION_SECONDS:
        shown = "an integer that large" if isinstance(value, int) else repr(str(value)[:40])
        raise ValueError(f"duration {shown} is not a finite number of seconds up to ten years")
    return seconds


def _parse_duration(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError(f"expected a duration, got {value!r}")
    if isinstance(value, int):
        return float(value) if abs(value) <= _MAX_DURATION_SECONDS else math.inf
    if isinstance(value, float):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a duration such as '30s', '5m' or 'PT1M', got {value!r}")
    text = value.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    iso = _ISO_DURATION.match(body)
    if iso and any(iso.groupdict().values()):
        parts = {k: float(v) for k, v in iso.groupdict().items() if v}
        return sign * (
            parts.get("d", 0) * 86400 + parts.get("h", 0) * 3600
            + parts.get("m", 0) * 60 + parts.get("s", 0)
        )
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(body) or pos == 0:
        if _PLAIN_NUMBER.match(body):
            return sign * float(body)
        raise ValueError(
            f"cannot parse duration {value[:40]!r}: use e.g. '30s', '5m', '1h30m', '250us' "
            "or ISO 8601 'PT30S'"
        )
    return sign * total


DURATION_SCHEMA = {
    "x-kubernetes-int-or-string": True,
    "description": "A duration: a string such as '30s', '5m', '250us', 'PT30S', or whole seconds.",
}

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string"}], **DURATION_SCHEMA}),
]
"""A duration in seconds; accepts numbers and duration strings."""
