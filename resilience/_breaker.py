"""Circuit breaker: failure *rate* over a sliding window, slow calls, half-open trials.

State machine (``breaker.state``)::

    closed ──(rate >= threshold over >= minimum_calls)──► open
    open ──(open_duration elapsed, on the next call)──► half_open
    half_open ──(half_open_calls trials done, rate below threshold)──► closed
    half_open ──(trial failures reach the threshold)──► open
    any ──open()/close()/force_open()/disable()──► open/closed/forced_open/disabled

Concurrency: the lock guards only a few field updates at admission and at recording; it
is never held while the protected call runs. Every transition bumps a generation number
and a call is recorded only if the generation it was admitted in is still current, so a
slow call admitted before a transition cannot skew the window (or trials) after it.
In half-open exactly ``half_open_calls`` trials are admitted per episode (an ignored
trial gives its slot back); everything else is rejected with `CircuitOpenError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from resilience._breaker_options import (
    _IGNORED,
    _NOT_RECORDED,
    CLOSED,
    DEFAULT_FAILURE_RATE_THRESHOLD,
    DEFAULT_HALF_OPEN_CALLS,
    DEFAULT_MINIMUM_CALLS,
    DEFAULT_OPEN_DURATION,
    DEFAULT_SLOW_CALL_RATE_THRESHOLD,
    DEFAULT_STORE_SYNC_INTERVAL,
    DEFAULT_WINDOW,
    DEFAULT_WINDOW_TYPE,
    DISABLED,
    FORCED_OPEN,
    HALF_OPEN,
    OPEN,
    BreakerMetrics,
    BreakerOptions,
)
from resilience._breaker_shared import SharedStateMixin
from resilience._breaker_store import BreakerStore
from resilience._clock import Clock, monotonic, wall
from resilience._errors import CircuitOpenError
from resilience._events import (
    BreakerStateChanged,
    CallAdmitted,
    CallRecorded,
    CallRejected,
    Event,
)
from resilience._policy import AsyncRunner, Runner, invoke
from resilience._predicates import ExceptionFilter, exception_predicate, exception_types
from resilience._windows import FAILURE, SLOW, CountWindow, TimeWindow, Window

__all__ = ["BreakerMetrics", "BreakerOptions", "CircuitBreaker"]


class CircuitBreaker(SharedStateMixin):
    """Stop calling a failing dependency; probe it again after ``open_duration``.

    ``CircuitBreaker(name, *, failure_rate_threshold=0.5, minimum_calls=10, window=100,
    window_type="count", slow_call_duration=None, slow_call_rate_threshold=1.0,
    open_duration=30.0, half_open_calls=1, record=Exception, ignore=(),
    failure_result=None, clock=None, store=None, store_sync_interval=1.0)``

    - The breaker opens when, over the sliding ``window`` (the last ``window`` calls, or
      the last ``window`` seconds with ``window_type="time"``) holding at least
      ``minimum_calls`` calls, the failure rate or the slow-call rate reaches its
      threshold. A call is slow when it takes ``>= slow_call_duration`` seconds.
    - Exceptions matching ``ignore`` count neither way; those matching ``record`` are
      failures; any other exception counts as a success (the dependency answered).
      ``record``/``ignore`` take an exception type, a tuple of them or a predicate.
      ``failure_result(result) -> bool`` marks returned values as failures.
      ``BaseException``\\ s that are not ``Exception``\\ s (cancellation, interrupts)
      are ignored.
    - Open, it rejects with `CircuitOpenError` until ``open_duration`` has passed; then
      it admits exactly ``half_open_calls`` concurrent trials and rejects the rest.
    - ``clock`` (seconds, monotonic) is injectable; ``store`` shares the coarse state
      with other processes (see `BreakerStore`).
    - Operators: `open`, `close`, `force_open` (until `close`), `disable` (let every
      call through, record nothing, until `close`).
    """

    __slots__ = (
        "_clock",
        "_count",
        "_gen",
        "_is_failure",
        "_is_ignored",
        "_lock",
        "_permits",
        "_state",
        "_trial_done",
        "_trial_failures",
        "_trial_slow",
        "_window",
        "options",
    )

    def __init__(
        self,
        name: str,
        *,
        failure_rate_threshold: float = DEFAULT_FAILURE_RATE_THRESHOLD,
        minimum_calls: int = DEFAULT_MINIMUM_CALLS,
        window: float | timedelta = DEFAULT_WINDOW,
        window_type: str = DEFAULT_WINDOW_TYPE,
        slow_call_duration: float | timedelta | None = None,
        slow_call_rate_threshold: float = DEFAULT_SLOW_CALL_RATE_THRESHOLD,
        open_duration: float | timedelta = DEFAULT_OPEN_DURATION,
        half_open_calls: int = DEFAULT_HALF_OPEN_CALLS,
        record: ExceptionFilter = Exception,
        ignore: ExceptionFilter = (),
        failure_result: Callable[[Any], bool] | None = None,
        clock: Clock | None = None,
        store: BreakerStore | None = None,
        store_sync_interval: float | timedelta = DEFAULT_STORE_SYNC_INTERVAL,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a circuit breaker needs a non-empty name, got {name!r}")
        self.options = BreakerOptions(
            failure_rate_threshold=failure_rate_threshold,
            minimum_calls=minimum_calls,
            window=window,  # type: ignore[arg-type]
            window_type=window_type,
            slow_call_duration=slow_call_duration,  # type: ignore[arg-type]
            slow_call_rate_threshold=slow_call_rate_threshold,
            open_duration=open_duration,  # type: ignore[arg-type]
            half_open_calls=half_open_calls,
            record=record,
            ignore=ignore,
            failure_result=failure_result,
            store_sync_interval=store_sync_interval,  # type: ignore[arg-type]
        )
        opts = self.options
        self._clock: Clock = clock or monotonic
        # Shared timestamps must agree across processes: wall clock, unless injected.
        self._store_clock: Clock = clock or wall
        self._lock = threading.Lock()
        self._state: str = CLOSED
        self._gen = 0
        self._count = CountWindow(int(opts.window)) if opts.window_type == "count" else None
        self._window: Window = self._count or TimeWindow(opts.window, self._clock)
        self._opened_at = 0.0
        self._open_until = 0.0
        self._permits = 0
        self._trial_done = self._trial_failures = self._trial_slow = 0
        self._is_failure = exception_predicate(record, "record")
        ignore_types = exception_types(ignore)
        self._is_ignored = None if ignore_types == () else exception_predicate(ignore, "ignore")
        self._store = store
        self._next_sync = 0.0
        self._seen_version = 0
        self._dirty = False
        self._degraded = False
        self._sync_store_ok = self._async_store_ok = store is not None
        super().__init__(name)

    # -- reading ---------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """``"closed"``, ``"open"``, ``"half_open"``, ``"forced_open"`` or ``"disabled"``.
        An open breaker whose ``open_duration`` has passed reports ``"open"`` until the
        next call moves it to half-open."""
        return self._state

    @property
    def metrics(self) -> BreakerMetrics:
        """The current window's totals."""
        with self._lock:
            w = self._window
            if isinstance(w, TimeWindow):
                w.refresh()
            calls, failures, slow = w.calls, w.failures, w.slow
            state = self._state
        return BreakerMetrics(
            state,
            calls,
            failures,
            slow,
            failures / calls if calls else 0.0,
            slow / calls if calls else 0.0,
        )

    # -- the call path -----------------------------------------------------------------------
    def _bind_sync(self, inner: Runner) -> Runner:
        clock = self._clock
        admit = self._admit
        record = self._record
        classify = self._classify
        finish = self._finish
        put = self._put_success
        always_timed = self.options.slow_call_duration is not None
        count = self._count
        plain = count is not None and not always_timed and self.options.failure_result is None
        hooks = self._hooks
        direct = inner is invoke  # innermost stage: call fn itself, one frame less

        def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            gen = self._gen
            if self._state is not CLOSED:
                # Inlined plain rejection: raising from this frame keeps the traceback short.
                if self._state is OPEN and not hooks.hooks:
                    remaining = self._open_until - clock()
                    if remaining > 0:
                        raise CircuitOpenError(self.name, remaining)
                gen = admit()
            if always_timed or hooks.hooks:
                now = clock()
                start: float | None = now
                if hooks.hooks:
                    hooks.emit(CallAdmitted(self.name, now, self._state))
            else:
                start = None  # untimed: no slow-call rule and no hook wants a duration
            try:
                result = fn(*args, **kwargs) if direct else inner(fn, args, kwargs)
            except BaseException as exc:
                duration = 0.0 if start is None else clock() - start
                record(gen, classify(exc, duration), duration, exc)
                raise
            if gen == self._gen:
                if plain and self._state is CLOSED and not hooks.hooks:
                    # A full window without failures or slow calls: a success changes
                    # nothing, not even which slot comes next (every slot holds 0).
                    if count.failures or count.slow or not count.full:  # type: ignore[union-attr]
                        slot = count.success_is_free()  # type: ignore[union-attr]
                        if slot >= 0:
                            put(gen, slot)
                else:
                    finish(gen, result, start)
            return result

        if self._store is None:
            return run
        sync = self._sync_before_call

        def run_shared(
            fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            sync()
            try:
                return run(fn, args, kwargs)
            finally:
                if self._dirty:
                    self._publish()

        return run_shared

    def _bind_async(self, inner: AsyncRunner) -> AsyncRunner:
        clock = self._clock
        admit = self._admit
        record = self._record
        classify = self._classify
        finish = self._finish
        put = self._put_success
        always_timed = self.options.slow_call_duration is not None
        count = self._count
        plain = count is not None and not always_timed and self.options.failure_result is None
        hooks = self._hooks
        direct = inner is invoke

        async def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            gen = self._gen
            if self._state is not CLOSED:
                # Inlined plain rejection: raising from this frame keeps the traceback short.
                if self._state is OPEN and not hooks.hooks:
                    remaining = self._open_until - clock()
                    if remaining > 0:
                        raise CircuitOpenError(self.name, remaining)
                gen = admit()
            if always_timed or hooks.hooks:
                now = clock()
                start: float | None = now
                if hooks.hooks:
                    hooks.emit(CallAdmitted(self.name, now, self._state))
            else:
                start = None  # untimed: no slow-call rule and no hook wants a duration
            try:
                result = await (fn(*args, **kwargs) if direct else inner(fn, args, kwargs))
            except BaseException as exc:
                duration = 0.0 if start is None else clock() - start
                record(gen, classify(exc, duration), duration, exc)
                raise
            if gen == self._gen:
                if plain and self._state is CLOSED and not hooks.hooks:
                    # A full window without failures or slow calls: a success changes
                    # nothing, not even which slot comes next (every slot holds 0).
                    if count.failures or count.slow or not count.full:  # type: ignore[union-attr]
                        slot = count.success_is_free()  # type: ignore[union-attr]
                        if slot >= 0:
                            put(gen, slot)
                else:
                    finish(gen, result, start)
            return result

        if self._store is None:
            return run

        async def run_shared(
            fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            await self._async_sync_before_call()
            try:
                return await run(fn, args, kwargs)
            finally:
                if self._dirty:
                    await self._apublish()

        return run_shared

    def _put_success(self, gen: int, slot: int) -> None:
        """Store a success in the count window slot it was given (the slot held a failure
        or the window is still filling, so totals change)."""
        lock = self._lock
        lock.acquire()
        try:
            if gen == self._gen and self._count is not None:
                self._count.put(slot, 0)
        finally:
            lock.release()

    def _finish(self, gen: int, result: Any, start: float | None) -> None:
        """Record a returned call outside the plain fast path."""
        duration = 0.0 if start is None else self._clock() - start
        opts = self.options
        outcome = 0
        if opts.failure_result is not None and opts.failure_result(result):
            outcome = FAILURE
        if opts.slow_call_duration is not None and duration >= opts.slow_call_duration:
            outcome |= SLOW
        self._record(gen, outcome, duration)

    def _classify(self, exc: BaseException, duration: float) -> int:
        if not isinstance(exc, Exception):
            return _IGNORED
        ignored = self._is_ignored
        if ignored is not None and ignored(exc):
            return _IGNORED
        slow_after = self.options.slow_call_duration
        slow = SLOW if slow_after is not None and duration >= slow_after else 0
        return (FAILURE if self._is_failure(exc) else 0) | slow

    def _admit(self) -> int:
        """Admission when not closed: returns the generation to record under, or raises.
        Plain rejections (open and not yet due, forced open) take no lock."""
        state = self._state
        if state is OPEN:
            now = self._clock()
            remaining = self._open_until - now
            if remaining > 0:
                if self._hooks.hooks:
                    self._hooks.emit(
                        CallRejected(self.name, now, "circuit_breaker", "circuit_open")
                    )
                raise CircuitOpenError(self.name, remaining)
        elif state is FORCED_OPEN:
            if self._hooks.hooks:
                self._hooks.emit(
                    CallRejected(self.name, self._clock(), "circuit_breaker", "forced_open")
                )
            raise CircuitOpenError(self.name, None)
        elif state is DISABLED:
            return _NOT_RECORDED
        return self._admit_locked()

    def _admit_locked(self) -> int:
        now = self._clock()
        changed: Event | None = None
        reason = ""
        remaining: float | None = None
        gen = _NOT_RECORDED
        with self._lock:
            state = self._state
            if state is OPEN and now >= self._open_until:
                changed = self._to(HALF_OPEN, now, "open_elapsed")
                state = HALF_OPEN
            if state is HALF_OPEN:
                if self._permits > 0:
                    self._permits -= 1
                    gen = self._gen
                else:
                    reason = "half_open_full"
            elif state is CLOSED:
                gen = self._gen
            elif state is OPEN:
                reason = "circuit_open"
                remaining = self._open_until - now
            elif state is FORCED_OPEN:
                reason = "forced_open"
        if changed is not None and self._hooks.hooks:
            self._hooks.emit(changed)
        if reason:
            if self._hooks.hooks:
                self._hooks.emit(CallRejected(self.name, now, "circuit_breaker", reason))
            raise CircuitOpenError(self.name, remaining)
        return gen

    def _record(
        self, gen: int, outcome: int, duration: float, error: BaseException | None = None
    ) -> None:
        changed: Event | None = None
        with self._lock:
            if gen != self._gen:
                return
            state = self._state
            if state is CLOSED:
                if outcome != _IGNORED:
                    w = self._window
                    w.record(outcome)
                    if outcome and w.calls >= self.options.minimum_calls:
                        opts = self.options
                        if w.failures >= opts.failure_rate_threshold * w.calls:
                            changed = self._to(OPEN, self._clock(), "failure_rate")
                        elif w.slow >= opts.slow_call_rate_threshold * w.calls:
                            changed = self._to(OPEN, self._clock(), "slow_call_rate")
            elif state is HALF_OPEN:
                if outcome == _IGNORED:
                    self._permits += 1
                else:
                    opts = self.options
                    n = opts.half_open_calls
                    self._trial_done += 1
                    if outcome & FAILURE:
                        self._trial_failures += 1
                    if outcome & SLOW:
                        self._trial_slow += 1
                    if (
                        self._trial_failures >= opts.failure_rate_threshold * n
                        or self._trial_slow >= opts.slow_call_rate_threshold * n
                    ):
                        changed = self._to(OPEN, self._clock(), "trial_failed")
                    elif self._trial_done >= n:
                        changed = self._to(CLOSED, self._clock(), "trials_succeeded")
        hooks = self._hooks
        if hooks.hooks:
            if outcome == _IGNORED:
                name = "ignored"
            else:
                name = "failure" if outcome & FAILURE else "success"
                if outcome & SLOW:
                    name = "slow_" + name
            hooks.emit(CallRecorded(self.name, self._clock(), name, duration, state, error))
            if changed is not None:
                hooks.emit(changed)

    def _to(self, new: str, now: float, reason: str) -> BreakerStateChanged:
        """Transition (under the lock) and return the event to emit after releasing it."""
        old = self._state
        self._state = new
        self._gen += 1
        if new is OPEN:
            self._opened_at = now
            self._open_until = now + self.options.open_duration
        elif new is HALF_OPEN:
            self._permits = self.options.half_open_calls
            self._trial_done = self._trial_failures = self._trial_slow = 0
        elif new is CLOSED:
            self._window.reset()
        if self._store is not None and reason != "shared_state":
            self._dirty = True
        return BreakerStateChanged(self.name, now, old, new, reason)

    # -- operators ---------------------------------------------------------------------------
    def _manual(self, new: str) -> None:
        with self._lock:
            event = self._to(new, self._clock(), "manual")
        self._hooks.emit(event)
        if self._dirty and self._sync_store_ok:
            self._publish()

    def open(self) -> None:
        """Open now, for ``open_duration``, then probe with half-open trials as usual."""
        self._manual(OPEN)

    def close(self) -> None:
        """Close now with an empty window (also ends `force_open` and `disable`)."""
        self._manual(CLOSED)

    def force_open(self) -> None:
        """Reject every call until `close` is called."""
        self._manual(FORCED_OPEN)

    def disable(self) -> None:
        """Let every call through and record nothing until `close` is called."""
        self._manual(DISABLED)
