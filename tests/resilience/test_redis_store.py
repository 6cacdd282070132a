"""RedisBreakerStore / AsyncRedisBreakerStore against a real redis-server.

Policy time runs on a `FakeClock`; the only real waiting is on Redis itself and on a
child process. Tests that kill or pause Redis start their own server, never the shared
session one.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

redis = pytest.importorskip("redis")

from faultline.stack._embedded import EmbeddedRedis, free_port  # noqa: E402
from resilience._breaker import CircuitBreaker  # noqa: E402
from resilience._breaker_store import SharedState  # noqa: E402
from resilience._clock import FakeClock  # noqa: E402
from resilience._errors import CircuitOpenError  # noqa: E402
from resilience._events import BreakerStoreDegraded, BreakerStoreRecovered, Event  # noqa: E402
from resilience._redis_store import (  # noqa: E402
    AsyncRedisBreakerStore,
    RedisBreakerStore,
    StoreUnavailableError,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def own_redis() -> Iterator[EmbeddedRedis]:
    """A Redis only this test uses, so it may be killed, paused and restarted."""
    server = EmbeddedRedis(appendonly=False).start()
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            os.killpg(server.proc.pid, signal.SIGCONT)
        server.cleanup()


def tripping_breaker(name: str, store: Any, clock: FakeClock, **kw: Any) -> CircuitBreaker:
    options: dict[str, Any] = {
        "failure_rate_threshold": 0.5,
        "minimum_calls": 2,
        "window": 4,
        "open_duration": 30.0,
        "clock": clock,
        "store": store,
        "store_sync_interval": 0.0,
    }
    options.update(kw)
    return CircuitBreaker(name, **options)


def fail() -> None:
    raise OSError("dependency down")


async def afail() -> None:
    raise OSError("dependency down")


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(2):
        with pytest.raises(OSError):
            breaker.call(fail)
    assert breaker.state == "open"


# -- the store itself ---------------------------------------------------------------------------
def test_load_returns_none_before_any_save(redis_server: EmbeddedRedis, prefix: str) -> None:
    store = RedisBreakerStore.from_url(redis_server.url, prefix=prefix)
    assert store.load("risk") is None


def test_save_and_load_round_trip_every_field(redis_server: EmbeddedRedis, prefix: str) -> None:
    store = RedisBreakerStore.from_url(redis_server.url, prefix=prefix)
    state = SharedState("open", opened_at=1764345600.125, open_until=1764345630.125, version=3)
    store.save("risk", state)
    assert store.load("risk") == state
    store.save("risk", SharedState("closed", version=4))
    assert store.load("risk") == SharedState("closed", None, None, 4)


def test_save_never_overwrites_a_newer_version(redis_server: EmbeddedRedis, prefix: str) -> None:
    store = RedisBreakerStore.from_url(redis_server.url, prefix=prefix)
    store.save("risk", SharedState("open", 1.0, 31.0, version=5))
    store.save("risk", SharedState("closed", version=4))  # a slow process, one step behind
    assert store.load("risk") == SharedState("open", 1.0, 31.0, 5)
    store.save("risk", SharedState("half_open", version=5))  # same version: like LocalStore
    assert store.load("risk") == SharedState("half_open", None, None, 5)


def test_ttl_lets_keys_of_silent_breakers_expire(redis_server: EmbeddedRedis, prefix: str) -> None:
    store = RedisBreakerStore.from_url(redis_server.url, prefix=prefix, ttl=60)
    store.save("risk", SharedState("closed", version=1))
    ttl_ms = store.client.pttl(store.key("risk"))
    assert 0 < ttl_ms <= 60_000
    with pytest.raises(ValueError, match="ttl"):
        RedisBreakerStore.from_url(redis_server.url, ttl=0)


def test_concurrent_saves_keep_the_highest_version(redis_server: EmbeddedRedis, prefix: str) -> None:
    import threading

    store = RedisBreakerStore.from_url(redis_server.url, prefix=prefix)
    versions = list(range(1, 201))

    def writer(mine: list[int]) -> None:
        for v in mine:
            store.save("risk", SharedState("open" if v % 2 else "closed", version=v))

    threads = [threading.Thread(target=writer, args=(versions[i::4][::-1],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    loaded = store.load("risk")
    assert loaded is not None
    assert loaded.version == 200
    assert loaded.state == "closed"


async def test_async_store_shares_keys_with_the_sync_store(
    redis_server: EmbeddedRedis, prefix: str
) -> None:
    sync_store = RedisBreakerStore.from_url(redis_server.url, prefix=prefix)
    async_store = AsyncRedisBreakerStore.from_url(redis_server.url, prefix=prefix)
    try:
        assert await async_store.aload("risk") is None
        await async_store.asave("risk", SharedState("open", 10.0, 40.0, 2))
        assert sync_store.load("risk") == SharedState("open", 10.0, 40.0, 2)
        sync_store.save("risk", SharedState("closed", version=3))
        assert await async_store.aload("risk") == SharedState("closed", None, None, 3)
        await async_store.asave("risk", SharedState("open", 1.0, 2.0, 1))  # stale
        assert (await async_store.aload("risk")) == SharedState("closed", None, None, 3)
    finally:
        await async_store.client.aclose()


async def test_each_store_refuses_the_other_kind_of_call(redis_server: EmbeddedRedis) -> None:
    sync_store = RedisBreakerStore.from_url(redis_server.url)
    async_store = AsyncRedisBreakerStore.from_url(redis_server.url)
    try:
        with pytest.raises(NotImplementedError):
            await sync_store.aload("x")
        with pytest.raises(NotImplementedError):
            await sync_store.asave("x", SharedState("closed"))
        with pytest.raises(NotImplementedError):
            async_store.load("x")
        with pytest.raises(NotImplementedError):
            async_store.save("x", SharedState("closed"))
    finally:
        await async_store.client.aclose()


def test_a_client_with_long_timeouts_is_warned_about(
    redis_server: EmbeddedRedis, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="resilience.redis_store"):
        RedisBreakerStore(redis.Redis.from_url(redis_server.url))  # redis-py defaults: 5 s
    assert "stall" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="resilience.redis_store"):
        # short timeouts, but redis-py's default 10 retries with backoff: still a stall
        RedisBreakerStore(redis.Redis(
            host="127.0.0.1", port=redis_server.port, socket_timeout=0.1,
            socket_connect_timeout=0.1,
        ))
    assert "10 retries" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="resilience.redis_store"):
        RedisBreakerStore.from_url(redis_server.url)
    assert caplog.text == ""


# -- breakers sharing state -------------------------------------------------------------------
def test_breaker_opened_in_one_breaker_is_open_in_another(
    redis_server: EmbeddedRedis, prefix: str
) -> None:
    clock = FakeClock()
    a = tripping_breaker("risk", RedisBreakerStore.from_url(redis_server.url, prefix=prefix), clock)
    b = tripping_breaker("risk", RedisBreakerStore.from_url(redis_server.url, prefix=prefix), clock)
    trip(a)
    with pytest.raises(CircuitOpenError):
        b.call(lambda: "never called")
    assert b.state == "open"


CHILD = textwrap.dedent(
    """
    import sys
    from resilience._breaker import CircuitBreaker
    from resilience._redis_store import RedisBreakerStore

    url, prefix, action = sys.argv[1:4]
    breaker = CircuitBreaker("payments-risk", failure_rate_threshold=0.5, minimum_calls=2,
                             window=4, open_duration=60.0, store_sync_interval=0.0,
                             store=RedisBreakerStore.from_url(url, prefix=prefix))

    def fail():
        raise OSError("risk service down")

    if action == "trip":
        for _ in range(2):
            try:
                breaker.call(fail)
            except OSError:
                pass
    else:
        try:
            breaker.call(lambda: None)
        except Exception as exc:
            print(type(exc).__name__)
    print(breaker.state, flush=True)
    """
)


def run_child(url: str, prefix: str, action: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, prefix, action],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )
    return out.stdout.strip()


def test_breaker_opened_in_another_process_is_open_here(
    redis_server: EmbeddedRedis, prefix: str
) -> None:
    # Both sides use real wall clocks here: the open period (60 s) is shared as epoch time.
    here = CircuitBreaker(
        "payments-risk", minimum_calls=2, window=4, open_duration=60.0,
        store=RedisBreakerStore.from_url(redis_server.url, prefix=prefix),
        store_sync_interval=0.0,
    )
    assert here.call(lambda: "fine") == "fine"
    assert run_child(redis_server.url, prefix, "trip") == "open"  # another OS process
    with pytest.raises(CircuitOpenError):
        here.call(lambda: "not called: the circuit is open everywhere")
    assert here.state == "open"
    # and the other way round: closed by an operator here, closed in a new process
    here.close()
    assert run_child(redis_server.url, prefix, "probe") == "closed"


def test_dead_redis_calls_proceed_and_degraded_is_emitted_once(prefix: str) -> None:
    clock = FakeClock()
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    store = RedisBreakerStore.from_url(url, prefix=prefix)
    breaker = tripping_breaker("risk", store, clock)
    events: list[Event] = []
    breaker.add_hook(events.append)
    started = time.monotonic()
    results = [breaker.call(lambda: "charged") for _ in range(50)]
    assert results == ["charged"] * 50
    assert time.monotonic() - started < 3.0  # generous: the box is shared and loaded
    degraded = [e for e in events if isinstance(e, BreakerStoreDegraded)]
    assert len(degraded) == 1
    assert degraded[0].name == "risk"
    assert "Connection" in degraded[0].error
    trip(breaker)  # the local state machine still works
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)


def test_redis_killed_then_back_degrades_recovers_and_republishes(
    own_redis: EmbeddedRedis, prefix: str
) -> None:
    clock = FakeClock()
    store = RedisBreakerStore.from_url(own_redis.url, prefix=prefix, retry_interval=1.0)
    store._health._clock = clock  # the fail-fast window on the test's clock too
    breaker = tripping_breaker("risk", store, clock)
    events: list[Event] = []
    breaker.add_hook(events.append)
    assert breaker.call(lambda: 1) == 1

    own_redis.stop(signal.SIGKILL)
    assert breaker.call(lambda: 2) == 2
    trip(breaker)  # opened while Redis is down: the save fails and is kept
    assert [type(e) for e in events if isinstance(e, BreakerStoreDegraded)] == [
        BreakerStoreDegraded
    ]
    assert not store.available
    with pytest.raises(StoreUnavailableError):
        store.load("risk")  # inside the fail-fast window: no network I/O at all

    own_redis.start()  # same port, empty data
    clock.advance(1.5)  # past retry_interval (the breaker stays open: 30 s)
    with pytest.raises(CircuitOpenError):
        breaker.call(lambda: None)
    assert any(isinstance(e, BreakerStoreRecovered) for e in events)
    other = RedisBreakerStore.from_url(own_redis.url, prefix=prefix)
    shared = other.load("risk")
    assert shared is not None
    assert shared.state == "open"  # what happened during the outage reached Redis


def test_paused_redis_costs_a_short_timeout_not_seconds(
    own_redis: EmbeddedRedis, prefix: str
) -> None:
    clock = FakeClock()
    store = RedisBreakerStore.from_url(own_redis.url, prefix=prefix, socket_timeout=0.1)
    breaker = tripping_breaker("risk", store, clock)
    events: list[Event] = []
    breaker.add_hook(events.append)
    assert breaker.call(lambda: "warm") == "warm"
    assert own_redis.proc is not None
    os.killpg(own_redis.proc.pid, signal.SIGSTOP)  # accepts nothing, answers nothing
    try:
        started = time.monotonic()
        for _ in range(20):
            assert breaker.call(lambda: "paid") == "paid"
        elapsed = time.monotonic() - started
    finally:
        os.killpg(own_redis.proc.pid, signal.SIGCONT)
    # one ~0.1 s timeout, then the store fails fast: 20 calls take ~0.1 s, where redis-py's
    # defaults (5 s timeout, 10 retries) would take minutes; generous bound for a loaded box
    assert elapsed < 2.5
    assert any(isinstance(e, BreakerStoreDegraded) for e in events)


async def test_async_breakers_share_state_and_survive_an_outage(
    own_redis: EmbeddedRedis, prefix: str
) -> None:
    clock = FakeClock()
    store_a = AsyncRedisBreakerStore.from_url(own_redis.url, prefix=prefix)
    store_b = AsyncRedisBreakerStore.from_url(own_redis.url, prefix=prefix)
    try:
        a = tripping_breaker("risk", store_a, clock)
        b = tripping_breaker("risk", store_b, clock)
        events: list[Event] = []
        b.add_hook(events.append)

        async def ok() -> str:
            return "ok"

        assert await b.call_async(ok) == "ok"
        for _ in range(2):
            with pytest.raises(OSError):
                await a.call_async(afail)
        assert a.state == "open"
        with pytest.raises(CircuitOpenError):
            await b.call_async(ok)

        own_redis.stop(signal.SIGKILL)
        clock.advance(31)  # open period over: b runs its trial locally
        assert await b.call_async(ok) == "ok"
        assert b.state == "closed"
        assert any(isinstance(e, BreakerStoreDegraded) for e in events)
    finally:
        await store_a.client.aclose()
        await store_b.client.aclose()
