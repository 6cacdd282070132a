"""Test mode for code that uses `resilience`: no waiting, so test suites never sleep.

::

    from resilience import testing

    testing.set_testing(True)                 # for the rest of the process
    with testing.set_testing(True, attempts=1):
        ...                                   # only inside the block

While active, `Retry` skips every backoff sleep (including Retry-After waits) and, if
``attempts`` is given, makes at most that many attempts; `RateLimiter` never waits for a
token (it rejects instead); `Hedge` launches its hedges without waiting for the delay.
Breakers, timeouts and bulkheads behave as in production: they do not sleep anyway, and
their logic is better tested with an injected `FakeClock`.
"""

from __future__ import annotations

from types import TracebackType

from resilience._clock import FakeClock
from resilience._testing import state as _state

__all__ = ["FakeClock", "is_testing", "set_testing"]


class _Restore:
    """Returned by `set_testing`; as a context manager it restores the previous mode."""

    __slots__ = ("_previous",)

    def __init__(self, previous: tuple[bool, int | None]) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _state.active, _state.attempts = self._previous


def set_testing(testing: bool, *, attempts: int | None = None) -> _Restore:
    """Turn test mode on or off; usable as a context manager that restores the previous
    mode on exit. ``attempts`` caps retry attempts while testing (``None``: no cap)."""
    if attempts is not None and (
        isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
    ):
        raise ValueError(f"attempts must be an integer >= 1 or None, got {attempts!r}")
    previous = (_state.active, _state.attempts)
    _state.active = bool(testing)
    _state.attempts = attempts if testing else None
    return _Restore(previous)


def is_testing() -> bool:
    """Whether test mode is on."""
    return _state.active
