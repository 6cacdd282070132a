"""Hedge: if no answer came within ``delay``, send the same call again; first success wins.

Up to ``max_hedges`` extra attempts are launched, one per ``delay`` while none has
succeeded; an attempt that fails makes the next one start at once. The first successful
attempt's result is returned; if every attempt fails, the last failure is raised.

Async: attempts are tasks on the running loop; the losers are cancelled.

Sync: a blocking call cannot be watched while it runs in the caller's thread, so every
attempt runs in the hedge's own thread pool (``max_workers``) and the caller waits.
Threads cannot be cancelled: a losing attempt that already started runs to its end in
the background and its result is dropped. Hedge only idempotent calls.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from resilience._clock import Clock, monotonic, seconds
from resilience._events import HedgeLaunched
from resilience._policy import AsyncRunner, Policy, Runner
from resilience._testing import state as _testing

__all__ = ["Hedge", "HedgeOptions"]

DEFAULT_MAX_HEDGES = 1
DEFAULT_MAX_WORKERS = 16


@dataclass(frozen=True, slots=True)
class HedgeOptions:
    """The validated configuration of a `Hedge`."""

    delay: float
    max_hedges: int = DEFAULT_MAX_HEDGES
    max_workers: int = DEFAULT_MAX_WORKERS

    def __post_init__(self) -> None:
        object.__setattr__(self, "delay", seconds(self.delay, "delay"))
        for what, value in (("max_hedges", self.max_hedges), ("max_workers", self.max_workers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be an integer >= 1, got {value!r}")


class Hedge(Policy):
    """``Hedge(delay, *, max_hedges=1, max_workers=16, name="hedge", clock=None)``;
    see the module docs (sync attempts run in threads)."""

    __slots__ = ("_clock", "_executor", "_executor_lock", "options")

    def __init__(
        self,
        delay: float | timedelta,
        *,
        max_hedges: int = DEFAULT_MAX_HEDGES,
        max_workers: int = DEFAULT_MAX_WORKERS,
        name: str = "hedge",
        clock: Clock | None = None,
    ) -> None:
        self.options = HedgeOptions(delay, max_hedges, max_workers)  # type: ignore[arg-type]
        self._clock = clock or monotonic
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._executor_lock = threading.Lock()
        super().__init__(name)

    def _launched(self, attempt: int) -> None:
        if self._hooks.hooks:
            self._hooks.emit(HedgeLaunched(self.name, self._clock(), attempt))

    def _delay(self) -> float:
        return 0.0 if _testing.active else self.options.delay

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor is None:
            with self._executor_lock:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        self.options.max_workers, thread_name_prefix=f"hedge-{self.name}"
                    )
        return self._executor

    def _bind_sync(self, inner: Runner) -> Runner:
        total = 1 + self.options.max_hedges

        def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            pool = self._pool()
            pending = {pool.submit(inner, fn, args, kwargs)}
            launched = 1
            error: BaseException | None = None
            while pending:
                done, pending = concurrent.futures.wait(
                    pending,
                    timeout=self._delay() if launched < total else None,
                    return_when=concurrent.futures.FIRST_COMPLETED,
                )
                for future in done:
                    failure = future.exception()
                    if failure is None:
                        for loser in pending:
                            loser.cancel()
                        return future.result()
                    error = failure
                if launched < total:
                    launched += 1
                    self._launched(launched)
                    pending.add(pool.submit(inner, fn, args, kwargs))
            assert error is not None
            raise error

        return run

    def _bind_async(self, inner: AsyncRunner) -> AsyncRunner:
        total = 1 + self.options.max_hedges

        async def attempt(
            fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
        ) -> Any:
            return await inner(fn, args, kwargs)

        async def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            pending: set[asyncio.Task[Any]] = {asyncio.ensure_future(attempt(fn, args, kwargs))}
            launched = 1
            error: BaseException | None = None
            try:
                while pending:
                    done, pending = await asyncio.wait(
                        pending,
                        timeout=self._delay() if launched < total else None,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    for task in done:
                        if task.cancelled():
                            continue
                        failure = task.exception()
                        if failure is None:
                            return task.result()
                        error = failure
                    if launched < total:
                        launched += 1
                        self._launched(launched)
                        pending.add(asyncio.ensure_future(attempt(fn, args, kwargs)))
            finally:
                for loser in pending:
                    loser.cancel()
            if error is None:
                raise asyncio.CancelledError()
            raise error

        return run
