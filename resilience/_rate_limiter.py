"""Rate limiter: a token bucket of ``burst`` tokens refilled at ``rate`` per ``per`` seconds.

Each call takes one token. Without a token the call waits for the next one if that is
at most ``max_wait`` seconds away (the token is reserved first, so waiters are served
in order and never over-admit), otherwise it is rejected with `RateLimitedError`, whose
``retry_after`` says when a token will be there (and which `Retry` honours). The lock
guards a few arithmetic operations only. In test mode (`resilience.testing`) nothing
waits: calls that would wait are rejected.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from resilience._clock import (
    AsyncSleep,
    Clock,
    Sleep,
    monotonic,
    real_async_sleep,
    real_sleep,
    seconds,
)
from resilience._errors import RateLimitedError
from resilience._events import CallRejected
from resilience._policy import AsyncRunner, Policy, Runner
from resilience._testing import state as _testing

__all__ = ["RateLimiter", "RateLimiterOptions"]

DEFAULT_PER = 1.0
DEFAULT_MAX_WAIT = 0.0


@dataclass(frozen=True, slots=True)
class RateLimiterOptions:
    """The validated configuration of a `RateLimiter`."""

    rate: float
    burst: float | None = None
    per: float = DEFAULT_PER
    max_wait: float = DEFAULT_MAX_WAIT

    def __post_init__(self) -> None:
        if (
            isinstance(self.rate, bool)
            or not isinstance(self.rate, int | float)
            or not self.rate > 0
        ):
            raise ValueError(f"rate must be > 0 tokens per period, got {self.rate!r}")
        burst = max(1.0, float(self.rate)) if self.burst is None else self.burst
        if isinstance(burst, bool) or not isinstance(burst, int | float) or burst < 1:
            raise ValueError(f"burst must be >= 1 token, got {self.burst!r}")
        object.__setattr__(self, "burst", float(burst))
        object.__setattr__(self, "per", seconds(self.per, "per", allow_zero=False))
        object.__setattr__(self, "max_wait", seconds(self.max_wait, "max_wait"))


class RateLimiter(Policy):
    """``RateLimiter(rate, *, burst=None, per=1.0, max_wait=0.0, name="rate_limiter",
    clock=None, sleep=None, async_sleep=None)``: at most ``rate`` calls per ``per``
    seconds on average, bursts up to ``burst`` (default ``max(1, rate)``)."""

    __slots__ = ("_async_sleep", "_clock", "_lock", "_sleep", "_stamp", "_tokens", "options")

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        per: float | timedelta = DEFAULT_PER,
        max_wait: float | timedelta = DEFAULT_MAX_WAIT,
        name: str = "rate_limiter",
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        async_sleep: AsyncSleep | None = None,
    ) -> None:
        self.options = RateLimiterOptions(rate, burst, per, max_wait)  # type: ignore[arg-type]
        self._clock = clock or monotonic
        self._sleep = sleep or real_sleep
        self._async_sleep = async_sleep or real_async_sleep
        self._lock = threading.Lock()
        self._tokens = float(self.options.burst or 1.0)
        self._stamp = self._clock()
        super().__init__(name)

    @property
    def tokens(self) -> float:
        """Tokens available now (negative while waiters hold reservations)."""
        with self._lock:
            self._refill(self._clock())
            return self._tokens

    def _refill(self, now: float) -> None:
        opts = self.options
        elapsed = now - self._stamp
        if elapsed > 0:
            self._tokens = min(opts.burst or 1.0, self._tokens + elapsed * opts.rate / opts.per)
            self._stamp = now

    def acquire(self) -> float:
        """Take a token: return how long to wait before using it (0.0 = now), or raise
        `RateLimitedError`."""
        now = self._clock()
        opts = self.options
        with self._lock:
            self._refill(now)
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            wait = (1 - self._tokens) * opts.per / opts.rate
            if wait <= opts.max_wait and not _testing.active:
                self._tokens -= 1
                return wait
        if self._hooks.hooks:
            self._hooks.emit(CallRejected(self.name, now, "rate_limiter", "rate_limited"))
        raise RateLimitedError(self.name, wait)

    def _bind_sync(self, inner: Runner) -> Runner:
        acquire = self.acquire

        def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            wait = acquire()
            if wait:
                self._sleep(wait)
            return inner(fn, args, kwargs)

        return run

    def _bind_async(self, inner: AsyncRunner) -> AsyncRunner:
        acquire = self.acquire

        async def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            wait = acquire()
            if wait:
                await self._async_sleep(wait)
            return await inner(fn, args, kwargs)

        return run
