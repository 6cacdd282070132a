"""Interop with pybreaker, both ways.

`PyBreakerStage` makes a ``pybreaker.CircuitBreaker`` a stage of a `Pipeline` (or a
policy on its own: ``.call``, ``.call_async``, decorator)::

    legacy = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30, name="risk")
    pipeline = Pipeline(Retry(on=OSError), PyBreakerStage(legacy), Timeout(0.8))

Why not ``legacy.call``: on an ``async def`` function pybreaker's ``call`` only creates
the coroutine and counts that as a success; the failure happens later, when someone
awaits it, and pybreaker never sees it (its ``call_async`` needs Tornado). It also holds
the breaker's lock while the protected function runs, which serialises every thread
calling through one breaker. The stage drives pybreaker's own state objects instead
(state, counters, storage, listeners, exclusions are all pybreaker's), but decides
admission itself, records the outcome after the call (awaited, for ``call_async``) and
never holds the lock during the call. Differences from ``pybreaker.call``, by design:

- half-open admits one trial at a time (pybreaker gets that from its lock); others are
  rejected;
- a rejection raises `PyBreakerOpenError`, which is both our `CircuitOpenError` and a
  ``pybreaker.CircuitBreakerError``, so either ``except`` works;
- the call that trips the breaker re-raises the function's own exception (our error
  contract), not pybreaker's "Failures threshold reached" ``CircuitBreakerError``;
- an outcome arriving after the state changed under it is not recorded (a slow call
  admitted while closed cannot count against a breaker that opened meanwhile);
- ``BaseException``\\ s that are not ``Exception``\\ s (cancellation) count neither way.

The stage also emits our events (`BreakerStateChanged`, `CallRejected`, `CallRecorded`)
to its hooks, so `PrometheusHook`/`LoggingHook` work on it as on our breaker.

`PyBreakerListenerHook` goes the other way: it lets a ``pybreaker.CircuitBreakerListener``
subscribe to *our* `CircuitBreaker`'s events (``state_change``, ``success``,
``failure``; see its docstring for ``before_call``).

pybreaker is imported when a stage is built, never by ``import resilience``.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any, cast

from resilience._errors import CircuitOpenError
from resilience._events import BreakerStateChanged, CallRecorded, CallRejected, Event
from resilience._policy import AsyncRunner, Policy, Runner

# PyBreakerOpenError is built on first use (module __getattr__), so pybreaker stays lazy.
__all__ = ["PyBreakerListenerHook", "PyBreakerOpenError", "PyBreakerStage"]  # noqa: F822

# pybreaker's state names <-> ours.
_TO_OURS = {"closed": "closed", "open": "open", "half-open": "half_open"}
_TO_PYBREAKER = {
    "closed": "closed",
    "open": "open",
    "half_open": "half-open",
    "forced_open": "open",
    "disabled": "closed",
}
_CLOSED = "closed"
_OPEN = "open"
_HALF_OPEN = "half-open"


class _TrialGate:
    """Whether a half-open trial is in flight, shared by every stage over one pybreaker
    (a breaker may sit in several pipelines: still one trial at a time)."""

    __slots__ = ("busy",)

    def __init__(self) -> None:
        self.busy = False


_gates: weakref.WeakKeyDictionary[Any, _TrialGate] = weakref.WeakKeyDictionary()


def _gate_for(breaker: Any) -> _TrialGate:
    with breaker._lock:
        gate = _gates.get(breaker)
        if gate is None:
            gate = _gates[breaker] = _TrialGate()
        return gate


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)  # noqa: UP017 - pybreaker compares aware datetimes


_open_error: type[CircuitOpenError] | None = None


def _open_error_type() -> type[CircuitOpenError]:
    """`PyBreakerOpenError`, built on first use so that pybreaker is imported lazily."""
    global _open_error
    if _open_error is None:
        import pybreaker

        class PyBreakerOpenError(CircuitOpenError, pybreaker.CircuitBreakerError):
            """A `PyBreakerStage` rejected the call: both our `CircuitOpenError` and
            a ``pybreaker.CircuitBreakerError``."""

        PyBreakerOpenError.__module__ = __name__
        PyBreakerOpenError.__qualname__ = "PyBreakerOpenError"
        _open_error = PyBreakerOpenError
    return _open_error


def __getattr__(name: str) -> Any:
    if name == "PyBreakerOpenError":
        return _open_error_type()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _EventBridge:
    """A pybreaker listener that turns the wrapped breaker's transitions into our events."""

    def __init__(self, stage: PyBreakerStage) -> None:
        self._stage = stage

    def before_call(self, cb: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def success(self, cb: Any) -> None:
        pass

    def failure(self, cb: Any, exc: BaseException) -> None:
        pass

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        stage = self._stage
        if stage._hooks.hooks:
            old = "closed" if old_state is None else _TO_OURS.get(old_state.name, old_state.name)
            new = _TO_OURS.get(new_state.name, new_state.name)
            stage._hooks.emit(BreakerStateChanged(stage.name, stage._monotonic(), old, new))


class PyBreakerStage(Policy):
    """A ``pybreaker.CircuitBreaker`` as a policy / `Pipeline` stage (see module docs).

    ``name`` defaults to the pybreaker's name (or ``"pybreaker"``); ``clock`` returns the
    current time as an aware ``datetime`` (pybreaker's timestamps are UTC datetimes) and
    is injectable for tests.
    """

    __slots__ = ("_clock", "_error", "_gate", "_monotonic", "breaker")

    def __init__(
        self,
        breaker: Any,
        *,
        name: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        import pybreaker

        if not isinstance(breaker, pybreaker.CircuitBreaker):
            raise TypeError(f"PyBreakerStage needs a pybreaker.CircuitBreaker, got {breaker!r}")
        self.breaker = breaker
        self._clock = clock
        self._monotonic = _monotonic_from(clock)
        self._gate = _gate_for(breaker)
        self._error = _open_error_type()
        breaker.add_listener(cast(Any, _EventBridge(self)))
        super().__init__(name or breaker.name or "pybreaker")

    @property
    def state(self) -> str:
        """The pybreaker's state in our vocabulary: ``closed``, ``open``, ``half_open``."""
        name: str = self.breaker.current_state
        return _TO_OURS.get(name, name)

    # -- admission and recording (the pybreaker's lock is held only in here) -------------------
    def _admit(self, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        """Return the pybreaker state name the call is admitted in, or raise."""
        cb = self.breaker
        reason = ""
        remaining: float | None = None
        with cb._lock:
            state = cb.state.name
            if state == _OPEN:
                opened_at = cb._state_storage.opened_at
                if opened_at is not None:
                    left = opened_at + timedelta(seconds=cb.reset_timeout) - self._clock()
                    remaining = left.total_seconds()
                if remaining is not None and remaining > 0:
                    reason = "circuit_open"
                else:
                    cb.half_open()
                    state = _HALF_OPEN
            if state == _HALF_OPEN and not reason:
                if self._gate.busy:
                    reason = "half_open_full"
                    remaining = None
                else:
                    self._gate.busy = True
            if not reason:
                try:
                    for listener in cb.listeners:
                        listener.before_call(cb, fn, *args, **kwargs)
                except BaseException:
                    if state == _HALF_OPEN:
                        self._gate.busy = False
                    raise
        if reason:
            if self._hooks.hooks:
                self._hooks.emit(
                    CallRejected(self.name, self._monotonic(), "circuit_breaker", reason)
                )
            raise self._error(self.name, remaining)
        return str(state)

    def _succeeded(self, admitted: str, duration: float) -> None:
        cb = self.breaker
        with cb._lock:
            if admitted == _HALF_OPEN:
                self._gate.busy = False
            state = cb.state
            current = state.name
            if current == admitted:
                state._handle_success()
        if self._hooks.hooks and current == admitted:
            self._recorded("success", duration, admitted)

    def _failed(self, exc: BaseException, admitted: str, duration: float) -> None:
        import pybreaker

        cb = self.breaker
        outcome = "ignored"
        with cb._lock:
            if admitted == _HALF_OPEN:
                self._gate.busy = False
            state = cb.state
            current = state.name
            if current == admitted and isinstance(exc, Exception):
                outcome = "failure" if cb.is_system_error(exc) else "success"
                # A trip raises pybreaker's error; the caller gets the function's own instead.
                with contextlib.suppress(pybreaker.CircuitBreakerError):
                    state._handle_error(exc, reraise=False)
                if self._clock is not _utcnow and cb.current_state == _OPEN:
                    # pybreaker stamped real UTC time; an injected clock must own the period.
                    cb._state_storage.opened_at = self._clock()
        if self._hooks.hooks:
            self._recorded(outcome, duration, admitted)

    def _recorded(self, outcome: str, duration: float, admitted: str) -> None:
        state = _TO_OURS.get(admitted, admitted)
        self._hooks.emit(CallRecorded(self.name, self._monotonic(), outcome, duration, state))

    # -- composition ---------------------------------------------------------------------------
    def _bind_sync(self, inner: Runner) -> Runner:
        admit, succeeded, failed, hooks = self._admit, self._succeeded, self._failed, self._hooks
        now = self._monotonic

        def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            admitted = admit(fn, args, kwargs)
            start = now() if hooks.hooks else 0.0
            try:
                result = inner(fn, args, kwargs)
            except BaseException as exc:
                failed(exc, admitted, now() - start if start else 0.0)
                raise
            succeeded(admitted, now() - start if start else 0.0)
            return result

        return run

    def _bind_async(self, inner: AsyncRunner) -> AsyncRunner:
        admit, succeeded, failed, hooks = self._admit, self._succeeded, self._failed, self._hooks
        now = self._monotonic

        async def run(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            admitted = admit(fn, args, kwargs)
            start = now() if hooks.hooks else 0.0
            try:
                result = await inner(fn, args, kwargs)
            except BaseException as exc:
                failed(exc, admitted, now() - start if start else 0.0)
                raise
            succeeded(admitted, now() - start if start else 0.0)
            return result

        return run


def _monotonic_from(clock: Callable[[], datetime]) -> Callable[[], float]:
    """Event timestamps in seconds from the stage's clock (so a fake clock drives both)."""
    if clock is _utcnow:
        import time

        return time.monotonic
    return lambda: clock().timestamp()


# -- our breaker's events -> pybreaker listeners ---------------------------------------------------
class _StateView:
    """What a pybreaker listener reads from a state: its ``name`` (pybreaker spelling)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<state {self.name}>"


class _BreakerView:
    """The ``cb`` argument pybreaker listeners receive: enough of a pybreaker breaker to
    read (``name``, ``current_state``, ``state``, ``fail_counter``), backed by ours."""

    __slots__ = ("_breaker", "_name")

    def __init__(self, breaker: Any, name: str) -> None:
        self._breaker = breaker
        self._name = name

    @property
    def name(self) -> str:
        return self._name

    @property
    def current_state(self) -> str:
        state = getattr(self._breaker, "state", "closed")
        return _TO_PYBREAKER.get(state, state)

    @property
    def state(self) -> _StateView:
        return _StateView(self.current_state)

    @property
    def fail_counter(self) -> int:
        metrics = getattr(self._breaker, "metrics", None)
        return int(getattr(metrics, "failures", 0))

    def __repr__(self) -> str:
        return f"<pybreaker view of {self._breaker!r}>"


class _UnknownFailure(Exception):
    """Passed to ``listener.failure`` when the event did not carry the exception."""


class PyBreakerListenerHook:
    """Deliver our breaker's events to a ``pybreaker.CircuitBreakerListener``.

    ``PyBreakerListenerHook.subscribe(breaker, listener)`` (or
    ``breaker.add_hook(PyBreakerListenerHook(listener, breaker))``) and the listener gets:

    - ``state_change(cb, old, new)`` for every `BreakerStateChanged` (states carry
      pybreaker's names: ``"half-open"``; ``forced_open`` shows as ``"open"`` and
      ``disabled`` as ``"closed"``);
    - ``success(cb)`` / ``failure(cb, exc)`` for every recorded call (ignored calls are
      not reported; ``exc`` is the event's ``error`` when the breaker supplies it);
    - ``before_call(cb, func, *args, **kwargs)`` for each admitted call (our
      `CallAdmitted` event). The event does not carry the call itself, so ``func`` is
      ``None`` and no arguments are passed, unless an event provides ``fn``/``args``/
      ``kwargs`` attributes.

    ``cb`` is a read-only view with ``name``, ``current_state``, ``state`` and
    ``fail_counter``; it is not a pybreaker breaker (calling through it is not possible).
    """

    __slots__ = ("cb", "listener")

    def __init__(self, listener: Any, breaker: Any = None, *, name: str | None = None) -> None:
        for method in ("state_change", "success", "failure", "before_call"):
            if not callable(getattr(listener, method, None)):
                raise TypeError(
                    f"{listener!r} is not a pybreaker listener: it has no {method}() method"
                )
        self.listener = listener
        self.cb = _BreakerView(breaker, name or getattr(breaker, "name", None) or "breaker")

    @classmethod
    def subscribe(cls, breaker: Any, listener: Any) -> PyBreakerListenerHook:
        """Create the hook for ``listener``, add it to ``breaker`` and return it (pass it
        to ``breaker.remove_hook`` to unsubscribe)."""
        hook = cls(listener, breaker)
        breaker.add_hook(hook)
        return hook

    def __call__(self, event: Event) -> None:
        """Translate ``event`` into the listener callback it corresponds to, if any."""
        listener = self.listener
        if isinstance(event, CallRecorded):
            outcome = event.outcome
            if outcome in ("success", "slow_success"):
                listener.success(self.cb)
            elif outcome in ("failure", "slow_failure"):
                error = getattr(event, "error", None)
                if error is None:
                    error = _UnknownFailure(f"call through {event.name!r} failed")
                listener.failure(self.cb, error)
        elif isinstance(event, BreakerStateChanged):
            old = _StateView(_TO_PYBREAKER.get(event.old, event.old))
            new = _StateView(_TO_PYBREAKER.get(event.new, event.new))
            listener.state_change(self.cb, old, new)
        elif event.kind == "call_admitted":
            fn = getattr(event, "fn", None)
            args = getattr(event, "args", ())
            kwargs = getattr(event, "kwargs", None) or {}
            listener.before_call(self.cb, fn, *args, **kwargs)

    def __repr__(self) -> str:
        return f"<PyBreakerListenerHook {self.listener!r}>"
