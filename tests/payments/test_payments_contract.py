"""The api's contract, as a client sees it: no existence oracle across merchants, a
revoked key stops at once, 415/405/400 in the one error shape, and an OpenAPI document
that states what the api does."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import orjson
import pytest
from payments_stack import Stack, new_stack, random_key, run_async

from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis
from payments._crypto import hash_api_key

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def stack(postgres_server: EmbeddedPostgres, module_redis: EmbeddedRedis) -> Iterator[Stack]:
    s = new_stack(postgres_server, module_redis.url, "contract")
    try:
        s.run_seed("--merchants", "3", "--accounts", "2", "--balance", "1000")
        s.start("api")
        yield s
    finally:
        s.stop_all()


def _sql(stack: Stack, sql: str, *args: Any) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(stack.database_url)
        try:
            await conn.execute(sql, *args)
        finally:
            await conn.close()

    run_async(go())


@pytest.mark.parametrize("field", ["from_account", "to_account"])
def test_another_merchants_account_is_the_same_404_as_an_unknown_one(stack: Stack,
                                                                     field: str) -> None:
    """A merchant moves money only between its own accounts; an account of another
    merchant is answered exactly like one that does not exist, in either field."""
    a, b = stack.seed["merchants"][0], stack.seed["merchants"][1]
    own = {"from_account": a["accounts"][0], "to_account": a["accounts"][1]}
    answers = []
    with stack.client(key=a["api_key"]) as c:
        for other in (b["accounts"][0], "acc_" + "0" * 32):
            body = {**own, field: other, "amount": 1, "currency": "EUR"}
            r = c.post("/v1/transfers", json=body, headers={"idempotency-key": random_key()})
            answers.append((r.status_code, r.json()))
    assert answers[0] == answers[1], answers
    assert answers[0][0] == 404
    assert answers[0][1]["error"] == {"code": "account_not_found", "field": field,
                                      "message": f"{field} does not exist"}


def test_revoked_key_stops_at_once(stack: Stack) -> None:
    """Revoking a key (clearing or rotating its hash) takes effect on the next request,
    although the key was cached by the api a moment before."""
    m = stack.seed["merchants"][2]
    acc = m["accounts"][0]
    with stack.client(key=m["api_key"]) as c:
        for _ in range(3):  # cached now
            assert c.get(f"/v1/accounts/{acc}").status_code == 200
        _sql(stack, "UPDATE merchants SET api_key_hash = NULL WHERE id = $1", m["id"])
        revoked_at = time.monotonic()
        while (r := c.get(f"/v1/accounts/{acc}")).status_code == 200:
            assert time.monotonic() - revoked_at < 1.0, "the revoked key still works"
            time.sleep(0.01)
        took = time.monotonic() - revoked_at
        assert r.status_code == 401
    print(f"\nrevoked key refused after {took * 1000:.0f} ms")
    assert took < 0.25
    new_key = "sk_rotated-" + random_key()
    _sql(stack, "UPDATE merchants SET api_key_hash = $2 WHERE id = $1", m["id"],
         hash_api_key(new_key))
    with stack.client(key=new_key) as c:
        assert c.get(f"/v1/accounts/{acc}").status_code == 200


@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded",
                                   "application/json; charset=latin-1", "application/jsonx"])
def test_a_body_that_is_not_json_is_415(stack: Stack, ctype: str | None) -> None:
    m = stack.seed["merchants"][0]
    body = orjson.dumps({"currency": "EUR"})
    headers = {"content-type": ctype} if ctype else {}
    with stack.client(key=m["api_key"]) as c:
        r = c.post("/v1/accounts", content=body, headers=headers)
        assert r.status_code == 415, r.text
        assert r.json()["error"]["code"] == "unsupported_media_type"
        assert r.json()["error"]["field"] == "Content-Type"
        ok = c.post("/v1/accounts", content=body,
                    headers={"content-type": "application/json; charset=UTF-8"})
        assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("PUT", "/v1/accounts", {"POST"}),
    ("DELETE", "/v1/transfers/tr_1", {"GET", "HEAD"}),
    ("POST", "/healthz", {"GET", "HEAD"}),
])
def test_405_carries_allow(stack: Stack, method: str, path: str, allow: set[str]) -> None:
    with stack.client() as c:
        r = c.request(method, path)
    assert r.status_code == 405
    assert {m.strip() for m in r.headers["allow"].split(",")} == allow
    assert r.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize("raw", [
    b"GARBAGE\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad\x00Header: 1\r\n\r\n",
    b"POST /v1/transfers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
])
def test_malformed_http_gets_the_json_error_shape(stack: Stack, raw: bytes) -> None:
    with socket.create_connection(("127.0.0.1", stack.services["api"].port), timeout=5) as s:
        s.sendall(raw)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), data
    assert b"content-type: application/json" in head.lower(), head
    err = orjson.loads(body)["error"]
    assert err["code"] == "bad_request"
    assert err["message"]


def _walk(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}/{i}")


def test_openapi_document_states_the_rules(stack: Stack) -> None:
    """Patterns anchored, strings bounded, request bodies closed, and the statuses the
    api answers listed (schemathesis checks the rest against the running api)."""
    with stack.client() as c:
        doc = c.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for where, node in _walk(doc):
        if "pattern" in node:
            assert node["pattern"].startswith("^"), where
            assert node["pattern"].endswith("$"), where
        is_input = where.startswith(("/paths", "/components/schemas/New",
                                     "/components/schemas/Holder")) and "/responses/" not in where
        if is_input and node.get("type") == "string":
            assert "maxLength" in node, where
    for name in ("NewAccount", "NewTransfer"):
        assert schemas[name]["additionalProperties"] is False, name
    ops = {(p, m): op for p, item in doc["paths"].items() for m, op in item.items()}
    for (path, method), op in ops.items():
        codes = set(op["responses"])
        if method == "post":
            assert {"400", "401", "413", "415", "422", "503"} <= codes, (path, codes)
        if path.startswith("/v1/") and method == "get":
            assert {"401", "503"} <= codes, (path, codes)
        if path.startswith("/v1/admin/"):
            assert "429" in codes, (path, codes)
