"""Events: one frozen, slotted dataclass per thing that happened, delivered to hooks.

A hook is any callable taking one `Event`; add it with ``policy.add_hook(hook)`` (a
`Pipeline` adds it to every stage). Hooks run synchronously, in the thread or task that
caused the event, after every policy lock has been released; an exception raised by a
hook is logged and swallowed, so instrumentation can never break a protected call.

``at`` is the reading of the emitting policy's clock (``time.monotonic()`` unless a clock
was injected). Each event class carries its stable name in ``kind``.

Events emitted, by policy:

- breaker: `BreakerStateChanged`, `CallRejected` (reason ``"circuit_open"`` ...),
  `CallAdmitted` and `CallRecorded` (both only built when a hook is registered),
  `BreakerStoreDegraded`,
  `BreakerStoreRecovered`
- retry: `RetryScheduled`, `RetryExhausted`, `RetryBudgetExhausted`
- timeout: `CallRejected` (``"timeout"``); bulkhead: `CallRejected` (``"bulkhead_full"``);
  rate limiter: `CallRejected` (``"rate_limited"``)
- fallback: `FallbackUsed`; hedge: `HedgeLaunched`
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

__all__ = [
    "BreakerStateChanged",
    "BreakerStoreDegraded",
    "BreakerStoreRecovered",
    "CallAdmitted",
    "CallRecorded",
    "CallRejected",
    "Event",
    "FallbackUsed",
    "HedgeLaunched",
    "Hook",
    "HookRegistry",
    "RetryBudgetExhausted",
    "RetryExhausted",
    "RetryScheduled",
]

_log = logging.getLogger("resilience")


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events. ``name`` is the emitting policy's name."""

    kind: ClassVar[str] = "event"
    name: str
    at: float


@dataclass(frozen=True, slots=True)
class BreakerStateChanged(Event):
    """A circuit breaker moved from ``old`` to ``new`` state.

    States: ``"closed"``, ``"open"``, ``"half_open"``, ``"forced_open"``, ``"disabled"``.
    ``reason`` says why: ``"failure_rate"``, ``"slow_call_rate"``, ``"open_elapsed"``,
    ``"trial_failed"``, ``"trials_succeeded"``, ``"manual"``, ``"shared_state"``.
    """

    kind: ClassVar[str] = "breaker_state_changed"
    old: str
    new: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class CallRejected(Event):
    """A policy refused or abandoned a call. ``policy`` is the policy type
    (``"circuit_breaker"``, ``"bulkhead"``, ``"rate_limiter"``, ``"timeout"``) and
    ``reason`` one of ``"circuit_open"``, ``"half_open_full"``, ``"forced_open"``,
    ``"bulkhead_full"``, ``"rate_limited"``, ``"timeout"``."""

    kind: ClassVar[str] = "call_rejected"
    policy: str
    reason: str


@dataclass(frozen=True, slots=True)
class CallRecorded(Event):
    """The breaker recorded an admitted call's outcome: ``"success"``, ``"failure"``,
    ``"slow_success"``, ``"slow_failure"`` or ``"ignored"``; ``duration`` in seconds;
    ``state`` is the breaker state when the call was admitted."""

    kind: ClassVar[str] = "call_recorded"
    outcome: str
    duration: float
    state: str
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class CallAdmitted(Event):
    """The breaker admitted a call in ``state`` (``"closed"``, ``"half_open"`` or
    ``"disabled"``); emitted only when a hook is registered."""

    kind: ClassVar[str] = "call_admitted"
    state: str


@dataclass(frozen=True, slots=True)
class RetryScheduled(Event):
    """Attempt number ``attempt`` failed with ``error``; the next starts after ``delay``
    seconds (``retry_after`` is the server-requested delay when one was honoured)."""

    kind: ClassVar[str] = "retry_scheduled"
    attempt: int
    delay: float
    error: BaseException | None
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class RetryExhausted(Event):
    """Retrying stopped (attempts, deadline or a stop strategy) after ``attempts``
    attempts; ``error`` (if the last attempt raised) is re-raised unchanged."""

    kind: ClassVar[str] = "retry_exhausted"
    attempts: int
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class RetryBudgetExhausted(Event):
    """A retry was wanted but the shared retry budget had no room; ``error`` is re-raised."""

    kind: ClassVar[str] = "retry_budget_exhausted"
    attempts: int
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class FallbackUsed(Event):
    """The fallback produced the result; ``error`` is what triggered it (``None`` when a
    result predicate did)."""

    kind: ClassVar[str] = "fallback_used"
    error: BaseException | None


@dataclass(frozen=True, slots=True)
class HedgeLaunched(Event):
    """The hedge started attempt number ``attempt`` (2 for the first hedge) because no
    earlier attempt had answered yet."""

    kind: ClassVar[str] = "hedge_launched"
    attempt: int


@dataclass(frozen=True, slots=True)
class BreakerStoreDegraded(Event):
    """The shared breaker-state store failed (``operation`` is ``"load"``/``"save"``);
    the breaker carries on with its local state until the store answers again."""

    kind: ClassVar[str] = "breaker_store_degraded"
    operation: str
    error: str


@dataclass(frozen=True, slots=True)
class BreakerStoreRecovered(Event):
    """The shared breaker-state store answered again after a `BreakerStoreDegraded`."""

    kind: ClassVar[str] = "breaker_store_recovered"


Hook = Callable[[Event], object]


class HookRegistry:
    """The hooks of one policy. ``hooks`` is an immutable tuple (empty = falsy), so the hot
    path tests ``if registry.hooks`` and iterating never races with ``add``/``remove``."""

    __slots__ = ("hooks",)

    def __init__(self) -> None:
        self.hooks: tuple[Hook, ...] = ()

    def add(self, hook: Hook) -> None:
        """Register ``hook`` (idempotent)."""
        if not callable(hook):
            raise TypeError(f"a hook must be callable, got {hook!r}")
        if hook not in self.hooks:
            self.hooks = (*self.hooks, hook)

    def remove(self, hook: Hook) -> None:
        """Unregister ``hook``; unknown hooks are ignored."""
        self.hooks = tuple(h for h in self.hooks if h != hook)

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every hook; a failing hook is logged, never raised."""
        for hook in self.hooks:
            try:
                hook(event)
            except Exception:
                _log.exception("resilience hook %r failed on %r", hook, event)

    def __bool__(self) -> bool:
        return bool(self.hooks)

    def __len__(self) -> int:
        return len(self.hooks)
