"""The one error type the pipeline turns into a terminal condition."""

from __future__ import annotations

from qbackbone.api.conditions import Reason


class JobFailure(Exception):
    """A job cannot proceed; ``reason`` is CamelCase, ``message`` tells a person what to do."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message
