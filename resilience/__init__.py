"""Resilience policies for sync and asyncio code (work in progress: foundation only)."""

from resilience._breaker_store import BreakerStore, LocalStore, SharedState
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

__all__ = [
    "BreakerStateChanged",
    "BreakerStore",
    "BreakerStoreDegraded",
    "BreakerStoreRecovered",
    "BulkheadFullError",
    "CallRecorded",
    "CallRejected",
    "CircuitOpenError",
    "Event",
    "FallbackUsed",
    "HedgeLaunched",
    "Hook",
    "HookRegistry",
    "LocalStore",
    "RateLimitedError",
    "RejectedError",
    "ResilienceError",
    "RetryBudgetExhausted",
    "RetryExhausted",
    "RetryScheduled",
    "SharedState",
    "TimeoutRejectedError",
]
