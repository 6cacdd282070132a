"""Timeout, Bulkhead and RateLimiter on both paths."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from resilience import (
    Bulkhead,
    BulkheadFullError,
    CallRejected,
    Event,
    FakeClock,
    RateLimitedError,
    RateLimiter,
    RejectedError,
    Timeout,
    TimeoutRejectedError,
    testing,
)

# -- Timeout -----------------------------------------------------------------------------


def test_sync_check_mode_rejects_overrun_after_the_fact() -> None:
    clock = FakeClock()
    t = Timeout(1.0, clock=clock)

    def slow() -> str:
        clock.advance(1.5)
        return "late"

    with pytest.raises(TimeoutRejectedError) as info:
        t.call(slow)
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, RejectedError)
    assert info.value.timeout == 1.0
    assert t.call(lambda: "fast") == "fast"


def test_sync_check_mode_passes_own_exceptions() -> None:
    clock = FakeClock()
    t = Timeout(1.0, clock=clock)

    def slow_fail() -> None:
        clock.advance(5)
        raise KeyError("own")

    with pytest.raises(KeyError):
        t.call(slow_fail)


def test_sync_thread_mode_stops_waiting() -> None:
    t = Timeout(0.05, sync_mode="thread")
    release = threading.Event()
    with pytest.raises(TimeoutRejectedError):
        t.call(release.wait, 5)
    release.set()
    assert t.call(lambda: 3) == 3


async def test_async_timeout_cancels_the_call() -> None:
    t = Timeout(0.01)
    events: list[Event] = []
    t.add_hook(events.append)
    cancelled = asyncio.Event()

    async def hang() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutRejectedError) as info:
        await t.call_async(hang)
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    assert cancelled.is_set()
    assert isinstance(events[0], CallRejected)
    assert events[0].reason == "timeout"


async def test_async_inner_timeout_error_is_not_ours() -> None:
    t = Timeout(10)

    async def own() -> None:
        raise TimeoutError("dependency said so")

    with pytest.raises(TimeoutError) as info:
        await t.call_async(own)
    assert not isinstance(info.value, TimeoutRejectedError)


def test_timeout_validation() -> None:
    with pytest.raises(ValueError, match="sync_mode"):
        Timeout(1, sync_mode="signal")
    with pytest.raises(ValueError, match="seconds"):
        Timeout(0)


# -- Bulkhead ----------------------------------------------------------------------------


async def test_async_bulkhead_limits_and_queues() -> None:
    b = Bulkhead(2, max_queued=1)
    release = asyncio.Event()
    running = 0
    peak = 0

    async def work() -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return "done"

    tasks = [asyncio.create_task(b.call_async(work)) for _ in range(5)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert b.running == 2
    assert b.queued == 1
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results.count("done") == 3
    assert sum(isinstance(r, BulkheadFullError) for r in results) == 2
    assert peak == 2
    assert b.running == 0
    assert b.queued == 0


async def test_async_bulkhead_queue_wait_times_out() -> None:
    b = Bulkhead(1, max_queued=1, max_wait=0.01)
    release = asyncio.Event()

    async def hold() -> None:
        await release.wait()

    holder = asyncio.create_task(b.call_async(hold))
    await asyncio.sleep(0)
    with pytest.raises(BulkheadFullError):
        await b.call_async(hold)
    release.set()
    await holder
    assert b.running == 0
    assert b.queued == 0


async def test_async_bulkhead_cancelled_waiter_leaves_queue() -> None:
    b = Bulkhead(1, max_queued=2)
    release = asyncio.Event()

    async def hold() -> str:
        await release.wait()
        return "x"

    holder = asyncio.create_task(b.call_async(hold))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(b.call_async(hold))
    await asyncio.sleep(0)
    assert b.queued == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert b.queued == 0
    release.set()
    assert await holder == "x"
    assert b.running == 0


def test_threaded_bulkhead_limits_concurrency() -> None:
    b = Bulkhead(2, max_queued=10)
    lock = threading.Lock()
    running = 0
    peak = 0
    gate = threading.Event()

    def work() -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        gate.wait(5)
        with lock:
            running -= 1

    threads = [threading.Thread(target=b.call, args=(work,)) for _ in range(8)]
    for t in threads:
        t.start()
    threading.Event().wait(0.05)
    gate.set()
    for t in threads:
        t.join()
    assert peak == 2
    assert b.running == 0
    assert b.queued == 0


def test_threaded_bulkhead_rejects_when_queue_full() -> None:
    b = Bulkhead(1, max_queued=0)
    events: list[Event] = []
    b.add_hook(events.append)
    inside = threading.Event()
    gate = threading.Event()

    def hold() -> None:
        inside.set()
        gate.wait(5)

    t = threading.Thread(target=b.call, args=(hold,))
    t.start()
    inside.wait(5)
    with pytest.raises(BulkheadFullError):
        b.call(lambda: None)
    gate.set()
    t.join()
    assert b.call(lambda: 1) == 1
    assert isinstance(events[0], CallRejected)
    assert events[0].reason == "bulkhead_full"


def test_threaded_bulkhead_queue_wait_times_out() -> None:
    b = Bulkhead(1, max_queued=1, max_wait=0.01)
    inside = threading.Event()
    gate = threading.Event()

    def hold() -> None:
        inside.set()
        gate.wait(5)

    t = threading.Thread(target=b.call, args=(hold,))
    t.start()
    inside.wait(5)
    with pytest.raises(BulkheadFullError):
        b.call(lambda: None)
    gate.set()
    t.join()
    assert b.queued == 0


def test_bulkhead_validation() -> None:
    with pytest.raises(ValueError, match="max_concurrent"):
        Bulkhead(0)
    with pytest.raises(ValueError, match="max_queued"):
        Bulkhead(1, max_queued=-1)


# -- RateLimiter -------------------------------------------------------------------------


def test_token_bucket_refills_over_time() -> None:
    clock = FakeClock()
    rl = RateLimiter(2, burst=2, clock=clock, sleep=clock.sleep)
    assert rl.call(lambda: 1) == 1
    assert rl.call(lambda: 2) == 2
    with pytest.raises(RateLimitedError) as info:
        rl.call(lambda: 3)
    assert info.value.retry_after == pytest.approx(0.5)
    clock.advance(0.5)
    assert rl.call(lambda: 4) == 4


def test_rate_limiter_waits_up_to_max_wait_in_order() -> None:
    clock = FakeClock()
    rl = RateLimiter(10, burst=1, max_wait=0.25, clock=clock, sleep=lambda s: None)
    assert rl.acquire() == 0.0
    assert rl.acquire() == pytest.approx(0.1)
    assert rl.acquire() == pytest.approx(0.2)
    with pytest.raises(RateLimitedError):
        rl.acquire()


def test_rate_limiter_never_waits_in_test_mode() -> None:
    clock = FakeClock()
    rl = RateLimiter(1, max_wait=10, clock=clock)
    rl.acquire()
    with testing.set_testing(True), pytest.raises(RateLimitedError):
        rl.acquire()


async def test_async_rate_limiter() -> None:
    clock = FakeClock()
    rl = RateLimiter(1, max_wait=1.0, clock=clock, async_sleep=clock.async_sleep)

    async def op() -> str:
        return "x"

    assert await rl.call_async(op) == "x"
    assert await rl.call_async(op) == "x"
    assert clock.sleeps == [pytest.approx(1.0)]


@pytest.mark.parametrize(("args", "kw"), [((0,), {}), ((1,), {"burst": 0.5}), ((1,), {"per": 0})])
def test_rate_limiter_validation(args: tuple[Any, ...], kw: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RateLimiter(*args, **kw)


async def test_async_timeout_many_calls_share_one_timer() -> None:
    t = Timeout(0.02)

    async def call(i: int) -> int:
        await asyncio.sleep(0.001 * (i % 5))  # staggered starts re-arm the shared timer
        if i % 2:
            await asyncio.Event().wait()
        return i

    async def staggered(i: int) -> int:
        await asyncio.sleep(0.002 * i)
        return await t.call_async(call, i)

    results = await asyncio.gather(*(staggered(i) for i in range(10)), return_exceptions=True)
    for i, r in enumerate(results):
        if i % 2:
            assert isinstance(r, TimeoutRejectedError)
        else:
            assert r == i
    # the policy keeps working afterwards, and nothing is left in flight
    assert await t.call_async(call, 2) == 2
    watchdog = t._watchdog
    assert watchdog is not None
    assert watchdog.calls == {}


async def test_async_timeout_external_cancel_is_not_a_timeout() -> None:
    t = Timeout(10)
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.create_task(t.call_async(hang))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
