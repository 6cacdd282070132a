"""Bulkhead: at most ``max_concurrent`` calls at once, at most ``max_queued`` waiting.

A call that finds every slot taken waits in the queue (FIFO for async; for threads the
order is the OS's) for at most ``max_wait`` seconds (``None``: as long as it takes);
with the queue full too, or when the wait runs out, it is rejected with
`BulkheadFullError`. The lock guards only the counters, never the call.

Sync calls (threads) and async calls (one event loop) are limited separately: a
bulkhead instance keeps one set of counters per path. Use one bulkhead per path.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from resilience._clock import Clock, monotonic, seconds
from resilience._errors import BulkheadFullError
from resilience._events import CallRejected
from resilience._policy import AsyncRunner, Policy, Runner, invoke

__all__ = ["Bulkhead", "BulkheadOptions"]

DEFAULT_MAX_QUEUED = 0


@dataclass(frozen=True, slots=True)
class BulkheadOptions:
    """The validated configuration of a `Bulkhead`."""

    max_concurrent: int
    max_queued: int = DEFAULT_MAX_QUEUED
    max_wait: float | None = None

    def __post_init__(self) -> None:
        for what, value, low in (
            ("max_concurrent", self.max_concurrent, 1),
            ("max_queued", self.max_queued, 0),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{what} must be an integer >= {low}, got {value!r}")
        if self.max_wait is not None:
            object.__setattr__(self, "max_wait", seconds(self.max_wait, "max_wait"))


class Bulkhead(Policy):
    """``Bulkhead(max_concurrent, *, max_queued=0, max_wait=None, name="bulkhead",
    clock=None)``: limit concurrency; see the module docs."""

    __slots__ = (
        "_arunning",
        "_clock",
        "_cond",
        "_lock",
        "_queued",
        "_running",
        "_waiters",
        "options",
    )

    def __init__(
        self,
        max_concurrent: int,
        *,
        max_queued: int = DEFAULT_MAX_QUEUED,
        max_wait: float | timedelta | None = None,
        name: str = "bulkhead",
        clock: Clock | None = None,
    ) -> None:
        self.options = BulkheadOptions(max_concurrent, max_queued, max_wait)  # type: ignore[arg-type]
        self._clock = clock or monotonic
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._running = 0
        self._queued = 0
        self._arunning = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        super().__init__(name)

    @property
    def running(self) -> int:
        """Calls running now (sync + async)."""
        return self._running + self._arunning

    @property
    def queued(self) -> int:
        """Calls waiting for a slot now (sync + async)."""
        return self._queued + len(self._waiters)

    def _reject(self) -> BulkheadFullError:
        if self._hooks.hooks:
            self._hooks.emit(CallRejected(self.name, self._clock(), "bulkhead", "bulkhead_full"))
        return BulkheadFullError(self.name, self.options.max_concurrent, self.options.max_queued)

    # -- threads -------------------------------------------------------------------------------
    def _bind_sync(self, inner: Runner) -> Runner:
        lock = self._lock
        limit = self.options.max_concurrent
        wait = self._wait_for_slot
        release = self._release
        direct = inner is invoke

        def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            lock.acquire()
            if self._running < limit:
                self._running += 1
                lock.release()
            else:
                wait()  # releases the lock; returns holding a slot, or raises
            try:
                return fn(*args, **kwargs) if direct else inner(fn, args, kwargs)
            finally:
                release()

        return run

    def _release(self) -> None:
        with self._lock:
            self._running -= 1
            if self._queued:
                self._cond.notify()

    def _wait_for_slot(self) -> None:
        """Called holding the lock with every slot taken."""
        try:
            opts = self.options
            if self._queued >= opts.max_queued:
                raise self._reject()
            self._queued += 1
            try:
                deadline = None if opts.max_wait is None else self._clock() + opts.max_wait
                while self._running >= opts.max_concurrent:
                    remaining = None if deadline is None else deadline - self._clock()
                    if remaining is not None and remaining <= 0:
                        raise self._reject()
                    self._cond.wait(remaining)
                self._running += 1
            finally:
                self._queued -= 1
        finally:
            self._lock.release()

    # -- asyncio -------------------------------------------------------------------------------
    def _bind_async(self, inner: AsyncRunner) -> AsyncRunner:
        limit = self.options.max_concurrent
        enqueue = self._enqueue
        release = self._arelease

        async def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if self._arunning < limit and not self._waiters:
                self._arunning += 1
            else:
                await enqueue()
            try:
                return await inner(fn, args, kwargs)
            finally:
                release()

        return run

    async def _enqueue(self) -> None:
        opts = self.options
        if len(self._waiters) >= opts.max_queued:
            raise self._reject()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            if opts.max_wait is None:
                await waiter
            else:
                await asyncio.wait_for(waiter, opts.max_wait)
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._arelease()  # the slot was handed to us just as we gave up
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise self._reject() from None
            raise

    def _arelease(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # hand the slot over; the running count stays
                return
        self._arunning -= 1
