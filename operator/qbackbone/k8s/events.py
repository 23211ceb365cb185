"""The events a reconcile returns for the controller to post after the status write."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    """A Kubernetes event to post about the job."""

    type: str
    reason: str
    message: str
