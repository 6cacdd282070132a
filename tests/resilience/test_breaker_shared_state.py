"""Breakers sharing coarse state through a `BreakerStore` (in-process `LocalStore`)."""

from __future__ import annotations

from typing import Any

import pytest

from resilience import (
    BreakerStateChanged,
    BreakerStore,
    BreakerStoreDegraded,
    BreakerStoreRecovered,
    CircuitBreaker,
    CircuitOpenError,
    Event,
    FakeClock,
    LocalStore,
    SharedState,
)


class Boom(Exception):
    pass


def fail() -> None:
    raise Boom


async def afail() -> None:
    raise Boom


def pair(clock: FakeClock, store: Any) -> tuple[CircuitBreaker, CircuitBreaker]:
    kw: dict[str, Any] = dict(
        minimum_calls=2,
        window=2,
        open_duration=10.0,
        clock=clock,
        store=store,
        store_sync_interval=0.0,
    )
    return CircuitBreaker("risk", **kw), CircuitBreaker("risk", **kw)


def test_shared_state_validates() -> None:
    with pytest.raises(ValueError, match="state"):
        SharedState("ajar")
    assert isinstance(LocalStore(), BreakerStore)


def test_open_in_one_is_open_in_the_other_then_closes_everywhere() -> None:
    clock = FakeClock()
    store = LocalStore()
    a, b = pair(clock, store)
    for _ in range(2):
        with pytest.raises(Boom):
            a.call(fail)
    assert a.state == "open"
    saved = store.load("risk")
    assert saved is not None
    assert saved.state == "open"
    assert saved.open_until == pytest.approx(clock.now + 10)
    with pytest.raises(CircuitOpenError):
        b.call(lambda: "x")
    assert b.state == "open"
    clock.advance(10)
    assert a.call(lambda: "trial") == "trial"
    assert a.state == "closed"
    assert b.call(lambda: "x") == "x"
    assert b.state == "closed"


def test_manual_force_open_is_shared() -> None:
    clock = FakeClock()
    store = LocalStore()
    a, b = pair(clock, store)
    events: list[Event] = []
    b.add_hook(events.append)
    a.force_open()
    with pytest.raises(CircuitOpenError):
        b.call(lambda: 1)
    assert b.state == "forced_open"
    assert any(isinstance(e, BreakerStateChanged) and e.reason == "shared_state" for e in events)
    a.close()
    assert b.call(lambda: 2) == 2


async def test_async_path_uses_async_store_methods() -> None:
    clock = FakeClock()
    store = LocalStore()
    a, b = pair(clock, store)
    for _ in range(2):
        with pytest.raises(Boom):
            await a.call_async(afail)

    async def ok() -> str:
        return "ok"

    with pytest.raises(CircuitOpenError):
        await b.call_async(ok)


class BrokenStore:
    def __init__(self) -> None:
        self.broken = True
        self.inner = LocalStore()

    def load(self, name: str) -> SharedState | None:
        if self.broken:
            raise ConnectionError("redis down")
        return self.inner.load(name)

    def save(self, name: str, state: SharedState) -> None:
        if self.broken:
            raise ConnectionError("redis down")
        self.inner.save(name, state)

    async def aload(self, name: str) -> SharedState | None:
        raise NotImplementedError

    async def asave(self, name: str, state: SharedState) -> None:
        raise NotImplementedError


def test_store_outage_degrades_to_local_state_and_says_so() -> None:
    clock = FakeClock()
    store = BrokenStore()
    breaker = CircuitBreaker(
        "risk",
        minimum_calls=2,
        window=2,
        failure_rate_threshold=1.0,
        clock=clock,
        store=store,
        store_sync_interval=1.0,
    )
    events: list[Event] = []
    breaker.add_hook(events.append)
    assert breaker.call(lambda: "works") == "works"
    for _ in range(2):
        with pytest.raises(Boom):
            breaker.call(fail)
    assert breaker.state == "open"  # local state kept working
    degraded = [e for e in events if isinstance(e, BreakerStoreDegraded)]
    assert len(degraded) == 1
    assert "redis down" in degraded[0].error
    store.broken = False
    clock.advance(1.0)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: "x")
    assert any(isinstance(e, BreakerStoreRecovered) for e in events)


async def test_async_only_not_implemented_falls_back_to_sync_pair() -> None:
    clock = FakeClock()
    store = BrokenStore()
    store.broken = False
    a = CircuitBreaker(
        "risk", minimum_calls=1, window=1, clock=clock, store=store, store_sync_interval=0
    )
    events: list[Event] = []
    a.add_hook(events.append)
    with pytest.raises(Boom):
        await a.call_async(afail)
    saved = store.inner.load("risk")
    assert saved is not None
    assert saved.state == "open"
    assert not any(isinstance(e, BreakerStoreDegraded) for e in events)


def test_local_store_keeps_newest_version() -> None:
    store = LocalStore()
    store.save("x", SharedState("open", 1.0, 2.0, 5))
    store.save("x", SharedState("closed", None, None, 4))
    loaded = store.load("x")
    assert loaded is not None
    assert loaded.version == 5
