"""The final-state snapshot the checkers consume (contracts §5).

Read-only: it never changes the stack, so taking it twice gives the same answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from payments._streams import DEAD_LETTERS, STREAM

__all__ = ["take_snapshot"]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def _rows(records: list[Any]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r.items()} for r in records]


def _body(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


async def _stream(client: Any, name: str) -> list[tuple[str, dict[str, str]]]:
    out: list[tuple[str, dict[str, str]]] = []
    start = "-"
    while True:
        chunk = await client.xrange(name, start, "+", count=1000)
        for sid, fields in chunk:
            sid_text = sid.decode()
            out.append((sid_text, {k.decode(): v.decode(errors="replace")
                                   for k, v in fields.items()}))
        if len(chunk) < 1000:
            return out
        start = "(" + out[-1][0]


async def take_snapshot(database_url: str, redis_url: str) -> dict[str, Any]:
    """Ledger, idempotency, outbox, stream, dead letters, projections and audit log."""
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            accounts = _rows(await conn.fetch(
                "SELECT id, merchant_id, trim(currency) AS currency, balance, non_negative, kind"
                " FROM accounts ORDER BY id"))
            transfers = _rows(await conn.fetch(
                "SELECT id, merchant_id, idempotency_key, from_account, to_account, amount,"
                " trim(currency) AS currency, status, created_at FROM transfers ORDER BY created_at, id"))
            entries = _rows(await conn.fetch(
                "SELECT id, transfer_id, account_id, amount, trim(currency) AS currency"
                " FROM entries ORDER BY id"))
            idem = _rows(await conn.fetch(
                "SELECT merchant_id, key, request_hash, status_code, response_body, state"
                " FROM idempotency ORDER BY merchant_id, key"))
            outbox = _rows(await conn.fetch(
                "SELECT id, event_id, transfer_id, published_at, stream_id FROM outbox ORDER BY id"))
            processed = _rows(await conn.fetch(
                "SELECT event_id, consumer FROM processed_events ORDER BY event_id"))
            projections = _rows(await conn.fetch(
                "SELECT account_id, balance FROM projections ORDER BY account_id"))
            audit_rows = _rows(await conn.fetch(
                "SELECT seq, entity, entity_id, action, payload, prev_hash, hash"
                " FROM audit_log ORDER BY seq"))
    finally:
        await conn.close()
    for row in idem:
        row["response_body"] = _body(row["response_body"])
    client = aioredis.from_url(redis_url, socket_timeout=10)
    try:
        stream = [{"stream_id": sid, "event_id": f.get("event_id"),
                   "transfer_id": f.get("transfer_id")} for sid, f in await _stream(client, STREAM)]
        dead = [{"stream_id": sid, "event_id": f.get("event_id") or None,
                 "reason": f.get("reason"), "original_id": f.get("original_id")}
                for sid, f in await _stream(client, DEAD_LETTERS)]
    finally:
        await client.aclose()
    inflow: dict[str, int] = {}
    for acc in accounts:
        if acc["kind"] == "issuance":
            inflow[acc["currency"]] = inflow.get(acc["currency"], 0) - int(acc["balance"])
    return {"accounts": accounts, "transfers": transfers, "entries": entries,
            "idempotency": idem, "outbox": outbox, "stream": stream, "dead_letters": dead,
            "processed_events": processed, "projections": projections, "audit": audit_rows,
            "external_inflow": inflow}
