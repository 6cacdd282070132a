"""Events survive process and Redis failures: a SIGKILLed worker's entries are reclaimed
by another worker; a Redis restart (with or without its data) loses no event."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from payments_stack import Stack, ledger_problems, new_stack, random_key, run_async

from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis

pytestmark = pytest.mark.stack

STREAM, GROUP = "payments.events", "ledger-projector"


@pytest.fixture(scope="module")
def stack(postgres_server: EmbeddedPostgres, module_redis: EmbeddedRedis) -> Iterator[Stack]:
    s = new_stack(postgres_server, module_redis.url, "events")
    try:
        s.run_seed("--merchants", "1", "--accounts", "8", "--balance", "10000000")
        s.start("api")  # no PAYMENTS_RISK_URL: risk scoring off, this module is about events
        s.start("relay")
        s.start("worker", "worker-1", PAYMENTS_WORKER_NAME="worker-1")
        yield s
    finally:
        s.stop_all()


def make_transfers(stack: Stack, n: int, concurrency: int = 16) -> list[int]:
    m = stack.seed["merchants"][0]
    accounts = m["accounts"]

    async def go() -> list[int]:
        sem = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=stack.services["api"].url, timeout=20,
                                     headers={"authorization": f"Bearer {m['api_key']}"}) as c:
            async def one(i: int) -> int:
                async with sem:
                    body = {"from_account": accounts[i % len(accounts)],
                            "to_account": accounts[(i + 1) % len(accounts)],
                            "amount": 1 + i % 97, "currency": "EUR"}
                    r = await c.post("/v1/transfers", json=body,
                                     headers={"idempotency-key": random_key()})
                    return r.status_code

            return await asyncio.gather(*[one(i) for i in range(n)])

    return list(run_async(go()))


def pending_of(client: redis.Redis, consumer: str) -> int:
    for c in client.xinfo_consumers(STREAM, GROUP):
        if c["name"] in (consumer, consumer.encode()):
            return int(c["pending"])
    return 0


def wait_for(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkilled_worker_loses_no_event(stack: Stack, module_redis: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(module_redis.url)
    worker1 = stack.services["worker-1"]
    stack.wait_converged(timeout=20)
    # Freeze worker-1, queue a backlog, let it grab a batch, then SIGKILL it mid-batch.
    worker1.signal(signal.SIGSTOP)
    codes = make_transfers(stack, 300)
    assert codes.count(201) == 300, sorted(set(codes))
    wait_for(lambda: not any(o["published_at"] is None for o in stack.snapshot()["outbox"]),
             15, "relay to publish the backlog")
    worker1.signal(signal.SIGCONT)
    wait_for(lambda: pending_of(client, "worker-1") > 0, 10, "worker-1 to read a batch")
    worker1.signal(signal.SIGKILL)
    worker1.proc.wait(timeout=5)
    orphaned = pending_of(client, "worker-1")
    assert orphaned > 0  # entries delivered to the dead worker, never acked
    worker2 = stack.start("worker", "worker-2", PAYMENTS_WORKER_NAME="worker-2")
    snap = stack.wait_converged(timeout=30)
    assert ledger_problems(snap) == []
    assert pending_of(client, "worker-1") == 0
    assert client.xpending(STREAM, GROUP)["pending"] == 0
    with httpx.Client(base_url=worker2.url) as c:
        metrics = c.get("/metrics").text
    assert 'payments_worker_events_total{outcome="reclaimed"}' in metrics
    events = [o["event_id"] for o in snap["outbox"]]
    processed = [p["event_id"] for p in snap["processed_events"]]
    assert sorted(events) == sorted(processed)  # each applied exactly once
    stack.start("worker", "worker-1", PAYMENTS_WORKER_NAME="worker-1")  # back to two


def _restart_redis(server: EmbeddedRedis, *, lose_data: bool) -> None:
    server.stop()
    if lose_data:
        assert server.base_dir is not None
        for path in server.base_dir.iterdir():
            if path.name != "redis.log":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    server.start()


@pytest.mark.parametrize("lose_data", [False, True], ids=["aof-kept", "data-lost"])
def test_redis_restart_loses_no_event(stack: Stack, module_redis: EmbeddedRedis,
                                      lose_data: bool) -> None:
    stack.wait_converged(timeout=20)
    assert make_transfers(stack, 50).count(201) == 50
    module_redis.stop()
    # Redis is down: transfers still commit (the outbox holds their events).
    assert make_transfers(stack, 50).count(201) == 50
    with stack.client() as c:
        assert c.get("/readyz").status_code == 503
    _restart_redis(module_redis, lose_data=lose_data)
    assert make_transfers(stack, 50).count(201) == 50
    snap = stack.wait_converged(timeout=40)
    assert ledger_problems(snap) == []
    in_stream = {s["event_id"] for s in snap["stream"]}
    assert {o["event_id"] for o in snap["outbox"]} <= in_stream
    processed = [p["event_id"] for p in snap["processed_events"]]
    assert len(processed) == len(set(processed)) == len(snap["outbox"])
    if lose_data:
        with stack.client("relay") as c:
            line = next(x for x in c.get("/metrics").text.splitlines()
                        if x.startswith("payments_relay_republished_total"))
        assert float(line.split()[-1]) > 0  # the relay noticed the loss and republished


def test_poison_entry_goes_to_dead_letters(stack: Stack, module_redis: EmbeddedRedis) -> None:
    client = redis.Redis.from_url(module_redis.url)
    client.xadd(STREAM, {"event_id": "poison-1", "payload": "{definitely not json"})
    wait_for(lambda: any(f.get(b"original_id") for _, f in client.xrange("payments.events.dead")),
             10, "the poison entry to be dead-lettered")
    dead = stack.snapshot()["dead_letters"]
    assert [d["event_id"] for d in dead] == ["poison-1"]
    assert "undecodable" in dead[0]["reason"]
    assert client.xpending(STREAM, GROUP)["pending"] == 0  # acked, not stuck
