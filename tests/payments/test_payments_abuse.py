"""Abuse of the running api by one merchant must not hurt another: malformed input is
refused with a 4xx naming the field and never counts against the shared database
breaker; request bodies are bounded while they stream; the contract leaks nothing."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
from payments_stack import Stack, new_stack, random_key, run_async

from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack(postgres_server: EmbeddedPostgres, module_redis: EmbeddedRedis) -> Iterator[Stack]:
    s = new_stack(postgres_server, module_redis.url, "abuse")
    try:
        s.run_seed("--merchants", "2", "--accounts", "4", "--balance", "1000000")
        s.start("api")
        yield s
    finally:
        s.stop_all()


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus exposition ``text`` (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        m = re.fullmatch(r"([a-zA-Z_:]+)(?:\{(.*)\})? (\S+)", line)
        if m and m.group(1) == name and ",".join(sorted((m.group(2) or "").split(","))) == want:
            return float(m.group(3))
    return 0.0


def _breaker_opened(metrics: str) -> float:
    return _metric(metrics, "payments_breaker_transitions_total", breaker="postgres", to="open")


def malformed_requests(own: list[str]) -> list[tuple[str, str, dict[str, Any], Any]]:
    """One of every malformed kind the security pass found (method, path, headers, json)."""
    src, dst = own[0], own[1]
    good = {"from_account": src, "to_account": dst, "amount": 1, "currency": "EUR"}
    idem = {"idempotency-key": "k"}
    return [
        ("GET", "/v1/accounts/%00", {}, None),                      # NUL in a path id
        ("GET", f"/v1/accounts/{src}%00/statement", {}, None),
        ("GET", "/v1/transfers/tr_%00", {}, None),
        ("GET", "/v1/accounts/" + "a" * 5000, {}, None),            # absurdly long id
        ("GET", "/v1/accounts/%ff%fe", {}, None),                   # not UTF-8
        ("GET", f"/v1/accounts/{src}%0A", {}, None),                # trailing newline
        ("GET", f"/v1/accounts/{src}/statement?limit=%00", {}, None),
        ("GET", f"/v1/accounts/{src}/statement?limit=%D9%A5", {}, None),  # Arabic-Indic 5
        ("POST", "/v1/accounts", {}, {"currency": "EUR\n"}),        # passes ^[A-Z]{3}$
        ("POST", "/v1/accounts", {}, {"currency": "EUR", "holder": {"name": "a\u0000b"}}),
        ("POST", "/v1/accounts", {}, {"currency": "EUR", "holder": {"x" * 300: "y"}}),
        ("POST", "/v1/transfers", idem, {**good, "currency": "EUR\n"}),
        ("POST", "/v1/transfers", idem, {**good, "from_account": src + "\n"}),
        ("POST", "/v1/transfers", idem, {**good, "to_account": dst + "\u0000"}),
        ("POST", "/v1/transfers", {"idempotency-key": "k\u00e9y".encode("latin-1")}, good),
        ("POST", "/v1/transfers", {"idempotency-key": "x" * 300}, good),
    ]


def test_malformed_flood_leaves_other_merchants_untouched(stack: Stack) -> None:
    """Merchant A sends 1,000 malformed requests (every kind found) while merchant B
    transfers and reads: B keeps a 100% success rate, the postgres breaker stays closed,
    and every one of A's requests is a 4xx naming the offending field."""
    a, b = stack.seed["merchants"][0], stack.seed["merchants"][1]
    kinds = malformed_requests(a["accounts"])
    base = stack.services["api"].url
    with stack.client() as c:
        opened_before = _breaker_opened(c.get("/metrics").text)

    async def attacker(done: asyncio.Event) -> list[tuple[int, Any]]:
        out: list[tuple[int, Any]] = []
        sem = asyncio.Semaphore(16)
        async with httpx.AsyncClient(base_url=base, timeout=20,
                                     headers={"authorization": f"Bearer {a['api_key']}"}) as c:
            async def one(i: int) -> None:
                # In bursts of 40 of a kind, as the security pass sent them (40 NULs in
                # 0.03 s opened the breaker), cycling through every kind.
                kind = (i // 40) % len(kinds)
                method, path, headers, body = kinds[kind]
                async with sem:
                    r = await c.request(method, path, headers=headers, json=body)
                out.append((kind, r))

            await asyncio.gather(*[one(i) for i in range(1000)])
        done.set()
        return out

    async def victim(done: asyncio.Event) -> list[int]:
        codes: list[int] = []
        src, dst = b["accounts"][0], b["accounts"][1]
        async with httpx.AsyncClient(base_url=base, timeout=20,
                                     headers={"authorization": f"Bearer {b['api_key']}"}) as c:
            async def loop() -> None:
                while not done.is_set():
                    r = await c.post("/v1/transfers", headers={"idempotency-key": random_key()},
                                     json={"from_account": src, "to_account": dst, "amount": 1,
                                           "currency": "EUR"})
                    codes.append(r.status_code)
                    r = await c.get(f"/v1/accounts/{src}")
                    codes.append(r.status_code)

            await asyncio.gather(*[loop() for _ in range(4)])
        return codes

    async def go() -> tuple[list[tuple[int, Any]], list[int]]:
        done = asyncio.Event()
        got = await asyncio.gather(attacker(done), victim(done))
        return got[0], got[1]

    started = time.monotonic()
    attacks, codes = run_async(go())
    elapsed = time.monotonic() - started
    ok = sum(1 for s in codes if s in (200, 201))
    rate = ok / len(codes)
    print(f"\nB: {ok}/{len(codes)} ok ({rate:.1%}) during A's 1,000 malformed requests "
          f"in {elapsed:.1f}s; B's statuses: { {s: codes.count(s) for s in set(codes)} }")
    with stack.client() as c:
        opened = _breaker_opened(c.get("/metrics").text) - opened_before
    assert rate == 1.0, f"B's success rate under A's attack was {rate:.1%}"
    assert opened == 0, "the postgres breaker opened"
    for kind, r in attacks:
        assert 400 <= r.status_code < 500, (kinds[kind], r.status_code, r.text)
        err = r.json()["error"]
        assert err["code"], (kinds[kind], r.text)
        assert err["message"], (kinds[kind], r.text)
        if kinds[kind][0] == "POST" or "limit" in kinds[kind][1]:
            assert err["field"], (kinds[kind], r.text)


async def _client_error(conn: Any, sql: str, *args: Any) -> BaseException:
    try:
        await conn.fetchval(sql, *args)
    except asyncpg.PostgresError as exc:
        return exc
    raise AssertionError(f"{sql} did not fail")


def test_client_caused_database_errors_do_not_count_against_the_breaker(stack: Stack) -> None:
    """The second layer: should a client-caused error reach PostgreSQL anyway (SQLSTATE
    classes 22, 23, 54), the database answered correctly, so the breaker ignores it;
    a connection failure still counts."""
    from payments._policies import database_breaker

    async def go() -> tuple[str, str]:
        conn = await asyncpg.connect(stack.database_url)
        try:
            errors = [
                await _client_error(conn, "SELECT $1::text", "a\u0000b"),      # 22021
                await _client_error(conn, "INSERT INTO accounts (id, merchant_id, currency,"
                                    " kind, non_negative) VALUES ('acc_x', 'm_platform', $1,"
                                    " 'customer', true)", "EUR\n"),            # 22001
                await _client_error(conn, "SELECT 1/0"),                        # 22012
                await _client_error(conn, "INSERT INTO merchants (id, name) VALUES"
                                    " ('m_platform', 'again')"),                # 23505
            ]
        finally:
            await conn.close()
        cb = database_breaker(minimum_calls=5, window=10)
        for _ in range(20):
            for exc in errors:
                async def fail(e: BaseException = exc) -> None:
                    raise e

                with pytest.raises(asyncpg.PostgresError):
                    await cb.call_async(fail)
        after_client = str(cb.state)
        for _ in range(10):
            async def down() -> None:
                raise ConnectionRefusedError("postgres is down")

            with pytest.raises(Exception):  # noqa: B017 - the open breaker rejects too
                await cb.call_async(down)
        return after_client, str(cb.state)

    after_client, after_outage = run_async(go())
    assert "closed" in after_client.lower()
    assert "open" in after_outage.lower()
