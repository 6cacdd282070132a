"""Policy events as log records: `LoggingHook`.

::

    breaker.add_hook(LoggingHook())                       # logger "resilience.events"
    pipeline.add_hook(LoggingHook(logging.getLogger("payments.risk")))

Each event becomes one record, at a level chosen by what it means for an operator:

- WARNING: a circuit opened (or was forced open), retries exhausted, the retry budget
  ran out, the shared breaker store failed;
- INFO: other breaker transitions, a retry scheduled, a fallback used, the store back;
- DEBUG: every rejection, admitted and recorded call, every hedge (these come at call
  rate).

``levels`` overrides the level per event kind (``{"call_rejected": logging.INFO}``).
The record carries the event as ``record.resilience_event`` (the dataclass) and
``record.resilience_kind`` (its ``kind``), for structured formatters. The message is
built only when the level is enabled, so a DEBUG event costs one ``isEnabledFor``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from resilience._events import (
    BreakerStateChanged,
    BreakerStoreDegraded,
    BreakerStoreRecovered,
    CallAdmitted,
    CallRecorded,
    CallRejected,
    Event,
    FallbackUsed,
    HedgeLaunched,
    RetryBudgetExhausted,
    RetryExhausted,
    RetryScheduled,
)

__all__ = ["LoggingHook"]

DEFAULT_LOGGER = "resilience.events"
_OPEN_STATES = frozenset({"open", "forced_open"})

DEFAULT_LEVELS: Mapping[str, int] = {
    BreakerStateChanged.kind: logging.INFO,  # WARNING when the circuit opens
    CallRejected.kind: logging.DEBUG,
    CallAdmitted.kind: logging.DEBUG,
    CallRecorded.kind: logging.DEBUG,
    RetryScheduled.kind: logging.INFO,
    RetryExhausted.kind: logging.WARNING,
    RetryBudgetExhausted.kind: logging.WARNING,
    FallbackUsed.kind: logging.INFO,
    HedgeLaunched.kind: logging.DEBUG,
    BreakerStoreDegraded.kind: logging.WARNING,
    BreakerStoreRecovered.kind: logging.INFO,
}


def _error(error: BaseException | None) -> str:
    return "no exception" if error is None else f"{type(error).__name__}: {error}"


def _state_changed(e: BreakerStateChanged) -> str:
    why = f" ({e.reason})" if e.reason else ""
    return f"circuit {e.name!r}: {e.old} -> {e.new}{why}"


def _rejected(e: CallRejected) -> str:
    return f"{e.policy} {e.name!r} rejected a call: {e.reason}"


def _admitted(e: CallAdmitted) -> str:
    return f"circuit {e.name!r} admitted a call ({e.state})"


def _recorded(e: CallRecorded) -> str:
    error = "" if e.error is None else f": {_error(e.error)}"
    return (
        f"circuit {e.name!r} recorded {e.outcome} in {e.duration * 1000:.1f} ms "
        f"({e.state}){error}"
    )


def _retry(e: RetryScheduled) -> str:
    honoured = f", Retry-After {e.retry_after:.3f}s" if e.retry_after is not None else ""
    return (
        f"retry {e.name!r}: attempt {e.attempt} failed ({_error(e.error)}); "
        f"next in {e.delay:.3f}s{honoured}"
    )


def _exhausted(e: RetryExhausted) -> str:
    return f"retry {e.name!r} gave up after {e.attempts} attempts: {_error(e.error)}"


def _budget(e: RetryBudgetExhausted) -> str:
    return (
        f"retry {e.name!r}: retry budget exhausted after {e.attempts} attempts: "
        f"{_error(e.error)}"
    )


def _fallback(e: FallbackUsed) -> str:
    trigger = "a result predicate" if e.error is None else _error(e.error)
    return f"fallback {e.name!r} used, triggered by {trigger}"


def _hedge(e: HedgeLaunched) -> str:
    return f"hedge {e.name!r} launched attempt {e.attempt}"


def _degraded(e: BreakerStoreDegraded) -> str:
    return (
        f"circuit {e.name!r}: shared state store failed on {e.operation} ({e.error}); "
        "using local state"
    )


def _recovered(e: BreakerStoreRecovered) -> str:
    return f"circuit {e.name!r}: shared state store answers again"


_MESSAGES: dict[type[Event], Callable[[Any], str]] = {
    BreakerStateChanged: _state_changed,
    CallRejected: _rejected,
    CallAdmitted: _admitted,
    CallRecorded: _recorded,
    RetryScheduled: _retry,
    RetryExhausted: _exhausted,
    RetryBudgetExhausted: _budget,
    FallbackUsed: _fallback,
    HedgeLaunched: _hedge,
    BreakerStoreDegraded: _degraded,
    BreakerStoreRecovered: _recovered,
}


class LoggingHook:
    """A hook (``policy.add_hook(hook)``) that logs every event to ``logger``.

    ``logger`` is a `logging.Logger` or a logger name (default ``"resilience.events"``);
    ``levels`` maps event kinds to levels, over `DEFAULT_LEVELS`. Events of unknown types
    are logged at DEBUG with their ``repr``.
    """

    __slots__ = ("_escalate_open", "levels", "logger")

    def __init__(
        self,
        logger: logging.Logger | str = DEFAULT_LOGGER,
        *,
        levels: Mapping[str, int] | None = None,
    ) -> None:
        self.logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self.levels: dict[str, int] = {**DEFAULT_LEVELS, **(levels or {})}
        # An opening circuit is a WARNING unless the caller chose the transition level.
        self._escalate_open = BreakerStateChanged.kind not in (levels or {})

    def level_for(self, event: Event) -> int:
        """The level ``event`` is logged at."""
        level = self.levels.get(event.kind, logging.DEBUG)
        if (
            self._escalate_open
            and isinstance(event, BreakerStateChanged)
            and event.new in _OPEN_STATES
        ):
            return max(level, logging.WARNING)
        return level

    def __call__(self, event: Event) -> None:
        """Log ``event`` if its level is enabled."""
        level = self.level_for(event)
        if not self.logger.isEnabledFor(level):
            return
        render = _MESSAGES.get(type(event))
        message = render(event) if render is not None else repr(event)
        self.logger.log(
            level,
            message,
            extra={"resilience_event": event, "resilience_kind": event.kind},
        )

    def __repr__(self) -> str:
        return f"<LoggingHook logger={self.logger.name!r}>"
