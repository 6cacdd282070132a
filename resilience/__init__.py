"""Resilience policies for sync and asyncio code, composable in a `Pipeline`.

::

    from resilience import CircuitBreaker, Fallback, Pipeline, Retry, Timeout

    breaker = CircuitBreaker("risk", failure_rate_threshold=0.5, minimum_calls=10,
                             window=20, open_duration=5.0, half_open_calls=2)
    pipeline = Pipeline(Fallback(lambda exc: "review"), breaker,
                        Retry(on=(OSError, TimeoutError), attempts=3), Timeout(0.8))
    decision = await pipeline.call_async(check_risk, payment)   # async def check_risk
    decision = pipeline.call(check_risk_sync, payment)

    @pipeline                      # or @breaker, @retry(on=OSError), ...
    async def check_risk(payment: Payment) -> str: ...

Every policy works on sync functions and ``async def`` functions, through ``.call``,
``await .call_async`` or as a decorator that keeps the signature. Policies refuse calls
with a `RejectedError`; the protected function's own exceptions always pass unchanged.
Events (frozen dataclasses) go to hooks added with ``policy.add_hook``.

Optional integrations are loaded on first use, and only then import their third-party
package: `RedisBreakerStore`/`AsyncRedisBreakerStore` (redis), `PrometheusHook`
(prometheus-client), `LoggingHook`, `PyBreakerStage`/`PyBreakerListenerHook` (pybreaker).
``import resilience`` imports no third-party package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from resilience._breaker import BreakerMetrics, BreakerOptions, CircuitBreaker
from resilience._breaker_store import BreakerStore, LocalStore, SharedState
from resilience._bulkhead import Bulkhead, BulkheadOptions
from resilience._clock import FakeClock
from resilience._errors import (
    BulkheadFullError,
    CircuitOpenError,
    RateLimitedError,
    RejectedError,
    ResilienceError,
    TimeoutRejectedError,
)
from resilience._events import (
    BreakerStateChanged,
    BreakerStoreDegraded,
    BreakerStoreRecovered,
    CallAdmitted,
    CallRecorded,
    CallRejected,
    Event,
    FallbackUsed,
    HedgeLaunched,
    Hook,
    HookRegistry,
    RetryBudgetExhausted,
    RetryExhausted,
    RetryScheduled,
)
from resilience._fallback import Fallback, FallbackOptions
from resilience._hedge import Hedge, HedgeOptions
from resilience._pipeline import Pipeline
from resilience._policy import Policy
from resilience._rate_limiter import RateLimiter, RateLimiterOptions
from resilience._retry import Retry, RetryBudget, RetryOptions, retry, retry_after_of
from resilience._timeout import Timeout, TimeoutOptions

if TYPE_CHECKING:
    from resilience._logging import LoggingHook
    from resilience._prometheus import PrometheusHook
    from resilience._pybreaker import PyBreakerListenerHook, PyBreakerStage
    from resilience._redis_store import AsyncRedisBreakerStore, RedisBreakerStore

# name -> private module; imported on first attribute access (PEP 562).
_LAZY = {
    "AsyncRedisBreakerStore": "resilience._redis_store",
    "LoggingHook": "resilience._logging",
    "PrometheusHook": "resilience._prometheus",
    "PyBreakerListenerHook": "resilience._pybreaker",
    "PyBreakerStage": "resilience._pybreaker",
    "RedisBreakerStore": "resilience._redis_store",
}

__all__ = [
    "AsyncRedisBreakerStore",
    "BreakerMetrics",
    "BreakerOptions",
    "BreakerStateChanged",
    "BreakerStore",
    "BreakerStoreDegraded",
    "BreakerStoreRecovered",
    "Bulkhead",
    "BulkheadFullError",
    "BulkheadOptions",
    "CallAdmitted",
    "CallRecorded",
    "CallRejected",
    "CircuitBreaker",
    "CircuitOpenError",
    "Event",
    "FakeClock",
    "Fallback",
    "FallbackOptions",
    "FallbackUsed",
    "Hedge",
    "HedgeLaunched",
    "HedgeOptions",
    "Hook",
    "HookRegistry",
    "LocalStore",
    "LoggingHook",
    "Pipeline",
    "Policy",
    "PrometheusHook",
    "PyBreakerListenerHook",
    "PyBreakerStage",
    "RateLimitedError",
    "RateLimiter",
    "RateLimiterOptions",
    "RedisBreakerStore",
    "RejectedError",
    "ResilienceError",
    "Retry",
    "RetryBudget",
    "RetryBudgetExhausted",
    "RetryExhausted",
    "RetryOptions",
    "RetryScheduled",
    "SharedState",
    "Timeout",
    "TimeoutOptions",
    "TimeoutRejectedError",
    "retry",
    "retry_after_of",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'resilience' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
