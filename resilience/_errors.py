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
    """A policy refused or abandoned the call; the callee's own errors never derive from it.

    ``name`` is the name of the policy that said no. Subclasses keep their constructor
    arguments in ``args`` (so they pickle) and build the message only when it is shown,
    which keeps rejection cheap on the hot path.
    """

    name: str = ""


class CircuitOpenError(RejectedError):
    """The circuit breaker rejected the call: it is open, forced open, or half-open with
    every trial slot taken. ``remaining`` is how long it stays open (``None`` if unknown
    or until an operator closes it). Signature: ``CircuitOpenError(name, remaining)``."""

    # No Python __init__: built at C speed on the rejection hot path; fields live in args.
    @property
    def name(self) -> str:  # type: ignore[override]
        """The breaker's name."""
        return str(self.args[0]) if self.args else ""

    @property
    def remaining(self) -> float | None:
        """Seconds until the breaker may admit trials, if known."""
        value = self.args[1] if len(self.args) > 1 else None
        return None if value is None else float(value)

    def __str__(self) -> str:
        if self.remaining is None:
            return f"circuit {self.name!r} is open"
        return f"circuit {self.name!r} is open (for another {self.remaining:.3f}s)"


class BulkheadFullError(RejectedError):
    """The bulkhead had no free concurrency slot and no free queue place (or the queue
    wait ran out). Signature: ``BulkheadFullError(name, max_concurrent, max_queued)``."""

    @property
    def name(self) -> str:  # type: ignore[override]
        """The bulkhead's name."""
        return str(self.args[0]) if self.args else ""

    @property
    def max_concurrent(self) -> int:
        """The bulkhead's concurrency limit."""
        return int(self.args[1])

    @property
    def max_queued(self) -> int:
        """The bulkhead's queue limit."""
        return int(self.args[2])

    def __str__(self) -> str:
        return (
            f"bulkhead {self.name!r} is full "
            f"({self.max_concurrent} running, {self.max_queued} queued)"
        )


class TimeoutRejectedError(RejectedError, TimeoutError):
    """The call did not finish within its timeout. Also a ``TimeoutError`` so that
    ``except TimeoutError`` and ``Retry(on=TimeoutError)`` see it.
    Signature: ``TimeoutRejectedError(name, timeout)``."""

    @property
    def name(self) -> str:  # type: ignore[override]
        """The timeout policy's name."""
        return str(self.args[0]) if self.args else ""

    @property
    def timeout(self) -> float:
        """The time budget that was exceeded, in seconds."""
        return float(self.args[1])

    def __str__(self) -> str:
        return f"call through {self.name!r} timed out after {self.timeout:.3f}s"


class RateLimitedError(RejectedError):
    """The rate limiter had no token. ``retry_after`` is the time until the next token,
    which `Retry` honours like a server's Retry-After.
    Signature: ``RateLimitedError(name, retry_after)``."""

    @property
    def name(self) -> str:  # type: ignore[override]
        """The rate limiter's name."""
        return str(self.args[0]) if self.args else ""

    @property
    def retry_after(self) -> float:
        """Seconds until the next token."""
        return float(self.args[1])

    def __str__(self) -> str:
        return f"rate limiter {self.name!r} is exhausted (next token in {self.retry_after:.3f}s)"
