"""Progress reporting from the pipeline to whoever runs it (a terminal, a log, nothing)."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives one line per step."""

    def step(self, phase: str, message: str) -> None:
        """Report a step of a phase."""
        ...


class SilentProgress:
    """Discards progress."""

    def step(self, phase: str, message: str) -> None:
        """Ignore the step."""
