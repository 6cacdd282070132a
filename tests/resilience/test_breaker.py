"""Circuit breaker state machine, sync and async, with an injected clock."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

import pytest

from resilience import (
    BreakerStateChanged,
    CallAdmitted,
    CallRecorded,
    CallRejected,
    CircuitBreaker,
    CircuitOpenError,
    Event,
    FakeClock,
    RejectedError,
)


class Boom(Exception):
    pass


def ok(value: Any = "ok") -> Any:
    return value


def fail() -> None:
    raise Boom("down")


async def aok(value: Any = "ok") -> Any:
    return value


async def afail() -> None:
    raise Boom("down")


def make(clock: FakeClock, **kw: Any) -> CircuitBreaker:
    options: dict[str, Any] = dict(
        failure_rate_threshold=0.5, minimum_calls=4, window=10, open_duration=5.0, half_open_calls=2
    )
    options.update(kw)
    return CircuitBreaker("risk", clock=clock, **options)


def drive(breaker: CircuitBreaker, outcomes: str) -> None:
    for o in outcomes:
        if o == "s":
            breaker.call(ok)
        else:
            with pytest.raises(Boom):
                breaker.call(fail)


def test_stays_closed_below_minimum_calls() -> None:
    b = make(FakeClock())
    drive(b, "fff")
    assert b.state == "closed"
    drive(b, "f")
    assert b.state == "open"


def test_opens_on_failure_rate_not_count() -> None:
    b = make(FakeClock(), minimum_calls=4, window=10)
    drive(b, "sssssfsf")  # 2 failures / 8 = 25 %
    assert b.state == "closed"
    drive(b, "ff")  # 4 / 10 = 40 %
    assert b.state == "closed"
    drive(b, "f")  # window slides: oldest success out -> 5 / 10 = 50 %
    assert b.state == "open"
    m = b.metrics
    assert m.state == "open"


def test_count_window_slides_out_old_failures() -> None:
    b = make(FakeClock(), minimum_calls=4, window=4, failure_rate_threshold=0.75)
    drive(b, "ffss")  # 50 %
    drive(b, "ss")  # failures slid out
    assert b.metrics.failures == 0
    assert b.metrics.calls == 4
    drive(b, "ff")
    assert b.state == "closed"
    drive(b, "f")
    assert b.state == "open"


def test_open_rejects_with_circuit_open_error_then_half_open_after_duration() -> None:
    clock = FakeClock()
    b = make(clock)
    drive(b, "ffff")
    with pytest.raises(CircuitOpenError) as info:
        b.call(ok)
    assert isinstance(info.value, RejectedError)
    assert info.value.name == "risk"
    assert info.value.remaining == pytest.approx(5.0)
    clock.advance(4.9)
    with pytest.raises(CircuitOpenError):
        b.call(ok)
    clock.advance(0.1)
    assert b.call(ok) == "ok"
    assert b.state == "half_open"
    assert b.call(ok) == "ok"
    assert b.state == "closed"
    assert b.metrics.calls == 0


def test_half_open_trial_failure_reopens() -> None:
    clock = FakeClock()
    b = make(clock, half_open_calls=2, failure_rate_threshold=0.5)
    drive(b, "ffff")
    clock.advance(5)
    drive(b, "f")  # 1 of 2 trials failed = 50 % -> open at once
    assert b.state == "open"
    with pytest.raises(CircuitOpenError):
        b.call(ok)


def test_half_open_needs_all_trials_before_closing() -> None:
    clock = FakeClock()
    b = make(clock, half_open_calls=3, failure_rate_threshold=0.5)
    drive(b, "ffff")
    clock.advance(5)
    drive(b, "ss")
    assert b.state == "half_open"
    # trials are used up only by completed calls; the 3rd closes
    drive(b, "s")
    assert b.state == "closed"


def test_half_open_rejects_beyond_trial_slots_sequential_slow_calls() -> None:
    clock = FakeClock()
    b = make(clock, half_open_calls=1)
    drive(b, "ffff")
    clock.advance(5)
    inner_errors: list[BaseException] = []

    def trial() -> str:
        try:
            b.call(ok)  # a concurrent second call while the trial runs
        except CircuitOpenError as exc:
            inner_errors.append(exc)
        return "trial"

    assert b.call(trial) == "trial"
    assert len(inner_errors) == 1
    assert b.state == "closed"


def test_slow_calls_trip_the_breaker() -> None:
    clock = FakeClock()
    b = make(clock, slow_call_duration=1.0, slow_call_rate_threshold=0.5, minimum_calls=4)

    def slow() -> str:
        clock.advance(2.0)
        return "late"

    for _ in range(3):
        assert b.call(slow) == "late"
    assert b.state == "closed"
    b.call(slow)
    assert b.state == "open"
    assert b.metrics.slow_calls == 4
    assert b.metrics.failures == 0


def test_ignore_and_record_predicates() -> None:
    class NotFound(Exception):
        pass

    b = make(FakeClock(), ignore=NotFound, record=lambda e: isinstance(e, Boom))
    for _ in range(10):
        with pytest.raises(NotFound):
            b.call(lambda: (_ for _ in ()).throw(NotFound()))
    assert b.metrics.calls == 0
    for _ in range(5):
        with pytest.raises(KeyError):
            b.call(lambda: {}["x"])  # not recorded as failure: counts as success
    assert b.metrics.calls == 5
    assert b.metrics.failures == 0
    drive(b, "fffff")
    assert b.state == "open"


def test_failure_result_predicate() -> None:
    b = make(FakeClock(), failure_result=lambda r: r is None)
    for _ in range(4):
        assert b.call(ok, None) is None
    assert b.state == "open"


def test_manual_operations() -> None:
    clock = FakeClock()
    b = make(clock)
    b.force_open()
    assert b.state == "forced_open"
    clock.advance(1000)
    with pytest.raises(CircuitOpenError):
        b.call(ok)
    b.close()
    assert b.call(ok) == "ok"
    before = b.metrics.calls
    b.disable()
    drive(b, "ffffffffff")
    assert b.state == "disabled"
    assert b.metrics.calls == before
    b.close()
    b.open()
    assert b.state == "open"
    with pytest.raises(CircuitOpenError):
        b.call(ok)
    clock.advance(5)
    assert b.call(ok) == "ok"


def test_no_lock_held_during_call() -> None:
    b = make(FakeClock())
    # Reading metrics takes the breaker's (non-reentrant) lock: it would deadlock if the
    # call ran under it. Manual operations from inside a call work too.
    assert b.call(lambda: b.metrics.calls) == 0

    def operator() -> str:
        b.force_open()
        return "done"

    assert b.call(operator) == "done"
    assert b.state == "forced_open"


def test_outcome_of_call_admitted_before_transition_is_not_recorded() -> None:
    clock = FakeClock()
    b = make(clock)

    def trips_then_succeeds() -> str:
        drive(b, "ffff")  # opens while this call is in flight
        b.close()
        return "late"

    b.call(trips_then_succeeds)
    assert b.metrics.calls == 0


def test_events() -> None:
    clock = FakeClock()
    b = make(clock)
    events: list[Event] = []
    b.add_hook(events.append)
    drive(b, "sfff")
    with pytest.raises(CircuitOpenError):
        b.call(ok)
    changes = [e for e in events if isinstance(e, BreakerStateChanged)]
    assert [(c.old, c.new, c.reason) for c in changes] == [("closed", "open", "failure_rate")]
    assert changes[0].name == "risk"
    assert changes[0].at == clock.now
    recorded = [e for e in events if isinstance(e, CallRecorded)]
    assert [r.outcome for r in recorded] == ["success", "failure", "failure", "failure"]
    assert isinstance(recorded[1].error, Boom)
    assert len([e for e in events if isinstance(e, CallAdmitted)]) == 4
    rejected = [e for e in events if isinstance(e, CallRejected)]
    assert rejected[0].reason == "circuit_open"
    assert rejected[0].policy == "circuit_breaker"
    b.remove_hook(events.append)
    events.clear()
    b.close()
    assert events == []


def test_failing_hook_does_not_break_calls() -> None:
    b = make(FakeClock())

    def bad_hook(event: Event) -> None:
        raise RuntimeError("hook bug")

    b.add_hook(bad_hook)
    assert b.call(ok) == "ok"
    drive(b, "fff")
    assert b.state == "open"


def test_time_window() -> None:
    clock = FakeClock()
    b = make(clock, window_type="time", window=10.0, minimum_calls=3)
    drive(b, "ff")
    clock.advance(11)  # both failures slide out
    drive(b, "sf")
    assert b.state == "closed"
    assert b.metrics.calls == 2
    drive(b, "f")
    assert b.state == "open"


def test_cancellation_is_not_a_failure() -> None:
    b = make(FakeClock(), minimum_calls=1, window=1)

    async def cancelled() -> None:
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(b.call_async(cancelled))
    assert b.metrics.calls == 0
    assert b.state == "closed"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"failure_rate_threshold": 50}, "fraction"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"window": 5, "minimum_calls": 10}, "window >= minimum_calls"),
        ({"window_type": "sliding"}, "window_type"),
        ({"open_duration": -1}, "open_duration"),
        ({"half_open_calls": 0}, "half_open_calls"),
        ({"record": 42}, "record"),
        ({"slow_call_duration": 0}, "slow_call_duration"),
    ],
)
def test_options_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        CircuitBreaker("x", **kwargs)


def test_name_required() -> None:
    with pytest.raises(ValueError, match="name"):
        CircuitBreaker("")


# -- async --------------------------------------------------------------------------------


async def test_async_state_machine() -> None:
    clock = FakeClock()
    b = make(clock)
    for _ in range(4):
        with pytest.raises(Boom):
            await b.call_async(afail)
    assert b.state == "open"
    with pytest.raises(CircuitOpenError):
        await b.call_async(aok)
    clock.advance(5)
    assert await b.call_async(aok, 1) == 1
    assert await b.call_async(aok, 2) == 2
    assert b.state == "closed"


async def test_async_decorator() -> None:
    clock = FakeClock()
    b = make(clock)

    @b
    async def charge(amount: int) -> int:
        if amount < 0:
            raise Boom
        return amount

    assert await charge(3) == 3
    for _ in range(3):
        with pytest.raises(Boom):
            await charge(-1)
    with pytest.raises(CircuitOpenError):
        await charge(1)


@pytest.mark.parametrize("half_open_calls", [1, 2, 5])
async def test_32_concurrent_async_calls_in_half_open_admit_exactly_half_open_calls(
    half_open_calls: int,
) -> None:
    clock = FakeClock()
    b = make(clock, half_open_calls=half_open_calls)
    b.open()
    clock.advance(5)
    release = asyncio.Event()
    admitted = 0

    async def trial() -> str:
        nonlocal admitted
        admitted += 1
        await release.wait()
        return "ok"

    tasks = [asyncio.create_task(b.call_async(trial)) for _ in range(32)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert admitted == half_open_calls
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(r == "ok" for r in results) == half_open_calls
    assert sum(isinstance(r, CircuitOpenError) for r in results) == 32 - half_open_calls
    assert b.state == "closed"


def test_32_threads_in_half_open_admit_exactly_half_open_calls() -> None:
    clock = FakeClock()
    b = make(clock, half_open_calls=3)
    b.open()
    clock.advance(5)
    release = threading.Event()
    start = threading.Barrier(32)
    results: list[object] = []
    lock = threading.Lock()

    def trial() -> str:
        release.wait(10)
        return "ok"

    def worker() -> None:
        start.wait()
        try:
            r: object = b.call(trial)
        except CircuitOpenError as exc:
            r = exc
        with lock:
            results.append(r)

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    # the 29 rejected calls finish without waiting for the trials
    deadline = 200
    while len(results) < 29 and deadline:
        threading.Event().wait(0.01)
        deadline -= 1
    assert len(results) == 29
    release.set()
    for t in threads:
        t.join()
    assert results.count("ok") == 3
    assert b.state == "closed"


def test_threads_hammering_keep_window_totals_consistent() -> None:
    b = CircuitBreaker("hammer", minimum_calls=100, window=50_000, failure_rate_threshold=1.0)

    def worker() -> None:
        for i in range(2000):
            if i % 10 == 0:
                with contextlib.suppress(Boom):
                    b.call(fail)
            else:
                b.call(ok)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    m = b.metrics
    assert m.calls == 16_000
    assert m.failures == 1_600


def test_threads_run_through_one_breaker_in_parallel() -> None:
    # If the breaker held a lock during the call, 8 calls could never meet at a barrier.
    b = CircuitBreaker("parallel")
    barrier = threading.Barrier(8, timeout=10)
    results: list[int] = []

    def meet() -> int:
        return barrier.wait()

    threads = [threading.Thread(target=lambda: results.append(b.call(meet))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == list(range(8))


def test_slow_calls_counted_when_the_clock_starts_at_zero() -> None:
    clock = FakeClock(0.0)
    b = make(clock, slow_call_duration=1.0, slow_call_rate_threshold=1.0, minimum_calls=4)

    def slow() -> None:
        clock.advance(1.0)

    for _ in range(4):
        b.call(slow)
    assert b.state == "open"
