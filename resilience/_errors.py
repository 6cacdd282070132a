"""The one error tree of `resilience`.

::

    ResilienceError                 anything raised by a policy itself
    └── RejectedError               the policy refused (or abandoned) the call
        ├── CircuitOpenError        the breaker is open / half-open trials are taken
        ├── BulkheadFullError       no concurrency slot and no queue place
        ├── TimeoutRejectedError    the call overran its time budget (also a TimeoutError)
        └── RateLimitedError        no token in the bucket

The protected function's own exceptions are never wrapped: whatever it raises reaches
the caller unchanged (retry re-raises the last one). A ``RejectedError`` therefore always
means "a policy said no", never "the dependency failed".
"""

from __future__ import annotations

__all__ = [
    "BulkheadFullError",
    "CircuitOpenError",
    "RateLimitedError",
    "RejectedError",
    "ResilienceError",
    "TimeoutRejectedError",
]


class ResilienceError(Exception):
    """Base of every exception raised by a resilience policy itself."""


class RejectedError(ResilienceError):
    """A policy refused or abandoned the call; the callee's own errors never derive from it."""

    policy_name: str

    def __init__(self, message: str, *, name: str = "") -> None:
        super().__init__(message)
        self.policy_name = name

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(
    cls: type[RejectedError], args: tuple[object, ...], state: dict[str, object]
) -> RejectedError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class CircuitOpenError(RejectedError):
    """The circuit breaker rejected the call: it is open, forced open, or half-open with
    every trial slot taken. ``remaining`` is how long it stays open (``None`` if unknown
    or until an operator closes it)."""

    def __init__(self, name: str, remaining: float | None = None) -> None:
        detail = "" if remaining is None else f" (for another {remaining:.3f}s)"
        super().__init__(f"circuit {name!r} is open{detail}", name=name)
        self.remaining = remaining


class BulkheadFullError(RejectedError):
    """The bulkhead had no free concurrency slot and no free queue place (or the queue
    wait ran out)."""

    def __init__(self, name: str, max_concurrent: int, max_queued: int) -> None:
        super().__init__(
            f"bulkhead {name!r} is full ({max_concurrent} running, {max_queued} queued)",
            name=name,
        )
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued


class TimeoutRejectedError(RejectedError, TimeoutError):
    """The call did not finish within its timeout. Also a ``TimeoutError`` so that
    ``except TimeoutError`` and ``Retry(on=TimeoutError)`` see it."""

    def __init__(self, name: str, timeout: float) -> None:
        super().__init__(f"call through {name!r} timed out after {timeout:.3f}s", name=name)
        self.timeout = timeout


class RateLimitedError(RejectedError):
    """The rate limiter had no token. ``retry_after`` is the time until the next token,
    which `Retry` honours like a server's Retry-After."""

    def __init__(self, name: str, retry_after: float) -> None:
        super().__init__(
            f"rate limiter {name!r} is exhausted (next token in {retry_after:.3f}s)", name=name
        )
        self.retry_after = retry_after
