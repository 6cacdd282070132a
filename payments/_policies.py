"""The resilience policies around every remote call the payment services make."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge

from resilience import (
    BreakerStateChanged,
    CircuitBreaker,
    Fallback,
    Pipeline,
    Retry,
    Timeout,
    TimeoutRejectedError,
)

__all__ = [
    "BREAKER_STATE",
    "BREAKER_TRANSITIONS",
    "CLIENT_CAUSED_SQLSTATE_CLASSES",
    "breaker",
    "database_breaker",
    "is_client_caused",
    "risk_pipeline",
    "timed",
]

BREAKER_STATE = Gauge("payments_breaker_state",
                      "Circuit breaker state (0 closed, 1 half-open, 2 open)", ["breaker"])
# A gauge sampled every few seconds misses a breaker that opened for one second; the
# counter does not (and an alert on its rate is how an operator sees flapping).
BREAKER_TRANSITIONS = Counter("payments_breaker_transitions_total",
                              "Circuit breaker state transitions", ["breaker", "to"])
_STATE_VALUE = {"closed": 0, "half_open": 1, "half-open": 1, "open": 2}

# SQLSTATE classes of errors a *request* causes while PostgreSQL works as it should: the
# database answered, correctly, that this input or this row cannot be. Counting them as
# failures let one merchant's malformed input open the breaker for every merchant.
#   22  data exception (bad encoding such as a NUL byte, value too long, out of range,
#       invalid text representation, division by zero)
#   23  integrity constraint violation (unique, foreign key, check, not null)
#   54  program limit exceeded (an input too large for an index row, too many arguments)
#   PT  the ledger's own refusals (``PT<http status>``, migrations/0003_ledger_post.sql),
#       including PT409: an idempotency claim taken over by another holder
# Everything else still counts: 08 connection exceptions, 53 insufficient resources,
# 57 operator intervention (shutdown, statement timeout 57014), 58 system errors, XX
# internal errors, 40 transaction rollback (serialization failure, deadlock: contention
# under load is the database's health too), 42 (a missing table or privilege means a
# broken deployment, not a bad request), and every error without a SQLSTATE (timeouts,
# refused or reset connections, pool exhaustion).
CLIENT_CAUSED_SQLSTATE_CLASSES = frozenset({"22", "23", "54", "PT"})


def is_client_caused(exc: BaseException) -> bool:
    """Whether ``exc`` is a database error the request caused, not the database."""
    state = getattr(exc, "sqlstate", None)
    return isinstance(state, str) and state[:2] in CLIENT_CAUSED_SQLSTATE_CLASSES


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
            new = _state_name(event.new)
            BREAKER_STATE.labels(name).set(_STATE_VALUE.get(new, 0))
            BREAKER_TRANSITIONS.labels(name, new.replace("-", "_")).inc()

    cb.add_hook(on_event)
    return cb


def database_breaker(**options: Any) -> CircuitBreaker:
    """The api's ``postgres`` breaker: errors the request caused are ignored (they count
    neither as failures nor as successes; see ``CLIENT_CAUSED_SQLSTATE_CLASSES``)."""
    defaults: dict[str, Any] = {"minimum_calls": 20, "window": 40, "open_duration": 1.0}
    return breaker("postgres", **{**defaults, **options, "ignore": is_client_caused})


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
