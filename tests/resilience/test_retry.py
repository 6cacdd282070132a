"""Retry: backoff, deadline, Retry-After, budget, tenacity strategies; no real sleeps."""

from __future__ import annotations

import email.utils
import random
from datetime import timedelta
from typing import Any

import pytest
import tenacity

from resilience import (
    Event,
    FakeClock,
    RateLimitedError,
    Retry,
    RetryBudget,
    RetryBudgetExhausted,
    RetryExhausted,
    RetryScheduled,
    retry,
    retry_after_of,
)


class Flaky:
    """Fails ``failures`` times with ``error``, then returns ``value``."""

    def __init__(
        self, failures: int, error: BaseException | None = None, value: Any = "ok"
    ) -> None:
        self.failures = failures
        self.error = error or ConnectionError("reset")
        self.value = value
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.value

    async def acall(self, *args: Any) -> Any:
        return self(*args)


def policy(clock: FakeClock, **kw: Any) -> Retry:
    kw.setdefault("on", OSError)
    return Retry(
        clock=clock, sleep=clock.sleep, async_sleep=clock.async_sleep, rng=random.Random(7), **kw
    )


def test_success_needs_no_retry() -> None:
    clock = FakeClock()
    r = policy(clock)
    assert r.call(lambda: 5) == 5
    assert clock.sleeps == []


def test_retries_until_success_with_full_jitter_backoff() -> None:
    clock = FakeClock()
    r = policy(clock, attempts=5, wait_initial=0.1, wait_max=0.3)
    flaky = Flaky(3)
    assert r.call(flaky) == "ok"
    assert flaky.calls == 4
    ceilings = [0.1, 0.2, 0.3]
    assert len(clock.sleeps) == 3
    for slept, ceiling in zip(clock.sleeps, ceilings, strict=True):
        assert 0 <= slept <= ceiling


def test_no_jitter_waits_the_exponential_bound() -> None:
    clock = FakeClock()
    r = policy(clock, attempts=5, wait_initial=0.1, wait_max=0.3, jitter=False)
    r.call(Flaky(4))
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.3, 0.3])


def test_exhausted_reraises_last_exception_unchanged() -> None:
    clock = FakeClock()
    r = policy(clock, attempts=3)
    errors = [ConnectionError(f"try {i}") for i in range(3)]
    it = iter(errors)

    def always() -> None:
        raise next(it)

    with pytest.raises(ConnectionError) as info:
        r.call(always)
    assert info.value is errors[-1]
    assert info.value.__context__ is None
    assert info.value.__cause__ is None


def test_non_retryable_exception_passes_at_once() -> None:
    clock = FakeClock()
    r = policy(clock, attempts=5)
    flaky = Flaky(1, ValueError("bad input"))
    with pytest.raises(ValueError, match="bad input"):
        r.call(flaky)
    assert flaky.calls == 1


def test_predicate_on() -> None:
    clock = FakeClock()
    r = policy(clock, on=lambda e: "retry me" in str(e), attempts=3)
    assert r.call(Flaky(2, RuntimeError("retry me"))) == "ok"


def test_deadline_stops_retrying() -> None:
    clock = FakeClock()
    r = policy(clock, attempts=100, timeout=1.0, wait_initial=0.3, wait_max=0.3, jitter=False)
    flaky = Flaky(100)
    with pytest.raises(ConnectionError):
        r.call(flaky)
    # attempts at t=0, .3, .6, .9 ; waiting on to 1.2 would pass the deadline
    assert flaky.calls == 4
    assert sum(clock.sleeps) < 1.0


def test_retry_after_attribute_and_header_are_honoured() -> None:
    clock = FakeClock()
    r = policy(clock, on=(OSError, RateLimitedError), attempts=2, wait_initial=0.01, wait_max=0.01)
    r.call(Flaky(1, RateLimitedError("api", 2.5)))
    assert clock.sleeps == [2.5]

    class Response:
        headers = {"Retry-After": "4"}

    class HTTPError(OSError):
        response = Response()

    clock.sleeps.clear()
    r.call(Flaky(1, HTTPError()))
    assert clock.sleeps == [4.0]


def test_retry_after_http_date_and_timedelta() -> None:
    class Response:
        headers = {"retry-after": email.utils.formatdate(1_000_030.0, usegmt=True)}

    class HTTPError(Exception):
        response = Response()

    assert retry_after_of(HTTPError(), now=lambda: 1_000_000.0) == pytest.approx(30.0)

    class Throttled(Exception):
        retry_after = timedelta(seconds=3)

    assert retry_after_of(Throttled()) == 3.0
    assert retry_after_of(ValueError()) is None


def test_retry_after_above_cap_gives_up() -> None:
    clock = FakeClock()
    r = policy(clock, on=RateLimitedError, attempts=5, max_retry_after=10)
    flaky = Flaky(1, RateLimitedError("api", 60))
    with pytest.raises(RateLimitedError):
        r.call(flaky)
    assert flaky.calls == 1


def test_retry_result_predicate() -> None:
    clock = FakeClock()
    r = policy(clock, attempts=3, retry_result=lambda v: v == "pending")
    values = iter(["pending", "pending", "done"])
    assert r.call(lambda: next(values)) == "done"
    values = iter(["pending"] * 3)
    assert r.call(lambda: next(values)) == "pending"  # exhausted: last value returned


def test_shared_budget_caps_retries_across_calls() -> None:
    clock = FakeClock()
    budget = RetryBudget(0.1, min_retries=2, period=60, clock=clock)
    r1 = policy(clock, attempts=3, budget=budget)
    r2 = policy(clock, attempts=3, budget=budget)
    events: list[Event] = []
    r1.add_hook(events.append)
    attempts = 0

    def down() -> None:
        nonlocal attempts
        attempts += 1
        raise ConnectionError

    for r in (r1, r2, r1, r2):
        with pytest.raises(ConnectionError):
            r.call(down)
    # 4 calls: 2 reserve + 0.4 -> only 2 retries in total
    assert attempts == 4 + 2
    assert any(isinstance(e, RetryBudgetExhausted) for e in events)
    for _ in range(100):
        r1.call(lambda: None)
    assert budget.try_spend()  # traffic refilled it


def test_budget_decays() -> None:
    clock = FakeClock()
    budget = RetryBudget(0.5, min_retries=0, period=10, clock=clock)
    budget.calls = 100
    clock.advance(30)
    spent = 0
    while budget.try_spend():
        spent += 1
    assert spent == 6  # 100 calls halved three times = 12.5 -> 6 retries


def test_events() -> None:
    clock = FakeClock()
    r = policy(clock, attempts=2, name="ledger")
    events: list[Event] = []
    r.add_hook(events.append)
    with pytest.raises(ConnectionError):
        r.call(Flaky(5))
    assert [type(e) for e in events] == [RetryScheduled, RetryExhausted]
    scheduled = events[0]
    assert isinstance(scheduled, RetryScheduled)
    assert scheduled.name == "ledger"
    assert scheduled.attempt == 1
    assert isinstance(scheduled.error, ConnectionError)


def test_tenacity_strategies_where_our_parameters_go() -> None:
    clock = FakeClock()
    r = Retry(
        on=tenacity.retry_if_exception_type(ConnectionError),
        attempts=tenacity.stop_after_attempt(4) | tenacity.stop_after_delay(100),
        wait=tenacity.wait_fixed(0.5) + tenacity.wait_fixed(0.25),
        clock=clock,
        sleep=clock.sleep,
    )
    flaky = Flaky(10)
    with pytest.raises(ConnectionError):
        r.call(flaky)
    assert flaky.calls == 4
    assert clock.sleeps == [0.75, 0.75, 0.75]
    assert r.call(Flaky(0)) == "ok"


def test_tenacity_wait_as_wait_initial_and_stop_after_delay() -> None:
    clock = FakeClock()
    r = Retry(
        on=OSError,
        attempts=tenacity.stop_after_delay(1.0),
        wait_initial=tenacity.wait_exponential(multiplier=0.25, max=10),
        clock=clock,
        sleep=clock.sleep,
    )
    flaky = Flaky(100)
    with pytest.raises(ConnectionError):
        r.call(flaky)
    assert clock.sleeps[:2] == [0.25, 0.5]
    assert flaky.calls == 4  # t=0, .25, .75, 1.75: tenacity's rule, elapsed >= 1.0 stops


def test_tenacity_result_strategy() -> None:
    clock = FakeClock()
    r = Retry(
        on=tenacity.retry_if_result(lambda v: v is None),
        attempts=3,
        clock=clock,
        sleep=clock.sleep,
    )
    values = iter([None, None, 7])
    assert r.call(lambda: next(values)) == 7


async def test_async_retry() -> None:
    clock = FakeClock()
    r = policy(clock, attempts=4)
    flaky = Flaky(2)
    assert await r.call_async(flaky.acall) == "ok"
    assert flaky.calls == 3
    assert len(clock.sleeps) == 2


async def test_async_exhausted_reraises_same_exception() -> None:
    clock = FakeClock()
    error = ConnectionError("always")

    @retry(on=OSError, attempts=3, clock=clock, async_sleep=clock.async_sleep)
    async def always() -> None:
        raise error

    with pytest.raises(ConnectionError) as info:
        await always()
    assert info.value is error


def test_decorator_sync() -> None:
    clock = FakeClock()
    flaky = Flaky(1)

    @retry(on=ConnectionError, clock=clock, sleep=clock.sleep)
    def fetch(x: int) -> str:
        return str(flaky(x))

    assert fetch(1) == "ok"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on": 3}, "on"),
        ({"on": OSError, "attempts": 0}, "attempts"),
        ({"on": OSError, "wait_initial": -1}, "wait_initial"),
        ({"on": OSError, "wait_initial": 2, "wait_max": 1}, "wait_max"),
        ({"on": OSError, "timeout": 0}, "timeout"),
        ({"on": OSError, "wait_exp_base": 0.5}, "wait_exp_base"),
    ],
)
def test_options_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        Retry(**kwargs)
