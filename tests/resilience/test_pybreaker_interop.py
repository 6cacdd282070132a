"""pybreaker interop: a pybreaker breaker as a pipeline stage, pybreaker listeners on ours."""

from __future__ import annotations

import asyncio
import inspect
import pickle
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

pybreaker = pytest.importorskip("pybreaker")

from resilience._breaker import CircuitBreaker  # noqa: E402
from resilience._clock import FakeClock  # noqa: E402
from resilience._errors import CircuitOpenError, RejectedError  # noqa: E402
from resilience._events import BreakerStateChanged, CallRecorded, CallRejected, Event  # noqa: E402
from resilience._fallback import Fallback  # noqa: E402
from resilience._pipeline import Pipeline  # noqa: E402
from resilience._pybreaker import (  # noqa: E402
    PyBreakerListenerHook,
    PyBreakerOpenError,
    PyBreakerStage,
)


class WallClock:
    """An aware-datetime clock the test moves by hand (pybreaker stamps real UTC time)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset  # noqa: UP017

    def advance(self, seconds: float) -> None:
        self.offset += timedelta(seconds=seconds)


class Recorder(pybreaker.CircuitBreakerListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def before_call(self, cb: Any, func: Any, *args: Any, **kwargs: Any) -> None:
        self.calls.append(("before_call", func, args, kwargs))

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        old = None if old_state is None else old_state.name
        self.calls.append(("state_change", cb.name, old, new_state.name))

    def failure(self, cb: Any, exc: BaseException) -> None:
        self.calls.append(("failure", type(exc).__name__))

    def success(self, cb: Any) -> None:
        self.calls.append(("success",))


async def afail() -> None:
    raise OSError("risk service down")


async def aok() -> str:
    return "ok"


def fail() -> None:
    raise OSError("risk service down")


def legacy(**kw: Any) -> Any:
    options: dict[str, Any] = {"fail_max": 3, "reset_timeout": 30, "name": "legacy-risk"}
    options.update(kw)
    return pybreaker.CircuitBreaker(**options)


# -- the problem, and the fix --------------------------------------------------------------------
async def test_pybreaker_alone_counts_no_async_failure() -> None:
    cb = legacy()
    for _ in range(5):
        with pytest.raises(OSError):
            await cb.call(afail)  # pybreaker saw a coroutine object returned: "success"
    assert cb.fail_counter == 0
    assert cb.current_state == "closed"


async def test_stage_counts_async_failures_and_opens() -> None:
    cb = legacy()
    stage = PyBreakerStage(cb)
    for attempt in range(3):
        with pytest.raises(OSError, match="risk service down"):  # the tripping call too
            await stage.call_async(afail)
        assert cb.fail_counter == attempt + 1
    assert cb.current_state == "open"
    assert stage.state == "open"
    with pytest.raises(PyBreakerOpenError) as caught:
        await stage.call_async(aok)
    # catchable both ways
    assert isinstance(caught.value, CircuitOpenError)
    assert isinstance(caught.value, RejectedError)
    assert isinstance(caught.value, pybreaker.CircuitBreakerError)
    assert caught.value.name == "legacy-risk"
    assert caught.value.remaining is not None
    assert 29 < caught.value.remaining <= 30


def test_stage_sync_path_matches_pybreaker_counting() -> None:
    cb = legacy()
    stage = PyBreakerStage(cb)
    assert stage.call(lambda: 5) == 5
    for _ in range(2):
        with pytest.raises(OSError):
            stage.call(fail)
    assert cb.fail_counter == 2
    assert stage.call(lambda: 6) == 6  # a success resets pybreaker's consecutive counter
    assert cb.fail_counter == 0


def test_excluded_exceptions_do_not_count() -> None:
    cb = legacy(exclude=[KeyError])
    stage = PyBreakerStage(cb)

    def business_error() -> None:
        raise KeyError("no such account")

    for _ in range(5):
        with pytest.raises(KeyError):
            stage.call(business_error)
    assert cb.current_state == "closed"
    assert cb.fail_counter == 0


async def test_cancellation_is_not_a_failure() -> None:
    cb = legacy(fail_max=1)
    stage = PyBreakerStage(cb)

    async def slow() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(stage.call_async(slow))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cb.current_state == "closed"
    assert cb.fail_counter == 0


# -- half-open ----------------------------------------------------------------------------------
async def test_half_open_admits_one_trial_of_32_concurrent_calls() -> None:
    clock = WallClock()
    cb = legacy(fail_max=1)
    stage = PyBreakerStage(cb, clock=clock)
    with pytest.raises(OSError):
        await stage.call_async(afail)
    assert cb.current_state == "open"
    clock.advance(31)

    release = asyncio.Event()
    entered = 0

    async def trial() -> str:
        nonlocal entered
        entered += 1
        await release.wait()
        return "ok"

    tasks = [asyncio.create_task(stage.call_async(trial)) for _ in range(32)]
    await asyncio.sleep(0)
    assert entered == 1
    assert cb.current_state == "half-open"
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert results.count("ok") == 1
    assert sum(isinstance(r, PyBreakerOpenError) for r in results) == 31
    assert cb.current_state == "closed"


def test_failed_trial_reopens_and_reraises_the_original_error() -> None:
    clock = WallClock()
    cb = legacy(fail_max=1)
    stage = PyBreakerStage(cb, clock=clock)
    with pytest.raises(OSError):
        stage.call(fail)
    clock.advance(31)
    with pytest.raises(OSError):  # not pybreaker's "Trial call failed" error
        stage.call(fail)
    assert cb.current_state == "open"
    with pytest.raises(PyBreakerOpenError):
        stage.call(lambda: None)


def test_two_stages_over_one_breaker_share_the_trial() -> None:
    clock = WallClock()
    cb = legacy(fail_max=1)
    first, second = PyBreakerStage(cb, clock=clock), PyBreakerStage(cb, clock=clock)
    with pytest.raises(OSError):
        first.call(fail)
    clock.advance(31)
    inside = threading.Event()
    release = threading.Event()

    def slow_trial() -> str:
        inside.set()
        release.wait(5)
        return "ok"

    result: list[str] = []
    t = threading.Thread(target=lambda: result.append(first.call(slow_trial)))
    t.start()
    assert inside.wait(5)
    with pytest.raises(PyBreakerOpenError):
        second.call(lambda: "second trial")
    release.set()
    t.join(5)
    assert result == ["ok"]
    assert cb.current_state == "closed"


# -- no lock during the call -------------------------------------------------------------------
def test_stage_does_not_serialise_threads() -> None:
    # pybreaker.call holds its lock during the call: 8 threads meeting at a barrier inside
    # the protected function would deadlock. Through the stage they all get in.
    stage = PyBreakerStage(legacy())
    barrier = threading.Barrier(8, timeout=5)
    results: list[int] = []

    def meet() -> int:
        return barrier.wait()

    threads = [threading.Thread(target=lambda: results.append(stage.call(meet))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == list(range(8))


# -- in a pipeline, with our hooks ------------------------------------------------------------
async def test_pybreaker_in_a_pipeline_with_fallback_and_our_events() -> None:
    cb = legacy(fail_max=2)
    events: list[Event] = []
    pipeline = Pipeline(Fallback(lambda exc: "declined (fallback)", on=OSError), cb)
    pipeline.add_hook(events.append)
    stage = pipeline.policies[1]
    assert isinstance(stage, PyBreakerStage)  # wrapped automatically
    for _ in range(2):
        assert await pipeline.call_async(afail) == "declined (fallback)"
    assert cb.current_state == "open"
    with pytest.raises(CircuitOpenError):  # the fallback only handles OSError
        await pipeline.call_async(aok)
    kinds = [type(e) for e in events if not isinstance(e, CallRecorded)]
    assert BreakerStateChanged in kinds
    assert CallRejected in kinds
    changed = next(e for e in events if isinstance(e, BreakerStateChanged))
    assert (changed.old, changed.new) == ("closed", "open")
    recorded = [e for e in events if isinstance(e, CallRecorded)]
    assert [e.outcome for e in recorded] == ["failure", "failure"]


async def test_stage_as_a_decorator_keeps_the_signature() -> None:
    stage = PyBreakerStage(legacy())

    @stage
    async def authorise(amount: int, *, currency: str = "EUR") -> str:
        """Ask the risk service."""
        return f"{amount} {currency}"

    assert inspect.iscoroutinefunction(authorise)
    assert inspect.signature(authorise) == inspect.signature(authorise.__wrapped__)  # type: ignore[attr-defined]
    assert list(inspect.signature(authorise).parameters) == ["amount", "currency"]
    assert authorise.__doc__ == "Ask the risk service."
    assert await authorise(5, currency="GBP") == "5 GBP"


def test_listeners_of_the_pybreaker_still_hear_everything() -> None:
    recorder = Recorder()
    cb = legacy(fail_max=1, listeners=[recorder])
    stage = PyBreakerStage(cb)
    stage.call(lambda x: x, 1)
    with pytest.raises(OSError):
        stage.call(fail)
    names = [c[0] for c in recorder.calls]
    assert names == ["before_call", "success", "before_call", "failure", "state_change"]
    assert recorder.calls[0][2] == (1,)
    assert recorder.calls[-1] == ("state_change", "legacy-risk", "closed", "open")


def test_rejection_error_pickles() -> None:
    error = PyBreakerOpenError("legacy-risk", 12.5)
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert (again.name, again.remaining) == ("legacy-risk", 12.5)


def test_only_pybreaker_breakers_are_accepted() -> None:
    with pytest.raises(TypeError, match=r"pybreaker\.CircuitBreaker"):
        PyBreakerStage(object())


# -- pybreaker listeners on our breaker -------------------------------------------------------
def test_pybreaker_listener_subscribes_to_our_breaker() -> None:
    clock = FakeClock()
    ours = CircuitBreaker(
        "risk", failure_rate_threshold=0.5, minimum_calls=2, window=4, open_duration=5.0,
        clock=clock,
    )
    recorder = Recorder()
    hook = PyBreakerListenerHook.subscribe(ours, recorder)
    ours.call(lambda: 1)
    ours.call(lambda: 1)
    for _ in range(2):
        with pytest.raises(OSError):
            ours.call(fail)
    clock.advance(5.0)
    ours.call(lambda: 1)
    got = [c for c in recorder.calls if c[0] != "before_call"]
    assert got == [
        ("success",),
        ("success",),
        ("failure", "OSError"),  # the exception the call raised (CallRecorded.error)
        ("failure", "OSError"),
        ("state_change", "risk", "closed", "open"),
        ("state_change", "risk", "open", "half-open"),
        ("success",),
        ("state_change", "risk", "half-open", "closed"),
    ]
    before = [c for c in recorder.calls if c[0] == "before_call"]
    assert len(before) == 5  # admitted calls only: the open breaker admitted none
    assert before[0] == ("before_call", None, (), {})
    assert hook.cb.name == "risk"
    assert hook.cb.current_state == "closed"
    ours.remove_hook(hook)
    heard = len(recorder.calls)
    ours.call(lambda: 1)
    assert len(recorder.calls) == heard


def test_listener_view_reports_forced_states_in_pybreaker_terms() -> None:
    ours = CircuitBreaker("risk", clock=FakeClock())
    recorder = Recorder()
    hook = PyBreakerListenerHook.subscribe(ours, recorder)
    ours.force_open()
    assert hook.cb.current_state == "open"
    assert recorder.calls[-1] == ("state_change", "risk", "closed", "open")
    ours.disable()
    assert hook.cb.current_state == "closed"


def test_listener_hook_rejects_non_listeners() -> None:
    with pytest.raises(TypeError, match="not a pybreaker listener"):
        PyBreakerListenerHook(object())
