"""Sliding windows, the error tree, events and the hook registry."""

from __future__ import annotations

import dataclasses
import logging
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resilience import (
    BreakerStateChanged,
    BulkheadFullError,
    CircuitOpenError,
    Event,
    FakeClock,
    HookRegistry,
    RateLimitedError,
    RejectedError,
    ResilienceError,
    TimeoutRejectedError,
)
from resilience._windows import FAILURE, SLOW, CountWindow, TimeWindow


def test_count_window_keeps_totals_of_last_n() -> None:
    w = CountWindow(3)
    for outcome in (FAILURE, 0, FAILURE | SLOW, SLOW):
        w.record(outcome)
    assert (w.calls, w.failures, w.slow) == (3, 1, 2)
    w.record(0)
    w.record(0)
    assert (w.calls, w.failures, w.slow) == (3, 0, 1)
    w.reset()
    assert (w.calls, w.failures, w.slow) == (0, 0, 0)


def test_count_window_free_success_slot() -> None:
    w = CountWindow(2)
    assert w.success_is_free() == 0  # still filling: caller must record
    w.put(0, 0)
    w.record(FAILURE)
    assert w.full
    slot = w.success_is_free()
    assert slot == 0 or slot == -1
    assert w.success_is_free() == 1  # slot 1 holds the failure
    w.put(1, 0)
    assert w.failures == 0


def test_time_window_slides_bucket_by_bucket() -> None:
    clock = FakeClock(0.0)
    w = TimeWindow(10.0, clock, buckets=10)
    w.record(FAILURE)
    clock.advance(5)
    w.record(0)
    assert (w.calls, w.failures) == (2, 1)
    clock.advance(5.5)
    w.refresh()
    assert (w.calls, w.failures) == (1, 0)
    clock.advance(1000)
    w.refresh()
    assert w.calls == 0


def test_error_tree() -> None:
    for cls in (CircuitOpenError, BulkheadFullError, TimeoutRejectedError, RateLimitedError):
        assert issubclass(cls, RejectedError)
    assert issubclass(RejectedError, ResilienceError)
    assert issubclass(TimeoutRejectedError, TimeoutError)


@pytest.mark.parametrize(
    "error",
    [
        CircuitOpenError("risk", 1.5),
        BulkheadFullError("db", 4, 8),
        TimeoutRejectedError("api", 0.8),
        RateLimitedError("psp", 0.25),
    ],
)
def test_errors_pickle_and_describe_themselves(error: RejectedError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.args == error.args
    assert str(copy) == str(error)
    assert error.name in str(error)


def test_events_are_frozen_and_slotted() -> None:
    e = BreakerStateChanged("risk", 1.0, "closed", "open", "failure_rate")
    with pytest.raises(dataclasses.FrozenInstanceError):
        e.new = "closed"  # type: ignore[misc]
    assert not hasattr(e, "__dict__")
    assert e.kind == "breaker_state_changed"


def test_hook_registry(caplog: pytest.LogCaptureFixture) -> None:
    reg = HookRegistry()
    got: list[Event] = []
    assert not reg

    def bad(event: Event) -> None:
        raise RuntimeError("bug")

    reg.add(got.append)
    reg.add(got.append)
    reg.add(bad)
    assert len(reg) == 2
    with caplog.at_level(logging.ERROR, logger="resilience"):
        reg.emit(Event("x", 0.0))
    assert len(got) == 1
    assert "bug" in caplog.text
    reg.remove(bad)
    reg.remove(bad)
    assert len(reg) == 1
    with pytest.raises(TypeError):
        reg.add("nope")  # type: ignore[arg-type]


@given(
    size=st.integers(1, 20),
    outcomes=st.lists(st.sampled_from([0, FAILURE, SLOW, FAILURE | SLOW]), max_size=80),
)
def test_count_window_matches_a_naive_model(size: int, outcomes: list[int]) -> None:
    w = CountWindow(size)
    for o in outcomes:
        w.record(o)
    last = outcomes[-size:]
    assert w.calls == len(last)
    assert w.failures == sum(1 for o in last if o & FAILURE)
    assert w.slow == sum(1 for o in last if o & SLOW)


@given(
    steps=st.lists(
        st.tuples(st.floats(0, 3, allow_nan=False), st.sampled_from([0, FAILURE, SLOW])),
        max_size=60,
    )
)
def test_time_window_matches_a_bucketed_model(steps: list[tuple[float, int]]) -> None:
    clock = FakeClock(0.0)
    w = TimeWindow(10.0, clock, buckets=10)
    seen: list[tuple[int, int]] = []
    for dt, o in steps:
        clock.advance(dt)
        w.record(o)
        seen.append((int(clock.now // 1.0), o))
    current = int(clock.now // 1.0)
    live = [o for bucket, o in seen if bucket > current - 10]
    assert w.calls == len(live)
    assert w.failures == sum(1 for o in live if o & FAILURE)
    assert w.slow == sum(1 for o in live if o & SLOW)
