"""The resilience policies around every remote call the payment services make."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import Gauge

from resilience import (
    BreakerStateChanged,
    CircuitBreaker,
    Fallback,
    Pipeline,
    Retry,
    Timeout,
    TimeoutRejectedError,
)

__all__ = ["BREAKER_STATE", "breaker", "risk_pipeline", "timed"]

BREAKER_STATE = Gauge("payments_breaker_state",
                      "Circuit breaker state (0 closed, 1 half-open, 2 open)", ["breaker"])
_STATE_VALUE = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}


def _state_name(state: object) -> str:
    return str(getattr(state, "value", getattr(state, "name", state))).lower()


def breaker(name: str, **options: Any) -> CircuitBreaker:
    """A circuit breaker whose state is exported as ``payments_breaker_state{breaker}``."""
    defaults: dict[str, Any] = {"failure_rate_threshold": 0.5, "minimum_calls": 10,
                                "window": 20, "open_duration": 2.0, "half_open_calls": 2}
    cb = CircuitBreaker(name, **{**defaults, **options})
    BREAKER_STATE.labels(name).set(0)

    def on_event(event: object) -> None:
        if isinstance(event, BreakerStateChanged):
            BREAKER_STATE.labels(name).set(_STATE_VALUE.get(_state_name(event.new), 0))

    cb.add_hook(on_event)
    return cb


def timed(seconds: float) -> Timeout:
    """A per-call timeout."""
    return Timeout(seconds)


def risk_pipeline(*, retry_on: tuple[type[BaseException], ...], timeout_s: float,
                  fallback: Callable[[BaseException | None], Any],
                  store: Any = None) -> Pipeline:
    """Fallback > CircuitBreaker > Retry (jittered) > Timeout, outermost first.

    ``store`` (e.g. ``resilience.AsyncRedisBreakerStore``) shares the breaker's state
    between api processes, so one that saw risk fail opens the others' breakers too.
    """
    return Pipeline(
        Fallback(fallback=fallback),
        breaker("risk", open_duration=3.0, **({"store": store} if store is not None else {})),
        Retry(on=(*retry_on, TimeoutRejectedError), attempts=3, wait_initial=0.02,
              wait_max=0.2, jitter=True),
        Timeout(timeout_s),
    )
