"""The api against real PostgreSQL, Redis and service processes: idempotency, authz,
admin TOTP, validation, conservation under concurrency, and end-to-end projection."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pyotp
import pytest
from payments_stack import Stack, ledger_problems, new_stack, random_key, run_async

from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis

pytestmark = pytest.mark.stack

RISK_LATENCY_MS = 150  # makes "still in flight" observable for the 409 test
DECLINE_OVER = 5_000_000


@pytest.fixture(scope="module")
def stack(postgres_server: EmbeddedPostgres, module_redis: EmbeddedRedis) -> Iterator[Stack]:
    s = new_stack(postgres_server, module_redis.url, "api")
    try:
        s.run_seed("--merchants", "2", "--accounts", "6", "--balance", "100000")
        risk = s.start("risk", PAYMENTS_RISK_LATENCY_MS=str(RISK_LATENCY_MS),
                       PAYMENTS_RISK_DECLINE_OVER=str(DECLINE_OVER))
        s.start("api", PAYMENTS_RISK_URL=risk.url)
        s.start("relay")
        s.start("worker", "worker-1", PAYMENTS_WORKER_NAME="worker-1")
        s.start("worker", "worker-2", PAYMENTS_WORKER_NAME="worker-2")
        yield s
    finally:
        s.stop_all()


def merchant(stack: Stack, i: int = 0) -> dict[str, Any]:
    return dict(stack.seed["merchants"][i])


def transfer_body(src: str, dst: str, amount: int = 100) -> dict[str, Any]:
    return {"from_account": src, "to_account": dst, "amount": amount, "currency": "EUR"}


def post_transfer(client: httpx.Client, body: dict[str, Any], key: str | None) -> httpx.Response:
    headers = {"idempotency-key": key} if key else {}
    return client.post("/v1/transfers", json=body, headers=headers)


def test_health_ready_openapi_metrics(stack: Stack) -> None:
    with stack.client() as c:
        assert c.get("/healthz").status_code == 200
        ready = c.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
        doc = c.get("/openapi.json").json()
        assert doc["openapi"].startswith("3.")
        assert "/v1/transfers" in doc["paths"]
        assert "payments_api_request_seconds" in c.get("/metrics").text
    for name in ("relay", "worker-1"):
        with stack.client(name) as c:
            assert c.get("/healthz").status_code == 200
            assert "payments_" in c.get("/metrics").text


def test_replay_returns_stored_response_and_different_body_is_422(stack: Stack) -> None:
    m = merchant(stack)
    src, dst = m["accounts"][0], m["accounts"][1]
    key = random_key()
    with stack.client(key=m["api_key"]) as c:
        first = post_transfer(c, transfer_body(src, dst, 250), key)
        assert first.status_code == 201, first.text
        again = post_transfer(c, transfer_body(src, dst, 250), key)
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers.get("idempotent-replayed") == "true"
        other = post_transfer(c, transfer_body(src, dst, 251), key)
        assert other.status_code == 422
        assert other.json()["error"]["code"] == "idempotency_key_reused"
        got = c.get(f"/v1/transfers/{first.json()['id']}")
        assert got.status_code == 200
        assert got.json()["amount"] == 250
    snap = stack.snapshot()
    assert sum(1 for t in snap["transfers"] if t["idempotency_key"] == key) == 1


def test_concurrent_duplicate_gets_409_and_moves_money_once(stack: Stack) -> None:
    m = merchant(stack)
    src, dst = m["accounts"][2], m["accounts"][3]
    key = random_key()
    body = transfer_body(src, dst, 70)

    async def go() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.services["api"].url, timeout=10,
                                     headers={"authorization": f"Bearer {m['api_key']}"}) as c:
            return await asyncio.gather(*[c.post("/v1/transfers", json=body,
                                                 headers={"idempotency-key": key})
                                          for _ in range(8)])

    responses = run_async(go())
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) >= 1, codes
    assert set(codes) <= {201, 409}, codes
    assert 409 in codes, codes  # the risk call keeps the first one in flight for 150 ms
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.json()["error"]["code"] == "request_in_flight"
    ids = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(ids) == 1
    snap = stack.snapshot()
    assert sum(1 for t in snap["transfers"] if t["idempotency_key"] == key) == 1
    with stack.client(key=m["api_key"]) as c:  # after completion: a replay, not a 409
        assert post_transfer(c, body, key).json()["id"] in ids


def test_authz_denies_cross_merchant(stack: Stack) -> None:
    a, b = merchant(stack, 0), merchant(stack, 1)
    with stack.client(key=a["api_key"]) as c:
        r = post_transfer(c, transfer_body(b["accounts"][0], a["accounts"][0]), random_key())
        assert r.status_code == 404  # as if it did not exist: no existence oracle
        assert r.json()["error"] == {"code": "account_not_found", "field": "from_account",
                                     "message": "from_account does not exist"}
        assert c.get(f"/v1/accounts/{b['accounts'][0]}").status_code == 404
        assert c.get(f"/v1/accounts/{b['accounts'][0]}/statement").status_code == 404
    with stack.client(key="sk_not-a-real-key") as c:
        assert c.get(f"/v1/accounts/{a['accounts'][0]}").status_code == 401
    with stack.client() as c:
        r = post_transfer(c, transfer_body(a["accounts"][0], a["accounts"][1]), random_key())
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"


def test_admin_requires_key_and_totp(stack: Stack) -> None:
    admin_key, secret = stack.seed["admin_api_key"], stack.seed["admin_totp_secret"]
    with stack.client(key=admin_key) as c:
        r = c.get("/v1/admin/audit/verify")
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "totp_required"
        r = c.get("/v1/admin/audit/verify", headers={"x-totp": "000000"})
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "totp_invalid"
        r = c.get("/v1/admin/audit/verify", headers={"x-totp": pyotp.TOTP(secret).now()})
        assert r.status_code == 200, r.text
        assert r.json()["intact"] is True
    with stack.client(key=merchant(stack)["api_key"]) as c:  # a merchant key is not admin
        r = c.get("/v1/admin/audit/verify", headers={"x-totp": pyotp.TOTP(secret).now()})
        assert r.status_code == 401


@pytest.mark.parametrize(("body", "headers", "status", "code", "field"), [
    ("{not json", {"idempotency-key": "k"}, 400, "invalid_json", None),
    ("[1, 2]", {"idempotency-key": "k"}, 400, "invalid_json", None),
    (None, {}, 400, "idempotency_key_required", "Idempotency-Key"),
    ({"amount": -5}, {"idempotency-key": "k"}, 422, "invalid_field", "amount"),
    ({"amount": 1.5}, {"idempotency-key": "k"}, 422, "invalid_field", "amount"),
    ({"amount": "100"}, {"idempotency-key": "k"}, 422, "invalid_field", "amount"),
    ({"currency": "euro"}, {"idempotency-key": "k"}, 422, "invalid_field", "currency"),
    ({"to_account": None}, {"idempotency-key": "k"}, 422, "missing_field", "to_account"),
    ({"memo": "hi"}, {"idempotency-key": "k"}, 422, "unknown_field", "memo"),
    ({"same": True}, {"idempotency-key": "k"}, 422, "same_account", "to_account"),
    ({"amount": 10**9}, {"idempotency-key": "k-big"}, 402, "risk_declined", None),
    ({"amount": 4_000_000}, {"idempotency-key": "k-poor"}, 422, "insufficient_funds", "amount"),
])
def test_bad_input_gets_clear_4xx(stack: Stack, body: Any, headers: dict[str, str],
                                  status: int, code: str, field: str | None) -> None:
    m = merchant(stack)
    base = transfer_body(m["accounts"][4], m["accounts"][5])
    with stack.client(key=m["api_key"]) as c:
        if isinstance(body, str):
            r = c.post("/v1/transfers", content=body,
                       headers={**headers, "content-type": "application/json"})
        else:
            payload = dict(base)
            for k, v in (body or {}).items():
                if k == "same":
                    payload["to_account"] = payload["from_account"]
                elif v is None:
                    payload.pop(k)
                else:
                    payload[k] = v
            if body and "memo" in body:
                payload["memo"] = "hi"
            r = c.post("/v1/transfers", json=payload, headers=headers)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == code
    assert err["field"] == field
    assert err["message"]
    assert "Traceback" not in r.text


def test_accounts_encrypt_holder_at_rest(stack: Stack) -> None:
    m = merchant(stack)
    with stack.client(key=m["api_key"]) as c:
        r = c.post("/v1/accounts", json={"currency": "EUR", "holder": {"name": "Grace Hopper"}})
        assert r.status_code == 201, r.text
        acc = r.json()
        got = c.get(f"/v1/accounts/{acc['id']}").json()
        assert got["holder"] == {"name": "Grace Hopper"}
        assert got["balance"] == 0
        bad = c.post("/v1/accounts", json={"currency": "EUR", "non_negative": "yes"})
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "non_negative"

    async def raw() -> bytes:
        conn = await asyncpg.connect(stack.database_url)
        try:
            return bytes(await conn.fetchval("SELECT holder_enc FROM accounts WHERE id = $1",
                                             acc["id"]))
        finally:
            await conn.close()

    assert b"Grace" not in run_async(raw())


def test_unknown_route_is_json_404(stack: Stack) -> None:
    with stack.client() as c:
        r = c.get("/v1/nope")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"


def test_concurrent_transfers_conserve_money_and_converge(stack: Stack) -> None:
    """Many concurrent transfers, some overdrawing: no negative balance, money conserved,
    every transfer has one outbox event, the projection converges to the ledger."""
    m = merchant(stack, 1)
    accounts = m["accounts"]
    rng = random.Random(7)
    plans = []
    for _ in range(240):
        src, dst = rng.sample(accounts, 2)
        plans.append((src, dst, rng.choice([500, 5_000, 40_000, 90_000])))

    async def go() -> list[int]:
        sem = asyncio.Semaphore(24)
        async with httpx.AsyncClient(base_url=stack.services["api"].url, timeout=20,
                                     headers={"authorization": f"Bearer {m['api_key']}"}) as c:
            async def one(src: str, dst: str, amount: int) -> int:
                async with sem:
                    r = await c.post("/v1/transfers", json=transfer_body(src, dst, amount),
                                     headers={"idempotency-key": random_key()})
                    return r.status_code

            return await asyncio.gather(*[one(*p) for p in plans])

    codes = run_async(go())
    assert set(codes) <= {201, 422}, sorted(set(codes))
    assert codes.count(201) > 50
    assert codes.count(422) > 0
    snap = stack.wait_converged(timeout=30)
    assert ledger_problems(snap) == []
    transfer_ids = [t["id"] for t in snap["transfers"]]
    assert sorted(o["transfer_id"] for o in snap["outbox"]) == sorted(transfer_ids)
    from payments.audit import verify_chain

    assert verify_chain(snap["audit"]) == []
    posted = {t["id"] for t in snap["transfers"]}
    audited = {a["entity_id"] for a in snap["audit"] if a["entity"] == "transfer"}
    assert posted == audited
    with stack.client(key=m["api_key"]) as c:
        st = c.get(f"/v1/accounts/{accounts[0]}/statement").json()
        assert st["balance"] == st["projected_balance"]
        assert st["source"] == "primary"


def test_oversized_body_is_413(stack: Stack) -> None:
    m = merchant(stack)
    with stack.client(key=m["api_key"]) as c:
        r = c.post("/v1/transfers", content=b"{" + b" " * 70_000 + b"}",
                   headers={"idempotency-key": random_key(), "content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "body_too_large"


async def _plant_key(url: str, merchant_id: str, key: str, *, state: str, request_hash: str,
                     lease_ago_s: float, expires_in_s: float) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO idempotency (merchant_id, key, request_hash, state, claim_token,"
            " status_code, response_body, locked_until, expires_at) VALUES ($1, $2, $3, $4,"
            " 'dead-holder', 201, '{}', now() - make_interval(secs => $5),"
            " now() + make_interval(secs => $6))",
            merchant_id, key, request_hash, state, lease_ago_s, expires_in_s)
    finally:
        await conn.close()


def test_lapsed_in_flight_claim_is_taken_over(stack: Stack) -> None:
    """A holder that crashed mid-request leaves an in-flight claim: 409 until its lease
    lapses, then a retry with the same key takes over and runs the transfer once."""
    from payments._idempotency import request_hash

    m = merchant(stack)
    body = transfer_body(m["accounts"][0], m["accounts"][2], 5)
    live, lapsed = random_key(), random_key()
    run_async(_plant_key(stack.database_url, m["id"], live, state="in_flight",
                         request_hash=request_hash(body), lease_ago_s=-30, expires_in_s=3600))
    run_async(_plant_key(stack.database_url, m["id"], lapsed, state="in_flight",
                         request_hash=request_hash(body), lease_ago_s=1, expires_in_s=3600))
    with stack.client(key=m["api_key"]) as c:
        assert post_transfer(c, body, live).status_code == 409
        taken = post_transfer(c, body, lapsed)
        assert taken.status_code == 201, taken.text
        assert post_transfer(c, body, lapsed).json() == taken.json()


def test_expired_key_can_be_reused(stack: Stack) -> None:
    m = merchant(stack)
    key = random_key()
    run_async(_plant_key(stack.database_url, m["id"], key, state="done",
                         request_hash="an-old-body", lease_ago_s=10, expires_in_s=-1))
    with stack.client(key=m["api_key"]) as c:
        r = post_transfer(c, transfer_body(m["accounts"][0], m["accounts"][2], 6), key)
    assert r.status_code == 201, r.text
