"""Retry: exponential backoff with full jitter, a deadline, Retry-After, a shared budget.

The success path is a bare ``try``/``except`` around the call (plus one counter
increment when a budget is shared, and one clock read when a deadline is set):
everything else — deciding, waiting, events — happens only after a failure.

When retrying stops, the last exception is re-raised unchanged (the same object, no
wrapper, no added ``__context__``); when a result predicate rejected the last value,
that value is returned.
"""

from __future__ import annotations

import email.utils
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from resilience._clock import (
    AsyncSleep,
    Clock,
    Sleep,
    monotonic,
    real_async_sleep,
    real_sleep,
    seconds,
    wall,
)
from resilience._events import RetryBudgetExhausted, RetryExhausted, RetryScheduled
from resilience._policy import AsyncRunner, Policy, Runner, invoke
from resilience._predicates import exception_predicate
from resilience._tenacity import AttemptState, Outcome, checks_results, is_tenacity
from resilience._testing import state as _testing

__all__ = ["Retry", "RetryBudget", "RetryOptions", "retry", "retry_after_of"]

DEFAULT_ATTEMPTS = 3
DEFAULT_WAIT_INITIAL = 0.1
DEFAULT_WAIT_MAX = 5.0
DEFAULT_WAIT_EXP_BASE = 2.0
DEFAULT_MAX_RETRY_AFTER = 60.0
DEFAULT_BUDGET_RATIO = 0.2
DEFAULT_BUDGET_MIN_RETRIES = 10
DEFAULT_BUDGET_PERIOD = 10.0

_GIVE_UP = -1.0
_NOT_RETRYABLE = -2.0


class RetryBudget:
    """Retries allowed across many calls: at most ``min_retries + ratio * calls`` retries,
    where both counts decay by half every ``period`` seconds (so the budget follows recent
    traffic). Share one budget between the `Retry` policies that hit one dependency: during
    an outage retries then add at most ``ratio`` to the load instead of multiplying it.
    """

    __slots__ = (
        "_clock",
        "_last_decay",
        "_lock",
        "calls",
        "min_retries",
        "period",
        "ratio",
        "retries",
    )

    def __init__(
        self,
        ratio: float = DEFAULT_BUDGET_RATIO,
        *,
        min_retries: int = DEFAULT_BUDGET_MIN_RETRIES,
        period: float | timedelta = DEFAULT_BUDGET_PERIOD,
        clock: Clock | None = None,
    ) -> None:
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or ratio < 0:
            raise ValueError(f"ratio must be >= 0 (retries per call, 0.2 = 20%), got {ratio!r}")
        if isinstance(min_retries, bool) or not isinstance(min_retries, int) or min_retries < 0:
            raise ValueError(f"min_retries must be an integer >= 0, got {min_retries!r}")
        self.ratio = float(ratio)
        self.min_retries = min_retries
        self.period = seconds(period, "period", allow_zero=False)
        self._clock = clock or monotonic
        self._last_decay = self._clock()
        self._lock = threading.Lock()
        # Plain counters: ``calls += 1`` on the hot path may lose an increment under
        # contention, which only makes the budget marginally stricter.
        self.calls = 0.0
        self.retries = 0.0

    def try_spend(self) -> bool:
        """Take one retry from the budget if there is room."""
        with self._lock:
            now = self._clock()
            periods = int((now - self._last_decay) / self.period)
            if periods:
                factor = 0.5 ** min(periods, 64)
                self.calls *= factor
                self.retries *= factor
                self._last_decay += periods * self.period
            if self.retries + 1 <= self.min_retries + self.ratio * self.calls:
                self.retries += 1
                return True
            return False


def retry_after_of(error: BaseException, now: Callable[[], float] = wall) -> float | None:
    """The delay a server asked for: ``error.retry_after`` (seconds or timedelta), or the
    ``Retry-After`` header (delta-seconds or an HTTP date) of ``error.response``."""
    value: Any = getattr(error, "retry_after", None)
    if value is None:
        headers = getattr(getattr(error, "response", None), "headers", None)
        if headers is None:
            return None
        try:
            value = headers.get("Retry-After")
            if value is None:
                value = headers.get("retry-after")
        except Exception:
            return None
        if value is None:
            return None
    if isinstance(value, timedelta):
        return max(0.0, value.total_seconds())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0.0, float(value))
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if isinstance(value, str):
        text = value.strip()
        try:
            return max(0.0, float(text))
        except ValueError:
            pass
        try:
            when: datetime = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - now())
    return None


@dataclass(frozen=True, slots=True)
class RetryOptions:
    """The validated configuration of a `Retry` (see its docstring)."""

    on: Any
    attempts: Any = DEFAULT_ATTEMPTS
    timeout: float | None = None
    wait_initial: float = DEFAULT_WAIT_INITIAL
    wait_max: float = DEFAULT_WAIT_MAX
    wait_exp_base: float = DEFAULT_WAIT_EXP_BASE
    jitter: bool = True
    wait: Any = None
    retry_result: Callable[[Any], bool] | None = None
    respect_retry_after: bool = True
    max_retry_after: float | None = DEFAULT_MAX_RETRY_AFTER
    budget: RetryBudget | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not is_tenacity(self.on):
            exception_predicate(self.on, "on")
        if not is_tenacity(self.attempts) and (
            isinstance(self.attempts, bool)
            or not isinstance(self.attempts, int)
            or self.attempts < 1
        ):
            raise ValueError(
                f"attempts must be an integer >= 1 (1 = no retry) or a tenacity stop strategy, got {self.attempts!r}"
            )
        if self.timeout is not None:
            set_(self, "timeout", seconds(self.timeout, "timeout", allow_zero=False))
        if is_tenacity(self.wait_initial):
            if self.wait is not None:
                raise ValueError(
                    "give a tenacity wait strategy as wait= or wait_initial=, not both"
                )
            set_(self, "wait", self.wait_initial)
            set_(self, "wait_initial", DEFAULT_WAIT_INITIAL)
        set_(self, "wait_initial", seconds(self.wait_initial, "wait_initial"))
        set_(self, "wait_max", seconds(self.wait_max, "wait_max"))
        if self.wait_max < self.wait_initial:
            raise ValueError(
                f"wait_max ({self.wait_max}) must be >= wait_initial ({self.wait_initial})"
            )
        if (
            isinstance(self.wait_exp_base, bool)
            or not isinstance(self.wait_exp_base, int | float)
            or self.wait_exp_base < 1
        ):
            raise ValueError(f"wait_exp_base must be >= 1, got {self.wait_exp_base!r}")
        if self.wait is not None and not callable(self.wait):
            raise TypeError(
                f"wait must be a tenacity wait strategy or a callable(attempt) -> seconds, got {self.wait!r}"
            )
        if self.retry_result is not None and not callable(self.retry_result):
            raise TypeError(
                f"retry_result must be a predicate on the result, got {self.retry_result!r}"
            )
        if self.max_retry_after is not None:
            set_(self, "max_retry_after", seconds(self.max_retry_after, "max_retry_after"))
        if self.budget is not None and not isinstance(self.budget, RetryBudget):
            raise TypeError(f"budget must be a RetryBudget, got {self.budget!r}")


class Retry(Policy):
    """Call again after a failure, waiting longer each time.

    ``Retry(*, on, attempts=3, timeout=None, wait_initial=0.1, wait_max=5.0,
    wait_exp_base=2.0, jitter=True, wait=None, retry_result=None,
    respect_retry_after=True, max_retry_after=60.0, budget=None, name="retry",
    clock=None, sleep=None, async_sleep=None, rng=None)``

    - ``on``: the exceptions to retry — a type, a tuple of types, a predicate, or a
      tenacity ``retry_*`` strategy. Other exceptions propagate at once.
    - ``attempts``: total attempts including the first, or a tenacity ``stop_*``.
    - ``timeout``: overall deadline in seconds from the first attempt; no wait begins
      that would end after it. It cannot cut an attempt short: put a `Timeout` inside
      the retry (``Pipeline(Retry(...), Timeout(...))``) to bound each attempt.
    - Backoff before attempt *n+1*: ``uniform(0, min(wait_max, wait_initial *
      wait_exp_base^(n-1)))`` ("full jitter"; ``jitter=False`` waits the upper bound).
      ``wait`` replaces it: a tenacity ``wait_*`` or ``callable(attempt) -> seconds``.
    - Retry-After: if the exception has ``retry_after`` (seconds/timedelta) or a
      ``.response.headers["Retry-After"]``, the wait is at least that; a request above
      ``max_retry_after`` ends retrying.
    - ``retry_result(value) -> bool`` retries on returned values too.
    - ``budget``: a `RetryBudget`, shared between policies, that caps retries overall.
    - Exhausted: the last exception is re-raised unchanged.
    """

    __slots__ = ("_async_sleep", "_clock", "_is_retryable", "_rng", "_sleep", "_stop", "options")

    def __init__(
        self,
        *,
        on: Any,
        attempts: Any = DEFAULT_ATTEMPTS,
        timeout: float | timedelta | None = None,
        wait_initial: Any = DEFAULT_WAIT_INITIAL,
        wait_max: float | timedelta = DEFAULT_WAIT_MAX,
        wait_exp_base: float = DEFAULT_WAIT_EXP_BASE,
        jitter: bool = True,
        wait: Any = None,
        retry_result: Callable[[Any], bool] | None = None,
        respect_retry_after: bool = True,
        max_retry_after: float | timedelta | None = DEFAULT_MAX_RETRY_AFTER,
        budget: RetryBudget | None = None,
        name: str = "retry",
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        async_sleep: AsyncSleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.options = RetryOptions(
            on=on,
            attempts=attempts,
            timeout=timeout,  # type: ignore[arg-type]
            wait_initial=wait_initial,
            wait_max=wait_max,  # type: ignore[arg-type]
            wait_exp_base=wait_exp_base,
            jitter=jitter,
            wait=wait,
            retry_result=retry_result,
            respect_retry_after=respect_retry_after,
            max_retry_after=max_retry_after,  # type: ignore[arg-type]
            budget=budget,
        )
        self._clock = clock or monotonic
        self._sleep = sleep or real_sleep
        self._async_sleep = async_sleep or real_async_sleep
        self._rng = rng or random.Random()
        self._is_retryable: Callable[[BaseException], bool] | None = (
            None if is_tenacity(on) else exception_predicate(on, "on")
        )
        self._stop = attempts if is_tenacity(attempts) else None
        super().__init__(name)

    # -- hot path ----------------------------------------------------------------------------
    def _flags(self) -> tuple[bool, Callable[[Any], bool] | None, RetryBudget | None]:
        opts = self.options
        timed = opts.timeout is not None or self._stop is not None
        check: Callable[[Any], bool] | None = opts.retry_result
        if check is None and is_tenacity(opts.on) and checks_results(opts.on):
            check = self._tenacity_result_check
        return timed, check, opts.budget

    def _bind_sync(self, inner: Runner) -> Runner:
        timed, check, budget = self._flags()
        clock = self._clock
        again = self._again_sync
        direct = inner is invoke

        def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if budget is not None:
                budget.calls += 1
            start = clock() if timed else None
            try:
                result = fn(*args, **kwargs) if direct else inner(fn, args, kwargs)
            except Exception as exc:
                error = exc
            else:
                if check is None or not check(result):
                    return result
                return again(inner, fn, args, kwargs, start, None, result)
            return again(inner, fn, args, kwargs, start, error, None)

        return run

    def _bind_async(self, inner: AsyncRunner) -> AsyncRunner:
        timed, check, budget = self._flags()
        clock = self._clock
        again = self._again_async
        direct = inner is invoke

        async def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if budget is not None:
                budget.calls += 1
            start = clock() if timed else None
            try:
                result = await (fn(*args, **kwargs) if direct else inner(fn, args, kwargs))
            except Exception as exc:
                error = exc
            else:
                if check is None or not check(result):
                    return result
                return await again(inner, fn, args, kwargs, start, None, result)
            return await again(inner, fn, args, kwargs, start, error, None)

        return run

    # -- after a failure ---------------------------------------------------------------------
    def _again_sync(
        self,
        inner: Runner,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        start: float | None,
        error: BaseException | None,
        result: Any,
    ) -> Any:
        if start is None:
            start = self._clock()
        check = self._flags()[1]
        attempt = 1
        idle = 0.0
        while True:
            delay = self._decide(attempt, error, result, start, idle, fn, args, kwargs)
            if delay < 0:
                if error is not None:
                    raise error
                return result
            if delay > 0:
                self._sleep(delay)
                idle += delay
            attempt += 1
            error = None
            try:
                result = inner(fn, args, kwargs)
            except Exception as exc:
                error = exc
                continue
            if check is None or not check(result):
                return result

    async def _again_async(
        self,
        inner: AsyncRunner,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        start: float | None,
        error: BaseException | None,
        result: Any,
    ) -> Any:
        if start is None:
            start = self._clock()
        check = self._flags()[1]
        attempt = 1
        idle = 0.0
        while True:
            delay = self._decide(attempt, error, result, start, idle, fn, args, kwargs)
            if delay < 0:
                if error is not None:
                    raise error
                return result
            if delay > 0:
                await self._async_sleep(delay)
                idle += delay
            attempt += 1
            error = None
            try:
                result = await inner(fn, args, kwargs)
            except Exception as exc:
                error = exc
                continue
            if check is None or not check(result):
                return result

    def _tenacity_result_check(self, result: Any) -> bool:
        now = self._clock()
        state = AttemptState(None, (), {}, 1, Outcome(None, result), now, now, 0.0)
        return bool(self.options.on(state))

    def _decide(
        self,
        attempt: int,
        error: BaseException | None,
        result: Any,
        start: float,
        idle: float,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> float:
        """The wait before the next attempt, or `_GIVE_UP` / `_NOT_RETRYABLE` (< 0)."""
        opts = self.options
        now = self._clock()
        state: AttemptState | None = None

        def tenacity_state() -> AttemptState:
            nonlocal state
            if state is None:
                state = AttemptState(
                    fn, args, kwargs, attempt, Outcome(error, result), start, now, idle
                )
            return state

        if error is not None:
            if self._is_retryable is not None:
                if not self._is_retryable(error):
                    return _NOT_RETRYABLE
            elif not opts.on(tenacity_state()):
                return _NOT_RETRYABLE
        elif self._is_retryable is None and not opts.on(tenacity_state()):
            return _NOT_RETRYABLE

        hooks = self._hooks
        limit = opts.attempts if self._stop is None else None
        if _testing.active and _testing.attempts is not None:
            limit = _testing.attempts if limit is None else min(limit, _testing.attempts)
        if limit is not None and attempt >= limit:
            return self._exhausted(attempt, error, now)
        elapsed = now - start
        if opts.timeout is not None and elapsed >= opts.timeout:
            return self._exhausted(attempt, error, now)

        if opts.wait is not None:
            delay = float(
                opts.wait(tenacity_state()) if is_tenacity(opts.wait) else opts.wait(attempt)
            )
        else:
            ceiling = min(opts.wait_max, opts.wait_initial * opts.wait_exp_base ** (attempt - 1))
            delay = self._rng.uniform(0.0, ceiling) if opts.jitter else ceiling
        server_delay = None
        if error is not None and opts.respect_retry_after:
            server_delay = retry_after_of(error)
            if server_delay is not None:
                if opts.max_retry_after is not None and server_delay > opts.max_retry_after:
                    return self._exhausted(attempt, error, now)
                delay = max(delay, server_delay)
        if self._stop is not None:
            st = tenacity_state()
            st.upcoming_sleep = delay
            if self._stop(st):
                return self._exhausted(attempt, error, now)
        if opts.timeout is not None and elapsed + delay >= opts.timeout:
            return self._exhausted(attempt, error, now)
        if opts.budget is not None and not opts.budget.try_spend():
            if hooks.hooks:
                hooks.emit(RetryBudgetExhausted(self.name, now, attempt, error))
            return _GIVE_UP
        if hooks.hooks:
            hooks.emit(RetryScheduled(self.name, now, attempt, delay, error, server_delay))
        return 0.0 if _testing.active else delay

    def _exhausted(self, attempt: int, error: BaseException | None, now: float) -> float:
        if self._hooks.hooks:
            self._hooks.emit(RetryExhausted(self.name, now, attempt, error))
        return _GIVE_UP


def retry(
    *,
    on: Any,
    attempts: Any = DEFAULT_ATTEMPTS,
    timeout: float | timedelta | None = None,
    wait_initial: Any = DEFAULT_WAIT_INITIAL,
    wait_max: float | timedelta = DEFAULT_WAIT_MAX,
    wait_exp_base: float = DEFAULT_WAIT_EXP_BASE,
    jitter: bool = True,
    wait: Any = None,
    retry_result: Callable[[Any], bool] | None = None,
    respect_retry_after: bool = True,
    max_retry_after: float | timedelta | None = DEFAULT_MAX_RETRY_AFTER,
    budget: RetryBudget | None = None,
    name: str = "retry",
    clock: Clock | None = None,
    sleep: Sleep | None = None,
    async_sleep: AsyncSleep | None = None,
    rng: random.Random | None = None,
) -> Retry:
    """Build a `Retry` to use as a decorator: ``@retry(on=OSError, attempts=5)``.
    Same parameters as `Retry`."""
    return Retry(
        on=on,
        attempts=attempts,
        timeout=timeout,
        wait_initial=wait_initial,
        wait_max=wait_max,
        wait_exp_base=wait_exp_base,
        jitter=jitter,
        wait=wait,
        retry_result=retry_result,
        respect_retry_after=respect_retry_after,
        max_retry_after=max_retry_after,
        budget=budget,
        name=name,
        clock=clock,
        sleep=sleep,
        async_sleep=async_sleep,
        rng=rng,
    )
