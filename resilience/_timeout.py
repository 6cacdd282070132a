"""Timeout: give up on a call that takes longer than ``seconds``.

Async (``call_async``, ``async def``): the call's task is really cancelled when time is
up and `TimeoutRejectedError` is raised (chained from the ``CancelledError``), as with
``asyncio.timeout`` — but one timer per policy and loop serves every call in flight,
instead of one timer per call (see `_Watchdog`).

Sync: Python cannot pre-empt a thread, so a sync timeout cannot stop a blocking call.
Two honest choices, picked with ``sync_mode``:

- ``"check"`` (default): the call runs in the caller's thread to the end; if it took
  longer than ``seconds``, its result is discarded and `TimeoutRejectedError` is raised
  (an exception it raised is re-raised as it is). Callers upstream then see one
  uniform "too slow" signal and latency budgets compose, at no extra thread. To bound
  the *wait* itself, also set the client's own socket/IO timeouts.
- ``"thread"``: the call runs in a worker thread and the caller stops waiting after
  ``seconds`` with `TimeoutRejectedError`; the worker thread keeps running to the end
  in the background (its result is dropped). Use it only for calls that are safe to
  abandon, and size ``max_workers`` for the overruns you expect.

Either way, a call that timed out may still have had its effect (like a payment whose
reply was lost): treat it as "unknown", never as "did not happen".
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from resilience._clock import Clock, monotonic, seconds
from resilience._errors import TimeoutRejectedError
from resilience._events import CallRejected
from resilience._policy import AsyncRunner, Policy, Runner, invoke

__all__ = ["Timeout", "TimeoutOptions"]

SYNC_MODES = ("check", "thread")
DEFAULT_SYNC_MODE = "check"
DEFAULT_MAX_WORKERS = 8


@dataclass(frozen=True, slots=True)
class TimeoutOptions:
    """The validated configuration of a `Timeout`."""

    seconds: float
    sync_mode: str = DEFAULT_SYNC_MODE
    max_workers: int = DEFAULT_MAX_WORKERS

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "seconds", seconds(self.seconds, "timeout seconds", allow_zero=False)
        )
        if self.sync_mode not in SYNC_MODES:
            raise ValueError(f"sync_mode must be one of {SYNC_MODES}, got {self.sync_mode!r}")
        if (
            isinstance(self.max_workers, bool)
            or not isinstance(self.max_workers, int)
            or self.max_workers < 1
        ):
            raise ValueError(f"max_workers must be an integer >= 1, got {self.max_workers!r}")


class Timeout(Policy):
    """``Timeout(seconds, *, sync_mode="check", max_workers=8, name="timeout",
    clock=None)``: reject calls slower than ``seconds`` with `TimeoutRejectedError`.
    Read the module docs for what a sync timeout can and cannot do."""

    __slots__ = ("_clock", "_executor", "_executor_lock", "_watchdog", "options")

    def __init__(
        self,
        seconds: float | timedelta,
        *,
        sync_mode: str = DEFAULT_SYNC_MODE,
        max_workers: int = DEFAULT_MAX_WORKERS,
        name: str = "timeout",
        clock: Clock | None = None,
    ) -> None:
        self.options = TimeoutOptions(seconds, sync_mode, max_workers)  # type: ignore[arg-type]
        self._clock = clock or monotonic
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        self._watchdog: _Watchdog | None = None
        super().__init__(name)

    def _rejected(self) -> TimeoutRejectedError:
        if self._hooks.hooks:
            self._hooks.emit(CallRejected(self.name, self._clock(), "timeout", "timeout"))
        return TimeoutRejectedError(self.name, self.options.seconds)

    def _bind_sync(self, inner: Runner) -> Runner:
        limit = self.options.seconds
        clock = self._clock
        rejected = self._rejected
        direct = inner is invoke
        if self.options.sync_mode == "thread":
            pool = self._pool

            def run_in_thread(
                fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
            ) -> Any:
                future = pool().submit(inner, fn, args, kwargs)
                try:
                    return future.result(timeout=limit)
                except concurrent.futures.TimeoutError:
                    future.cancel()
                    raise rejected() from None

            return run_in_thread

        def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            start = clock()
            result = fn(*args, **kwargs) if direct else inner(fn, args, kwargs)
            if clock() - start > limit:
                raise rejected()
            return result

        return run

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor is None:
            with self._executor_lock:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        self.options.max_workers, thread_name_prefix=f"timeout-{self.name}"
                    )
        return self._executor

    def _bind_async(self, inner: AsyncRunner) -> AsyncRunner:
        limit = self.options.seconds
        rejected = self._rejected
        keys = itertools.count()
        get_loop = asyncio.get_running_loop
        current_task = asyncio.current_task

        async def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            loop = get_loop()
            watchdog = self._watchdog
            if watchdog is None or watchdog.loop is not loop:
                watchdog = self._watchdog = _Watchdog(loop)
            task = current_task()
            key = next(keys)
            deadline = loop.time() + limit
            calls = watchdog.calls
            calls[key] = (deadline, task)
            if watchdog.handle is None:
                watchdog.handle = loop.call_at(deadline, watchdog.fire)
            try:
                result = await inner(fn, args, kwargs)
            except asyncio.CancelledError as exc:
                if calls.pop(key, None) is None and task is not None:  # our deadline fired
                    task.uncancel()
                    raise rejected() from exc
                raise
            except BaseException:
                calls.pop(key, None)
                raise
            if calls.pop(key, None) is None and task is not None:
                task.uncancel()  # the deadline fired as the call completed: the result stands
            return result

        return run


class _Watchdog:
    """All in-flight async calls of one `Timeout` on one loop, and a single timer.

    A timer per call (what ``asyncio.timeout`` does) costs several microseconds; here a
    call only adds and removes a dict entry. Entries are inserted in deadline order (one
    limit, a monotonic loop clock), so the timer always targets the oldest entry: when it
    fires it cancels every expired call (removing its entry, which is how the call knows
    the cancellation was ours) and re-arms for the oldest call still running.
    """

    __slots__ = ("calls", "handle", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.calls: dict[int, tuple[float, asyncio.Task[Any] | None]] = {}
        self.handle: asyncio.TimerHandle | None = None

    def fire(self) -> None:
        self.handle = None
        calls = self.calls
        now = self.loop.time()
        expired = []
        for key, (deadline, _task) in calls.items():
            if deadline > now:
                self.handle = self.loop.call_at(deadline, self.fire)
                break
            expired.append(key)
        for key in expired:
            _deadline, task = calls.pop(key)
            if task is not None:
                task.cancel()
