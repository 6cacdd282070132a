"""Admin TOTP against two real api processes sharing one database: a code is accepted
once, guessing locks the admin key out (429 + Retry-After), and both hold across
processes because the guard lives in PostgreSQL, not in either process."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pyotp
import pytest
from payments_stack import Stack, new_stack, run_async

from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis

pytestmark = pytest.mark.stack

MAX_FAILURES = 5
LOCKOUT_S = 3


@pytest.fixture(scope="module")
def stack(postgres_server: EmbeddedPostgres, module_redis: EmbeddedRedis) -> Iterator[Stack]:
    s = new_stack(postgres_server, module_redis.url, "admin",
                  PAYMENTS_ADMIN_TOTP_MAX_FAILURES=str(MAX_FAILURES),
                  PAYMENTS_ADMIN_LOCKOUT_S=str(LOCKOUT_S))
    try:
        s.run_seed("--merchants", "1", "--accounts", "2", "--balance", "100")
        s.start("api", "api-1")
        s.start("api", "api-2")
        yield s
    finally:
        s.stop_all()


def _get(stack: Stack, api: str, code: str) -> httpx.Response:
    with stack.client(api, key=stack.seed["admin_api_key"]) as c:
        return c.get("/v1/admin/audit/verify", headers={"x-totp": code})


def _code(stack: Stack, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(stack.seed["admin_totp_secret"]).at(time.time() + 30 * steps_ahead)


def test_a_code_is_accepted_once_across_processes(stack: Stack) -> None:
    code = _code(stack)
    first = _get(stack, "api-1", code)
    assert first.status_code == 200, first.text
    for api in ("api-1", "api-2"):
        again = _get(stack, api, code)
        assert again.status_code == 401, (api, again.text)
        assert again.json()["error"]["code"] == "totp_reused"
    older = _get(stack, "api-2", _code(stack, -1))  # an earlier step after a later one
    assert older.status_code == 401, older.text
    assert older.json()["error"]["code"] in ("totp_reused", "totp_invalid")


def test_guessing_locks_the_admin_key_out_across_processes(stack: Stack) -> None:
    """30 wrong codes in a burst over both processes: at most MAX_FAILURES are judged,
    the rest (and then a valid code) get 429 with Retry-After until the lockout ends."""
    secret = stack.seed["admin_totp_secret"]
    valid = {pyotp.TOTP(secret).at(time.time() + 30 * d) for d in (-1, 0, 1, 2)}
    wrong = [f"{n:06d}" for n in range(100000, 999999, 29_999) if f"{n:06d}" not in valid][:30]
    assert len(wrong) == 30

    async def burst() -> list[httpx.Response]:
        clients = [httpx.AsyncClient(base_url=stack.services[n].url, timeout=10,
                                     headers={"authorization":
                                              f"Bearer {stack.seed['admin_api_key']}"})
                   for n in ("api-1", "api-2")]
        try:
            return await asyncio.gather(*[
                clients[i % 2].get("/v1/admin/audit/verify", headers={"x-totp": code})
                for i, code in enumerate(wrong)])
        finally:
            for c in clients:
                await c.aclose()

    started = time.monotonic()
    answers = run_async(burst())
    codes = [r.status_code for r in answers]
    assert set(codes) <= {401, 429}, codes
    assert codes.count(401) <= MAX_FAILURES, codes
    locked = [r for r in answers if r.status_code == 429]
    assert locked, codes
    for r in locked:
        assert r.json()["error"]["code"] == "totp_locked"
        assert 1 <= int(r.headers["retry-after"]) <= LOCKOUT_S
    # A valid, never used code (the next step's, inside the drift window) is refused
    # while locked out, and accepted once the lockout is over.
    during = _get(stack, "api-2", _code(stack, 1))
    assert during.status_code == 429, during.text
    time.sleep(max(0.0, LOCKOUT_S - (time.monotonic() - started)) + 0.5)
    after = _get(stack, "api-1", _code(stack, 1))
    assert after.status_code == 200, after.text


def test_wrong_admin_key_never_locks_the_admin_out(stack: Stack) -> None:
    """Only someone holding the admin key can use up its attempts: guesses with a wrong
    key are plain 401s and leave the real admin's attempts untouched."""
    with stack.client("api-1", key="admin_not-the-key") as c:
        for _ in range(3 * MAX_FAILURES):
            r = c.get("/v1/admin/audit/verify", headers={"x-totp": "123456"})
            assert r.status_code == 401
            assert r.json()["error"]["code"] == "unauthorized"
    secret = stack.seed["admin_totp_secret"]
    valid = {pyotp.TOTP(secret).at(time.time() + 30 * d) for d in (-1, 0, 1, 2)}
    wrong = next(f"{n:06d}" for n in range(100001, 999999, 7) if f"{n:06d}" not in valid)
    for _ in range(MAX_FAILURES - 1):  # the previous test ended in a success: a clean slate
        r = _get(stack, "api-2", wrong)
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "totp_invalid"


def test_admin_path_does_not_need_redis(stack: Stack, module_redis: EmbeddedRedis) -> None:
    """The guard lives in PostgreSQL: with Redis gone (as in a drill) the admin path and
    its replay protection keep working. Last in the module: it stops the module's Redis."""
    stack.run_seed("--merchants", "0")  # rotates the admin key: a guard row of its own
    module_redis.stop()
    with stack.client("api-1") as c:
        assert c.get("/readyz").json()["checks"]["redis"] != "ok"
    code = _code(stack)
    first = _get(stack, "api-1", code)
    assert first.status_code == 200, first.text
    again = _get(stack, "api-2", code)
    assert again.status_code == 401, again.text
    assert again.json()["error"]["code"] == "totp_reused"
