"""The process-wide test-mode switch read by waiting policies (see `resilience.testing`)."""

from __future__ import annotations

__all__ = ["TestingState", "state"]


class TestingState:
    """``active``: never wait; ``attempts``: cap on retry attempts (``None`` = no cap)."""

    __slots__ = ("active", "attempts")

    def __init__(self) -> None:
        self.active = False
        self.attempts: int | None = None


state = TestingState()
