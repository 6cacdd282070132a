"""Fallback, Hedge, Pipeline composition and the test mode."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from resilience import (
    Bulkhead,
    CircuitBreaker,
    CircuitOpenError,
    Event,
    FakeClock,
    Fallback,
    FallbackUsed,
    Hedge,
    HedgeLaunched,
    Pipeline,
    Policy,
    Retry,
    Timeout,
    testing,
)


class Boom(Exception):
    pass


def boom() -> None:
    raise Boom("x")


# -- Fallback ----------------------------------------------------------------------------


def test_fallback_on_exception_and_result() -> None:
    fb = Fallback(lambda exc: f"fallback:{type(exc).__name__}", on=Boom, result=lambda r: r is None)
    events: list[Event] = []
    fb.add_hook(events.append)
    assert fb.call(boom) == "fallback:Boom"
    assert fb.call(lambda: None) == "fallback:NoneType"
    assert fb.call(lambda: 1) == 1
    with pytest.raises(KeyError):
        fb.call(lambda: {}["k"])
    assert [type(e) for e in events] == [FallbackUsed, FallbackUsed]
    assert isinstance(events[0], FallbackUsed)
    assert isinstance(events[0].error, Boom)


async def test_async_fallback_may_be_async() -> None:
    async def substitute(exc: BaseException | None) -> str:
        return "async-fallback"

    fb = Fallback(substitute)

    async def fail() -> str:
        raise Boom

    assert await fb.call_async(fail) == "async-fallback"
    fb2 = Fallback(lambda exc: "plain")
    assert await fb2.call_async(fail) == "plain"


def test_fallback_validation() -> None:
    with pytest.raises(TypeError, match="fallback"):
        Fallback("not callable")  # type: ignore[arg-type]


# -- Hedge -------------------------------------------------------------------------------


async def test_async_hedge_second_attempt_wins_and_loser_is_cancelled() -> None:
    h = Hedge(0.01)
    events: list[Event] = []
    h.add_hook(events.append)
    calls = 0
    loser_cancelled = asyncio.Event()

    async def backend() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                loser_cancelled.set()
                raise
        return f"attempt {calls}"

    assert await h.call_async(backend) == "attempt 2"
    await asyncio.sleep(0)
    assert loser_cancelled.is_set()
    assert isinstance(events[0], HedgeLaunched)
    assert events[0].attempt == 2


async def test_async_hedge_fast_first_attempt_launches_nothing() -> None:
    h = Hedge(10)
    events: list[Event] = []
    h.add_hook(events.append)

    async def fast() -> int:
        return 1

    assert await h.call_async(fast) == 1
    assert events == []


async def test_async_hedge_failure_starts_next_at_once_and_all_fail_raises_last() -> None:
    h = Hedge(10, max_hedges=2)
    calls = 0

    async def failing() -> None:
        nonlocal calls
        calls += 1
        raise Boom(str(calls))

    with pytest.raises(Boom, match="3"):
        await asyncio.wait_for(h.call_async(failing), 5)
    assert calls == 3


def test_sync_hedge_runs_in_threads_first_success_wins() -> None:
    h = Hedge(0.01)
    gate = threading.Event()
    calls = 0
    lock = threading.Lock()

    def backend() -> str:
        nonlocal calls
        with lock:
            calls += 1
            n = calls
        if n == 1:
            gate.wait(5)
            return "slow"
        return "fast"

    assert h.call(backend) == "fast"
    gate.set()


def test_hedge_in_test_mode_does_not_wait() -> None:
    h = Hedge(1000)
    gate = threading.Event()
    calls = 0
    lock = threading.Lock()

    def backend() -> str:
        nonlocal calls
        with lock:
            calls += 1
            n = calls
        if n == 1:
            gate.wait(5)
            return "slow"
        return "hedged"

    with testing.set_testing(True):
        assert h.call(backend) == "hedged"
    gate.set()


# -- Pipeline ----------------------------------------------------------------------------


class Tracer(Policy):
    """Records the order stages run in."""

    __slots__ = ("log",)

    def __init__(self, name: str, log: list[str]) -> None:
        self.log = log
        super().__init__(name)

    def _bind_sync(self, inner: Any) -> Any:
        def run(fn: Any, args: Any, kwargs: Any) -> Any:
            self.log.append(f"{self.name}>")
            try:
                return inner(fn, args, kwargs)
            finally:
                self.log.append(f"<{self.name}")

        return run

    def _bind_async(self, inner: Any) -> Any:
        async def run(fn: Any, args: Any, kwargs: Any) -> Any:
            self.log.append(f"{self.name}>")
            try:
                return await inner(fn, args, kwargs)
            finally:
                self.log.append(f"<{self.name}")

        return run


async def test_first_policy_is_outermost() -> None:
    log: list[str] = []
    p = Pipeline(Tracer("a", log), Tracer("b", log), Tracer("c", log))
    assert p.call(lambda x: x, 1) == 1
    assert log == ["a>", "b>", "c>", "<c", "<b", "<a"]
    log.clear()

    async def af(x: int) -> int:
        return x

    assert await p.call_async(af, 2) == 2
    assert log == ["a>", "b>", "c>", "<c", "<b", "<a"]


def test_contract_pipeline_sync() -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(
        "risk",
        failure_rate_threshold=0.5,
        minimum_calls=2,
        window=4,
        open_duration=5.0,
        half_open_calls=2,
        clock=clock,
    )
    pipeline = Pipeline(
        Fallback(lambda exc: "review", on=CircuitOpenError),
        breaker,
        Retry(
            on=(OSError, TimeoutError),
            attempts=3,
            wait_initial=0.05,
            wait_max=0.5,
            clock=clock,
            sleep=clock.sleep,
        ),
        Timeout(0.8, clock=clock),
    )
    calls = 0

    def risk(flaky: bool) -> str:
        nonlocal calls
        calls += 1
        if flaky:
            raise ConnectionError
        return "accept"

    assert pipeline.call(risk, False) == "accept"
    with pytest.raises(ConnectionError):
        pipeline.call(risk, True)  # 3 attempts, one failure for the breaker
    assert calls == 4
    assert breaker.state == "open"
    assert pipeline.call(risk, False) == "review"  # breaker open -> fallback
    assert calls == 4

    @pipeline
    def decorated(flaky: bool) -> str:
        return risk(flaky)

    assert decorated(False) == "review"


async def test_contract_pipeline_async_with_timeout_retry() -> None:
    clock = FakeClock()
    attempts = 0

    async def slow_then_fast() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            await asyncio.Event().wait()
        return "ok"

    pipeline = Pipeline(
        Retry(on=TimeoutError, attempts=3, clock=clock, async_sleep=clock.async_sleep),
        Bulkhead(4),
        Timeout(0.01),
    )
    assert await pipeline.call_async(slow_then_fast) == "ok"
    assert attempts == 2


def test_pipeline_hooks_reach_every_stage() -> None:
    clock = FakeClock()
    events: list[Event] = []
    fb = Fallback(lambda e: 0)
    br = CircuitBreaker("b", minimum_calls=1, window=1, clock=clock)
    p = Pipeline(fb, br)
    p.add_hook(events.append)
    p.call(boom)
    kinds = {e.kind for e in events}
    assert {"fallback_used", "breaker_state_changed", "call_recorded"} <= kinds
    p.remove_hook(events.append)


def test_pipeline_rejects_non_policies() -> None:
    with pytest.raises(TypeError, match="Pipeline stage"):
        Pipeline(object())


def test_nested_pipelines() -> None:
    log: list[str] = []
    inner = Pipeline(Tracer("b", log), Tracer("c", log))
    outer = Pipeline(Tracer("a", log), inner)
    outer.call(lambda: None)
    assert log == ["a>", "b>", "c>", "<c", "<b", "<a"]


# -- test mode ----------------------------------------------------------------------------


def test_testing_mode_skips_retry_sleeps_and_caps_attempts() -> None:
    slept: list[float] = []
    r = Retry(on=OSError, attempts=10, wait_initial=100, wait_max=100, sleep=slept.append)
    calls = 0

    def down() -> None:
        nonlocal calls
        calls += 1
        raise ConnectionError

    with testing.set_testing(True, attempts=2):
        assert testing.is_testing()
        with pytest.raises(ConnectionError):
            r.call(down)
    assert not testing.is_testing()
    assert calls == 2
    assert slept == []


def test_set_testing_without_context_manager() -> None:
    restore = testing.set_testing(True)
    try:
        assert testing.is_testing()
    finally:
        testing.set_testing(False)
    assert not testing.is_testing()
    assert restore is not None
    with pytest.raises(ValueError):
        testing.set_testing(True, attempts=0)


def test_raw_pybreaker_is_accepted_as_a_stage() -> None:
    pybreaker = pytest.importorskip("pybreaker")
    legacy = pybreaker.CircuitBreaker(fail_max=2, name="legacy")
    p = Pipeline(Fallback(lambda e: "fallback", on=CircuitOpenError), legacy)
    assert type(p.policies[1]).__name__ == "PyBreakerStage"
    for _ in range(2):
        with pytest.raises(Boom):
            p.call(boom)
    assert p.call(lambda: "x") == "fallback"
