"""Duck-typed compatibility with tenacity's strategy objects (never imports tenacity).

tenacity strategies are callables of one ``RetryCallState``. `Retry` accepts them where
its own parameters go — a ``retry_*`` object as ``on``, a ``stop_*`` object as
``attempts``, a ``wait_*`` object as ``wait`` (or ``wait_initial``) — and calls them with
`AttemptState`, which has the attributes those strategies read. Combinations made with
tenacity's operators (``|``, ``&``, ``+``) are tenacity objects too, so they work as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["AttemptState", "Outcome", "checks_results", "is_tenacity"]


def is_tenacity(obj: object) -> bool:
    """Whether ``obj`` is (or derives from) one of tenacity's strategy classes."""
    return any(
        c.__module__ == "tenacity" or c.__module__.startswith("tenacity.")
        for c in type(obj).__mro__
    )


def checks_results(strategy: object) -> bool:
    """Whether a tenacity ``retry_*`` strategy may look at returned values (so every
    successful call must be shown to it), as opposed to exceptions only."""
    name = type(strategy).__name__
    if name in ("retry_any", "retry_all"):
        return any(checks_results(s) for s in getattr(strategy, "retries", ()))
    return not (
        name.startswith(("retry_if_exception", "retry_if_not_exception"))
        or name
        in (
            "retry_never",
            "retry_unless_exception_type",
        )
    )


class Outcome:
    """What tenacity calls ``retry_state.outcome`` (a finished future)."""

    __slots__ = ("_error", "_result")

    def __init__(self, error: BaseException | None, result: Any) -> None:
        self._error = error
        self._result = result

    @property
    def failed(self) -> bool:
        """Whether the attempt raised."""
        return self._error is not None

    def exception(self) -> BaseException | None:
        """The exception the attempt raised, if any."""
        return self._error

    def result(self) -> Any:
        """The attempt's value (re-raises its exception, like a future)."""
        if self._error is not None:
            raise self._error
        return self._result


class AttemptState:
    """What tenacity calls ``RetryCallState``: the attributes its strategies read."""

    __slots__ = (
        "args",
        "attempt_number",
        "fn",
        "idle_for",
        "kwargs",
        "next_action",
        "outcome",
        "outcome_timestamp",
        "retry_object",
        "start_time",
        "upcoming_sleep",
    )

    def __init__(
        self,
        fn: Callable[..., Any] | None,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        attempt_number: int,
        outcome: Outcome,
        start_time: float,
        now: float,
        idle_for: float,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.attempt_number = attempt_number
        self.outcome = outcome
        self.start_time = start_time
        self.outcome_timestamp = now
        self.idle_for = idle_for
        self.upcoming_sleep = 0.0
        self.next_action = None
        self.retry_object = None

    @property
    def seconds_since_start(self) -> float:
        """Seconds from the first attempt's start to this outcome."""
        return self.outcome_timestamp - self.start_time
