"""What every policy shares: the runner protocol, ``call``/``call_async`` and the decorator.

A *runner* is ``run(fn, args, kwargs) -> result`` (async: returns an awaitable). Each
policy turns the runner it wraps into a new one with ``_bind_sync(inner)`` /
``_bind_async(inner)``; the innermost runner just calls ``fn(*args, **kwargs)``. Binding
happens once — when the policy is built, when a function is decorated, or when a
`Pipeline` is built — so a call pays one plain function call per stage and allocates
nothing for the composition. ``args``/``kwargs`` travel as one tuple and one dict, never
re-packed between stages.

Subclasses (including adapters such as the pybreaker stage) implement ``_bind_sync`` and
``_bind_async`` and call ``super().__init__(name)`` after their own fields are set.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar, cast

from resilience._events import Event, Hook, HookRegistry

__all__ = ["AsyncRunner", "Policy", "Runner"]

P = ParamSpec("P")
T = TypeVar("T")

Runner = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any]
AsyncRunner = Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Awaitable[Any]]


def invoke(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """The innermost runner, for both paths (an async ``fn`` returns its awaitable)."""
    return fn(*args, **kwargs)


class Policy:
    """Base of every policy: ``call``, ``call_async``, decorator use and hooks."""

    __slots__ = ("__weakref__", "_arun", "_hooks", "_run", "name")

    name: str
    _hooks: HookRegistry
    _run: Runner
    _arun: AsyncRunner

    def __init__(self, name: str) -> None:
        self.name = name
        if not hasattr(self, "_hooks"):
            self._hooks = HookRegistry()
        self._run = self._bind_sync(invoke)
        self._arun = self._bind_async(invoke)

    # -- composition protocol -------------------------------------------------------------
    def _bind_sync(self, inner: Runner) -> Runner:
        raise NotImplementedError

    def _bind_async(self, inner: AsyncRunner) -> AsyncRunner:
        raise NotImplementedError

    # -- hooks -------------------------------------------------------------------------------
    def add_hook(self, hook: Hook) -> None:
        """Deliver this policy's events to ``hook`` (a callable taking one `Event`)."""
        self._hooks.add(hook)

    def remove_hook(self, hook: Hook) -> None:
        """Stop delivering events to ``hook``."""
        self._hooks.remove(hook)

    def _emit(self, event: Event) -> None:
        self._hooks.emit(event)

    # -- calling -----------------------------------------------------------------------------
    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call the sync function ``fn(*args, **kwargs)`` through this policy."""
        result: T = self._run(fn, args, kwargs)  # an annotated assignment, not a cast() call
        return result

    async def call_async(
        self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """Await the ``async def`` function ``fn(*args, **kwargs)`` through this policy."""
        result: T = await self._arun(fn, args, kwargs)
        return result

    def __call__(self, fn: Callable[P, T]) -> Callable[P, T]:
        """Decorate ``fn`` (sync or ``async def``); the wrapper keeps its signature.

        ``async def`` is recognised with ``inspect.iscoroutinefunction``; for other
        callables that return awaitables, use ``call_async`` explicitly."""
        if inspect.iscoroutinefunction(fn):
            arun = self._arun

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                return await arun(fn, args, kwargs)

            return cast(Callable[P, T], async_wrapper)
        run = self._run

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return run(fn, args, kwargs)

        return cast(Callable[P, T], wrapper)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"
