"""Fallback: answer with a substitute when the call fails (or returns a bad value).

``fallback(error)`` receives the exception that triggered it, or ``None`` when the
``result`` predicate rejected a returned value; on the async path it may be an
``async def`` (its result is awaited). An exception the fallback raises propagates,
chained to the original one.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from resilience._clock import monotonic
from resilience._events import FallbackUsed
from resilience._policy import AsyncRunner, Policy, Runner
from resilience._predicates import ExceptionFilter, exception_predicate

__all__ = ["Fallback", "FallbackOptions"]


@dataclass(frozen=True, slots=True)
class FallbackOptions:
    """The validated configuration of a `Fallback`."""

    fallback: Callable[[BaseException | None], Any]
    on: ExceptionFilter = Exception
    result: Callable[[Any], bool] | None = None

    def __post_init__(self) -> None:
        if not callable(self.fallback):
            raise TypeError(f"fallback must be a callable(error) -> value, got {self.fallback!r}")
        exception_predicate(self.on, "on")
        if self.result is not None and not callable(self.result):
            raise TypeError(f"result must be a predicate on the result, got {self.result!r}")


class Fallback(Policy):
    """``Fallback(fallback, *, on=Exception, result=None, name="fallback")``."""

    __slots__ = ("_on", "options")

    def __init__(
        self,
        fallback: Callable[[BaseException | None], Any],
        *,
        on: ExceptionFilter = Exception,
        result: Callable[[Any], bool] | None = None,
        name: str = "fallback",
    ) -> None:
        self.options = FallbackOptions(fallback, on, result)
        self._on = exception_predicate(on, "on")
        super().__init__(name)

    def _used(self, error: BaseException | None) -> None:
        if self._hooks.hooks:
            self._hooks.emit(FallbackUsed(self.name, monotonic(), error))

    def _bind_sync(self, inner: Runner) -> Runner:
        on = self._on
        fallback = self.options.fallback
        bad = self.options.result
        used = self._used

        def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            try:
                result = inner(fn, args, kwargs)
            except Exception as exc:
                if not on(exc):
                    raise
                used(exc)
                return fallback(exc)
            if bad is not None and bad(result):
                used(None)
                return fallback(None)
            return result

        return run

    def _bind_async(self, inner: AsyncRunner) -> AsyncRunner:
        on = self._on
        fallback = self.options.fallback
        bad = self.options.result
        used = self._used

        async def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            try:
                result = await inner(fn, args, kwargs)
            except Exception as exc:
                if not on(exc):
                    raise
                used(exc)
                value = fallback(exc)
                return await value if inspect.isawaitable(value) else value
            if bad is not None and bad(result):
                used(None)
                value = fallback(None)
                return await value if inspect.isawaitable(value) else value
            return result

        return run
