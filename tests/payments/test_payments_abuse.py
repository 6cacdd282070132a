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


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _send_huge_body(port: int, key: str, total: int, *, chunked: bool) -> tuple[int, bytes]:
    """POST ``total`` bytes of body (chunked or with Content-Length) on a raw socket,
    reading the answer as soon as one comes; returns (bytes sent, what was read)."""
    import select
    import socket

    head = (f"POST /v1/transfers HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
            f"Idempotency-Key: {random_key()}\r\nContent-Type: application/json\r\n")
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {total}\r\n\r\n"
    piece = b" " * 65536
    frame = (b"%x\r\n" % len(piece) + piece + b"\r\n") if chunked else piece
    sent, answer = 0, b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode())
        sock.setblocking(False)
        pending = memoryview(frame)
        while sent < total:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                break
            if not writable:
                break
            try:
                n = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                break
            pending = pending[n:]
            if not pending:
                sent += len(piece)
                pending = memoryview(frame)
        sock.settimeout(30)
        try:
            if sent >= total and chunked:
                sock.sendall(b"0\r\n\r\n")
            while b"\r\n\r\n" not in answer:
                got = sock.recv(65536)
                if not got:
                    break
                answer += got
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
    return sent, answer


@pytest.mark.parametrize(("chunked", "auth", "status"), [
    (True, True, b"413"), (False, True, b"413"), (True, False, b"401")],
    ids=["chunked", "content-length", "chunked-unauthenticated"])
def test_huge_body_is_refused_while_streaming(stack: Stack, chunked: bool, auth: bool,
                                              status: bytes) -> None:
    """A 128 MB body (chunked or declared) is refused with 413 after at most a little more
    than the 64 KiB limit was read; the api's memory stays flat. Refused before the body
    is read at all (no valid key), the connection is closed, not drained."""
    import threading

    api = stack.services["api"]
    key = stack.seed["merchants"][0]["api_key"]
    with stack.client(key=key) as c:  # warm: the first transfer path allocates caches
        for _ in range(3):
            c.get(f"/v1/accounts/{stack.seed['merchants'][0]['accounts'][0]}")
    baseline = _rss_kib(api.proc.pid)
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_kib(api.proc.pid))
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        sent, answer = _send_huge_body(api.port, key if auth else "sk_wrong", 128 * 1024 * 1024,
                                       chunked=chunked)
    finally:
        time.sleep(0.2)
        done.set()
        sampler.join()
    grew_mib = (peak - baseline) / 1024
    print(f"\n{'chunked' if chunked else 'content-length'}: sent {sent / 2**20:.1f} MiB of "
          f"128 MiB; api RSS {baseline / 1024:.0f} -> peak {peak / 1024:.0f} MiB "
          f"(+{grew_mib:.1f}); answer {answer[:40]!r}")
    assert grew_mib < 20, f"the api grew by {grew_mib:.0f} MiB"
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert b"\r\nconnection: close\r\n" in answer.lower(), answer[:300]
    assert sent < 16 * 1024 * 1024, "the api kept reading a body it had refused"
    with stack.client() as c:
        assert c.get("/healthz").status_code == 200
