"""PrometheusHook and LoggingHook, driven by a real breaker on a FakeClock."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import pytest

from resilience._breaker import CircuitBreaker
from resilience._clock import FakeClock
from resilience._errors import CircuitOpenError
from resilience._events import (
    BreakerStateChanged,
    BreakerStoreDegraded,
    BreakerStoreRecovered,
    CallAdmitted,
    CallRecorded,
    CallRejected,
    FallbackUsed,
    HedgeLaunched,
    RetryBudgetExhausted,
    RetryExhausted,
    RetryScheduled,
)
from resilience._logging import LoggingHook
from resilience._prometheus import PrometheusHook

prometheus_client = pytest.importorskip("prometheus_client")


def breaker(clock: FakeClock, **kw: Any) -> CircuitBreaker:
    return CircuitBreaker(
        "risk", failure_rate_threshold=0.5, minimum_calls=2, window=4, open_duration=5.0,
        clock=clock, **kw,
    )


def fail() -> None:
    raise OSError("down")


def drive(b: CircuitBreaker, clock: FakeClock) -> None:
    """2 successes, 2 failures (opens at 50%), rejected, then a successful trial (closes)."""
    b.call(lambda: 1)
    b.call(lambda: 1)
    for _ in range(2):
        with pytest.raises(OSError):
            b.call(fail)
    with pytest.raises(CircuitOpenError):
        b.call(lambda: 1)
    clock.advance(5.0)
    b.call(lambda: 1)


def sample(registry: Any, metric: str, /, **labels: str) -> float | None:
    value = registry.get_sample_value(metric, labels)
    return None if value is None else float(value)


# -- Prometheus --------------------------------------------------------------------------------
def test_prometheus_counts_calls_by_outcome_and_tracks_state() -> None:
    registry = prometheus_client.CollectorRegistry()
    clock = FakeClock()
    b = breaker(clock)
    hook = PrometheusHook(registry=registry)
    hook.attach(b)
    assert sample(registry, "resilience_breaker_state", name="risk", state="closed") == 1.0
    assert sample(registry, "resilience_breaker_state", name="risk", state="open") == 0.0

    b.call(lambda: 1)
    b.call(lambda: 1)
    for _ in range(2):
        with pytest.raises(OSError):
            b.call(fail)
    assert sample(registry, "resilience_breaker_state", name="risk", state="open") == 1.0
    assert sample(registry, "resilience_breaker_state", name="risk", state="closed") == 0.0
    with pytest.raises(CircuitOpenError):
        b.call(lambda: 1)
    clock.advance(5.0)
    b.call(lambda: 1)

    calls = "resilience_calls_total"
    assert sample(registry, calls, name="risk", outcome="success") == 3.0
    assert sample(registry, calls, name="risk", outcome="failure") == 2.0
    assert sample(registry, calls, name="risk", outcome="rejected") == 1.0
    assert sample(
        registry, "resilience_rejections_total",
        name="risk", policy="circuit_breaker", reason="circuit_open",
    ) == 1.0
    transitions = "resilience_breaker_transitions_total"
    assert sample(registry, transitions, name="risk", old="closed", new="open") == 1.0
    assert sample(registry, transitions, name="risk", old="open", new="half_open") == 1.0
    assert sample(registry, transitions, name="risk", old="half_open", new="closed") == 1.0
    assert sample(registry, "resilience_breaker_state", name="risk", state="closed") == 1.0


def test_prometheus_hooks_share_one_registry_without_duplicates() -> None:
    registry = prometheus_client.CollectorRegistry()
    first = PrometheusHook(registry=registry)
    second = PrometheusHook(registry=registry)  # would raise "Duplicated timeseries" if naive
    assert first.metrics is second.metrics
    other_ns = PrometheusHook(registry=registry, namespace="payments")
    other_ns(RetryScheduled("risk", 1.0, 1, 0.1, OSError()))
    assert sample(registry, "payments_retries_total", name="risk") == 1.0
    assert sample(registry, "resilience_retries_total", name="risk") is None


def test_prometheus_covers_store_retry_fallback_and_hedge_events() -> None:
    registry = prometheus_client.CollectorRegistry()
    hook = PrometheusHook(registry=registry)
    hook(BreakerStoreDegraded("risk", 1.0, "load", "ConnectionError: refused"))
    assert sample(registry, "resilience_breaker_store_degraded", name="risk") == 1.0
    hook(BreakerStoreRecovered("risk", 2.0))
    assert sample(registry, "resilience_breaker_store_degraded", name="risk") == 0.0
    hook(RetryScheduled("db", 1.0, 1, 0.05, OSError()))
    hook(RetryScheduled("db", 1.1, 2, 0.10, OSError()))
    hook(RetryExhausted("db", 1.2, 3, OSError()))
    hook(RetryBudgetExhausted("db", 1.3, 1, OSError()))
    hook(FallbackUsed("risk-fallback", 1.4, None))
    hook(HedgeLaunched("read", 1.5, 2))
    hook(CallRejected("pool", 1.6, "bulkhead", "bulkhead_full"))
    assert sample(registry, "resilience_retries_total", name="db") == 2.0
    assert sample(registry, "resilience_retry_exhausted_total", name="db", reason="attempts") == 1.0
    assert sample(registry, "resilience_retry_exhausted_total", name="db", reason="budget") == 1.0
    assert sample(registry, "resilience_fallbacks_total", name="risk-fallback") == 1.0
    assert sample(registry, "resilience_hedges_total", name="read") == 1.0
    assert sample(
        registry, "resilience_rejections_total",
        name="pool", policy="bulkhead", reason="bulkhead_full",
    ) == 1.0
    # only breaker rejections count as breaker calls
    assert sample(registry, "resilience_calls_total", name="pool", outcome="rejected") is None


def test_prometheus_default_registry_is_used_when_none_given() -> None:
    hook = PrometheusHook(namespace="resilience_default_registry_test")
    assert hook.registry is prometheus_client.REGISTRY


async def test_prometheus_on_the_async_path() -> None:
    registry = prometheus_client.CollectorRegistry()
    clock = FakeClock()
    b = breaker(clock)
    PrometheusHook(registry=registry).attach(b)

    async def ok() -> int:
        return 1

    async def afail() -> None:
        raise OSError("down")

    await b.call_async(ok)
    with pytest.raises(OSError):
        await b.call_async(afail)
    assert sample(registry, "resilience_calls_total", name="risk", outcome="success") == 1.0
    assert sample(registry, "resilience_calls_total", name="risk", outcome="failure") == 1.0


def test_importing_resilience_does_not_import_optional_packages() -> None:
    code = (
        "import sys, resilience, resilience._prometheus, resilience._logging, "
        "resilience._redis_store, resilience._pybreaker\n"
        "bad = [m for m in ('prometheus_client', 'redis', 'pybreaker') if m in sys.modules]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- logging -----------------------------------------------------------------------------------
def test_logging_hook_logs_transitions_by_severity(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    b = breaker(clock)
    b.add_hook(LoggingHook())
    with caplog.at_level(logging.INFO, logger="resilience.events"):
        drive(b, clock)
    records = [(r.levelno, r.getMessage()) for r in caplog.records]
    assert (logging.WARNING, "circuit 'risk': closed -> open (failure_rate)") in records
    assert (logging.INFO, "circuit 'risk': open -> half_open (open_elapsed)") in records
    assert (logging.INFO, "circuit 'risk': half_open -> closed (trials_succeeded)") in records
    # rejections and recorded calls are DEBUG: not built at INFO
    assert all("rejected" not in m and "recorded" not in m for _, m in records)
    kinds = {r.resilience_kind for r in caplog.records}  # type: ignore[attr-defined]
    assert kinds == {"breaker_state_changed"}
    opened = next(r for r in caplog.records if "-> open" in r.getMessage())
    assert isinstance(opened.resilience_event, BreakerStateChanged)  # type: ignore[attr-defined]


def test_logging_hook_debug_level_and_overrides(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    b = breaker(clock)
    logger = logging.getLogger("payments.risk")
    b.add_hook(LoggingHook(logger, levels={"call_rejected": logging.ERROR}))
    with caplog.at_level(logging.DEBUG, logger="payments.risk"):
        drive(b, clock)
    messages = {r.getMessage(): r.levelno for r in caplog.records}
    assert messages["circuit_breaker 'risk' rejected a call: circuit_open"] == logging.ERROR
    assert any(m.startswith("circuit 'risk' recorded failure") for m in messages)


def test_logging_hook_renders_every_event_type(caplog: pytest.LogCaptureFixture) -> None:
    hook = LoggingHook("resilience.events.all")
    events = [
        RetryScheduled("db", 1.0, 1, 0.25, OSError("reset"), retry_after=0.25),
        RetryExhausted("db", 1.0, 3, OSError("reset")),
        RetryBudgetExhausted("db", 1.0, 2, None),
        FallbackUsed("risk", 1.0, TimeoutError("slow")),
        FallbackUsed("risk", 1.0, None),
        HedgeLaunched("read", 1.0, 2),
        BreakerStoreDegraded("risk", 1.0, "save", "ConnectionError: refused"),
        BreakerStoreRecovered("risk", 1.0),
        CallRecorded("risk", 1.0, "slow_success", 0.5, "closed"),
        CallRecorded("risk", 1.0, "failure", 0.002, "half_open", OSError("reset")),
        CallAdmitted("risk", 1.0, "half_open"),
    ]
    with caplog.at_level(logging.DEBUG, logger="resilience.events.all"):
        for event in events:
            hook(event)
    text = caplog.text
    assert "attempt 1 failed (OSError: reset); next in 0.250s, Retry-After 0.250s" in text
    assert "gave up after 3 attempts: OSError: reset" in text
    assert "retry budget exhausted after 2 attempts" in text
    assert "triggered by TimeoutError: slow" in text
    assert "triggered by a result predicate" in text
    assert "hedge 'read' launched attempt 2" in text
    assert "failed on save (ConnectionError: refused); using local state" in text
    assert "answers again" in text
    assert "recorded slow_success in 500.0 ms" in text
    assert "recorded failure in 2.0 ms (half_open): OSError: reset" in text
    assert "admitted a call (half_open)" in text
    levels = [r.levelno for r in caplog.records]
    assert levels.count(logging.WARNING) == 3  # exhausted, budget, store degraded


def test_a_failing_hook_never_breaks_the_call() -> None:
    class Broken(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            raise RuntimeError("log sink down")

        def handleError(self, record: logging.LogRecord) -> None:
            raise RuntimeError("log sink down")

    logger = logging.getLogger("resilience.events.broken")
    logger.addHandler(Broken())
    logger.propagate = False
    clock = FakeClock()
    b = breaker(clock)
    b.add_hook(LoggingHook(logger))
    b.call(lambda: 1)
    b.call(lambda: 1)
    for _ in range(2):
        with pytest.raises(OSError):
            b.call(fail)
    assert b.state == "open"
