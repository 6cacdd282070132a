"""The deliberate bugs really break their invariants (so drills have something to catch),
and the correct code keeps the same invariants under the same workload."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from payments_stack import (
    Stack,
    convergence_problems,
    ledger_problems,
    new_stack,
    random_key,
    run_async,
)

from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from payments import audit

pytestmark = pytest.mark.stack


@pytest.fixture
def make_stack(postgres_server: EmbeddedPostgres,
               module_redis: EmbeddedRedis) -> Iterator[Any]:
    stacks: list[Stack] = []

    def make(bugs: str, *, risk_latency_ms: int = 0, balance: int = 100_000,
             services: tuple[str, ...] = ("api",)) -> Stack:
        s = new_stack(postgres_server, module_redis.url, "bugs", PAYMENTS_BUGS=bugs)
        stacks.append(s)
        redis.Redis.from_url(module_redis.url).flushdb()
        s.run_seed("--merchants", "1", "--accounts", "4", "--balance", str(balance))
        extra = {}
        if risk_latency_ms:
            risk = s.start("risk", PAYMENTS_RISK_LATENCY_MS=str(risk_latency_ms))
            extra["PAYMENTS_RISK_URL"] = risk.url
        for name in services:
            if name.startswith("worker"):
                s.start("worker", name, PAYMENTS_WORKER_NAME=name)
            else:
                s.start(name, **(extra if name == "api" else {}))
        return s

    yield make
    for s in stacks:
        s.stop_all()


def burst(stack: Stack, bodies: list[dict[str, Any]], keys: list[str]) -> list[httpx.Response]:
    m = stack.seed["merchants"][0]

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.services["api"].url, timeout=20,
                                     headers={"authorization": f"Bearer {m['api_key']}"}) as c:
            return list(await asyncio.gather(*[
                c.post("/v1/transfers", json=b, headers={"idempotency-key": k})
                for b, k in zip(bodies, keys, strict=True)]))

    return list(run_async(go()))


def body(stack: Stack, amount: int, src: int = 0, dst: int = 1) -> dict[str, Any]:
    accounts = stack.seed["merchants"][0]["accounts"]
    return {"from_account": accounts[src], "to_account": accounts[dst], "amount": amount,
            "currency": "EUR"}


@pytest.mark.parametrize("bugs", ["", "idempotency_not_atomic"])
def test_idempotency_not_atomic_double_charges(make_stack: Any, bugs: str) -> None:
    s = make_stack(bugs, risk_latency_ms=100)
    key = random_key()
    burst(s, [body(s, 10)] * 6, [key] * 6)
    count = sum(1 for t in s.snapshot()["transfers"] if t["idempotency_key"] == key)
    if bugs:
        assert count > 1  # the same key moved money more than once
    else:
        assert count == 1


@pytest.mark.parametrize("bugs", ["", "non_negative_in_python"])
def test_non_negative_in_python_overdraws(make_stack: Any, bugs: str) -> None:
    s = make_stack(bugs, risk_latency_ms=100, balance=500)
    responses = burst(s, [body(s, 400)] * 6, [random_key() for _ in range(6)])
    snap = s.snapshot()
    if bugs:
        assert any("negative" in p for p in ledger_problems(snap))
    else:
        assert [r.status_code for r in responses].count(201) == 1
        assert ledger_problems(snap) == []


def test_ack_before_commit_acknowledges_what_never_happened(make_stack: Any) -> None:
    s = make_stack("ack_before_commit", balance=500)
    r = burst(s, [body(s, 900)], [random_key()])[0]
    assert r.status_code == 201  # acknowledged ...
    assert r.json()["id"] not in {t["id"] for t in s.snapshot()["transfers"]}  # ... never posted


@pytest.mark.parametrize("bugs", ["", "audit_chain_skip"])
def test_audit_chain_skip_forks_the_chain(make_stack: Any, bugs: str) -> None:
    s = make_stack(bugs)
    burst(s, [body(s, 1, i % 4, (i + 1) % 4) for i in range(40)],
          [random_key() for _ in range(40)])
    problems = audit.verify_chain(s.snapshot()["audit"])
    assert bool(problems) == bool(bugs)


@pytest.mark.parametrize("bugs", ["", "projection_double_apply"])
def test_duplicate_delivery_applied_once_unless_bug(make_stack: Any, module_redis: EmbeddedRedis,
                                                    bugs: str) -> None:
    s = make_stack(bugs, services=("api", "relay", "worker-1"))
    burst(s, [body(s, 5)], [random_key()])
    s.wait_converged(timeout=15)
    client = redis.Redis.from_url(module_redis.url)
    _sid, fields = client.xrange("payments.events")[-1]
    client.xadd("payments.events", fields)  # at-least-once: the same event delivered twice
    if bugs:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not convergence_problems(s.snapshot()):
            time.sleep(0.05)
        assert any("projection" in p for p in convergence_problems(s.snapshot()))
    else:
        with s.client("worker-1") as c:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and \
                    'outcome="duplicate"' not in c.get("/metrics").text:
                time.sleep(0.05)
        assert convergence_problems(s.snapshot()) == []


def test_risk_down_falls_back_to_review(make_stack: Any) -> None:
    s = make_stack("")
    s.services["api"].stop()
    s.start("api", PAYMENTS_RISK_URL=f"http://127.0.0.1:{free_port()}",
            PAYMENTS_RISK_FALLBACK="accept")
    r = burst(s, [body(s, 10)], [random_key()])[0]
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "review"  # accepted unscored, flagged for review


def test_shared_risk_breaker_state_lands_in_redis(make_stack: Any,
                                                  module_redis: EmbeddedRedis) -> None:
    """With PAYMENTS_SHARED_BREAKERS=1 the risk breaker's state is kept in Redis, so a
    second api process would see it open."""
    s = make_stack("")
    s.services["api"].stop()
    s.start("api", PAYMENTS_RISK_URL=f"http://127.0.0.1:{free_port()}",
            PAYMENTS_SHARED_BREAKERS="1")
    responses = burst(s, [body(s, 1)] * 12, [random_key() for _ in range(12)])
    assert {r.json()["status"] for r in responses} == {"review"}
    client = redis.Redis.from_url(module_redis.url)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not client.keys("payments:breaker:*"):
        time.sleep(0.1)
    assert client.keys("payments:breaker:*")


def test_relay_drops_on_error_loses_events(make_stack: Any, module_redis: EmbeddedRedis) -> None:
    s = make_stack("relay_drops_on_error", services=("api", "relay"))
    deadline = time.monotonic() + 10  # let the seed's events out first
    while time.monotonic() < deadline and any(
            o["published_at"] is None for o in s.snapshot_db_only()["outbox"]):
        time.sleep(0.1)
    module_redis.stop()
    try:
        ids = {r.json()["id"] for r in burst(s, [body(s, 1)] * 5,
                                             [random_key() for _ in range(5)])}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
                o["published_at"] is None for o in s.snapshot_db_only()["outbox"]):
            time.sleep(0.1)
    finally:
        module_redis.start()
    snap = s.snapshot()
    mine = [o for o in snap["outbox"] if o["transfer_id"] in ids]
    assert len(mine) == 5
    assert all(o["published_at"] is not None for o in mine)  # "published" ...
    in_stream = {e["event_id"] for e in snap["stream"]}
    assert not {o["event_id"] for o in mine} & in_stream  # ... but never reached the stream


async def _sql(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@pytest.mark.parametrize("bugs", ["", "outbox_outside_tx"])
def test_outbox_outside_tx_loses_the_event(make_stack: Any, bugs: str) -> None:
    """The outbox write fails (a trigger stands in for a crash or a lost connection)."""
    s = make_stack(bugs)
    run_async(_sql(s.database_url,
                   "CREATE FUNCTION no_outbox() RETURNS trigger LANGUAGE plpgsql AS"
                   " $$ BEGIN RAISE EXCEPTION 'outbox unavailable'; END $$",
                   "CREATE TRIGGER no_outbox BEFORE INSERT ON outbox"
                   " FOR EACH ROW EXECUTE FUNCTION no_outbox()"))
    r = burst(s, [body(s, 3)], [random_key()])[0]
    snap = s.snapshot()
    with_event = {o["transfer_id"] for o in snap["outbox"]}
    orphans = [t for t in snap["transfers"] if t["id"] not in with_event]
    if bugs:
        assert r.status_code == 201
        assert [t["id"] for t in orphans] == [r.json()["id"]]  # committed, no event
    else:
        assert r.status_code == 503  # all or nothing: no transfer without its event
        assert orphans == []


@pytest.mark.parametrize("bugs", ["", "worker_ack_before_apply"])
def test_worker_ack_before_apply_loses_the_event(make_stack: Any, module_redis: EmbeddedRedis,
                                                 bugs: str) -> None:
    """A worker whose database is unreachable fails every apply; the correct one leaves
    the entries pending for a healthy worker to reclaim, the buggy one already acked."""
    s = make_stack(bugs, services=("api", "relay"))
    s.start("worker", "worker-1", PAYMENTS_WORKER_NAME="worker-1",
            PAYMENTS_DATABASE_URL=f"postgresql://x:y@127.0.0.1:{free_port()}/none")
    client = redis.Redis.from_url(module_redis.url)
    def worker_joined() -> bool:
        try:
            return bool(client.xinfo_consumers("payments.events", "ledger-projector"))
        except redis.ResponseError:  # NOGROUP: the worker has not created it yet
            return False

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not worker_joined():
        time.sleep(0.1)
    time.sleep(1.0)  # worker-1 has read (and failed on) the seed's events
    s.services["worker-1"].stop()
    s.start("worker", "worker-2", PAYMENTS_WORKER_NAME="worker-2")
    if bugs:
        time.sleep(3)
        assert any("not processed" in p for p in convergence_problems(s.snapshot()))
    else:
        s.wait_converged(timeout=20)
