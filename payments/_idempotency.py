"""Idempotency keys, done the way careful payment APIs do them.

1. ``claim``: one atomic statement inserts the key as ``in_flight`` with a fresh claim
   token (or takes over a key whose record expired or whose in-flight lease lapsed).
2. Whoever does not get the claim reads the record: different request hash -> 422,
   still in flight -> 409, done -> replay the stored status and body.
3. The claimer completes the key inside the transfer's own transaction (see
   ``ledger.post_transfer``), or records a deterministic refusal with ``finish``, or, on
   any failure before commit, ``release``s it so a retry can run.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Claim", "Existing", "claim", "finish", "release", "request_hash", "store_done"]


def request_hash(body: dict[str, Any]) -> str:
    """sha256 of the canonical request body (sorted keys), so key order does not matter."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True, slots=True)
class Claim:
    """We own the key until we complete or release it."""

    token: str


@dataclass(frozen=True, slots=True)
class Existing:
    """Someone else's record for this key."""

    request_hash: str
    state: str
    status_code: int | None
    response_body: str | None


_CLAIM = """
INSERT INTO idempotency (merchant_id, key, request_hash, state, claim_token, created_at,
                         locked_until, expires_at)
VALUES ($1, $2, $3, 'in_flight', $4, now(), now() + make_interval(secs => $5),
        now() + make_interval(secs => $6))
ON CONFLICT (merchant_id, key) DO UPDATE SET
    request_hash = EXCLUDED.request_hash, state = 'in_flight',
    claim_token = EXCLUDED.claim_token, status_code = NULL, response_body = NULL,
    created_at = now(), locked_until = EXCLUDED.locked_until, expires_at = EXCLUDED.expires_at
WHERE idempotency.expires_at < now()
   OR (idempotency.state = 'in_flight' AND idempotency.locked_until < now())
RETURNING claim_token
"""

_READ = ("SELECT request_hash, state, status_code, response_body FROM idempotency"
         " WHERE merchant_id = $1 AND key = $2")


async def claim(conn: Any, merchant_id: str, key: str, req_hash: str, *, lease_s: float,
                ttl_s: float) -> Claim | Existing:
    """Atomically claim ``key`` or return the record that holds it."""
    for _ in range(3):  # the holder may release between our two statements
        token = uuid.uuid4().hex
        got = await conn.fetchval(_CLAIM, merchant_id, key, req_hash, token, lease_s, ttl_s)
        if got == token:
            return Claim(token)
        row = await conn.fetchrow(_READ, merchant_id, key)
        if row is not None:
            return Existing(row["request_hash"], row["state"], row["status_code"],
                            row["response_body"])
    raise RuntimeError("idempotency record kept changing under us")


async def lookup(conn: Any, merchant_id: str, key: str) -> Existing | None:
    """Plain read (the ``idempotency_not_atomic`` bug uses only this)."""
    row = await conn.fetchrow(_READ + " AND expires_at > now()", merchant_id, key)
    if row is None:
        return None
    return Existing(row["request_hash"], row["state"], row["status_code"], row["response_body"])


async def finish(conn: Any, merchant_id: str, key: str, token: str, status: int,
                 body: str) -> bool:
    """Record a final answer that moved no money (e.g. a 422 refusal) for replays."""
    done = await conn.fetchval(
        "UPDATE idempotency SET state = 'done', status_code = $4, response_body = $5"
        " WHERE merchant_id = $1 AND key = $2 AND claim_token = $3 AND state = 'in_flight'"
        " RETURNING 1", merchant_id, key, token, status, body)
    return bool(done == 1)


async def release(conn: Any, merchant_id: str, key: str, token: str) -> None:
    """Give the key back after a failure before commit (a committed key stays done)."""
    await conn.execute(
        "DELETE FROM idempotency WHERE merchant_id = $1 AND key = $2 AND claim_token = $3"
        " AND state = 'in_flight'", merchant_id, key, token)


async def store_done(conn: Any, merchant_id: str, key: str, req_hash: str, status: int,
                     body: str, ttl_s: float) -> None:
    """Upsert a done record without a claim (the ``idempotency_not_atomic`` bug)."""
    await conn.execute(
        "INSERT INTO idempotency (merchant_id, key, request_hash, state, status_code,"
        " response_body, locked_until, expires_at) VALUES ($1, $2, $3, 'done', $4, $5, now(),"
        " now() + make_interval(secs => $6)) ON CONFLICT (merchant_id, key) DO UPDATE SET"
        " state = 'done', status_code = $4, response_body = $5",
        merchant_id, key, req_hash, status, body, ttl_s)
