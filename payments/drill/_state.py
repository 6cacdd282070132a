"""The payment stack's final state for the checkers, and how far it is from settled.

``snapshot`` streams every table (docs/contracts.md §5) into the engine's sink in chunks,
from one repeatable-read transaction, so a soak's millions of rows are never all in
memory. ``settle_status`` asks the database, in a few aggregate queries, what still keeps
the stack from having converged (outbox unpublished, events not applied, projections
drifting), so that a drill stops settling the moment it has.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis

from faultline.stack import StackInfo
from faultline.system import StateSink
from payments._streams import DEAD_LETTERS, STREAM

__all__ = ["settle_status", "snapshot"]

CHUNK = 5000

#: table -> the query that reads it (ordered, so two snapshots of one state are equal)
QUERIES: dict[str, str] = {
    "accounts": "SELECT id, merchant_id, trim(currency) AS currency, balance, non_negative,"
                " kind FROM accounts ORDER BY id",
    "transfers": "SELECT id, merchant_id, idempotency_key, from_account, to_account, amount,"
                 " trim(currency) AS currency, status, created_at FROM transfers"
                 " ORDER BY created_at, id",
    "entries": "SELECT id, transfer_id, account_id, amount, trim(currency) AS currency"
               " FROM entries ORDER BY id",
    "idempotency": "SELECT merchant_id, key, request_hash, status_code, response_body, state"
                   " FROM idempotency ORDER BY merchant_id, key",
    "outbox": "SELECT id, event_id, transfer_id, published_at, stream_id FROM outbox ORDER BY id",
    "processed_events": "SELECT event_id, consumer FROM processed_events ORDER BY event_id",
    "projections": "SELECT account_id, balance FROM projections ORDER BY account_id",
    "audit": "SELECT seq, entity, entity_id, action, payload, prev_hash, hash FROM audit_log"
             " ORDER BY seq",
}


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


def _row(table: str, record: Any) -> dict[str, Any]:
    row = {k: _plain(v) for k, v in record.items()}
    if table == "idempotency" and row.get("response_body") is not None:
        with contextlib.suppress(orjson.JSONDecodeError):  # a non-JSON answer stays text
            row["response_body"] = orjson.loads(row["response_body"])
    return row


class _Reader:
    """Drives one asyncio loop from synchronous generators, chunk by chunk."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        self.loop.close()


def _rows(reader: _Reader, conn: Any, table: str) -> Iterator[dict[str, Any]]:
    cursor = reader.run(conn.cursor(QUERIES[table]))
    while True:
        chunk = reader.run(cursor.fetch(CHUNK))
        for record in chunk:
            yield _row(table, record)
        if len(chunk) < CHUNK:
            return


async def _stream(client: Any, name: str) -> list[tuple[str, dict[str, str]]]:
    out: list[tuple[str, dict[str, str]]] = []
    start = "-"
    while True:
        chunk = await client.xrange(name, start, "+", count=1000)
        for sid, fields in chunk:
            out.append((sid.decode(), {k.decode(): v.decode(errors="replace")
                                       for k, v in fields.items()}))
        if len(chunk) < 1000:
            return out
        start = "(" + out[-1][0]


def snapshot(stack: StackInfo, sink: StateSink) -> None:
    """Write the final state: ledger, idempotency, outbox, stream, dead letters,
    projections, audit log, and the money that entered from outside."""
    reader = _Reader()
    try:
        conn = reader.run(asyncpg.connect(stack.endpoints["database_url"]))
        try:
            tx = conn.transaction(isolation="repeatable_read", readonly=True)
            reader.run(tx.start())
            try:
                for table in QUERIES:
                    sink.table(table, _rows(reader, conn, table))
                inflow = {r["currency"]: int(r["inflow"])
                          for r in reader.run(conn.fetch(_INFLOW))}
            finally:
                reader.run(tx.rollback())
        finally:
            reader.run(conn.close())
        client = aioredis.from_url(stack.endpoints["redis_url"], socket_timeout=10)
        try:
            stream = reader.run(_stream(client, STREAM))
            dead = reader.run(_stream(client, DEAD_LETTERS))
        finally:
            reader.run(client.aclose())
        sink.table("stream", ({"stream_id": sid, "event_id": f.get("event_id"),
                               "transfer_id": f.get("transfer_id")} for sid, f in stream))
        sink.table("dead_letters", ({"stream_id": sid, "event_id": f.get("event_id") or None,
                                     "reason": f.get("reason"),
                                     "original_id": f.get("original_id")} for sid, f in dead))
        sink.meta("external_inflow", inflow)
    finally:
        reader.close()


#: money that entered from outside, per currency, from the transfers themselves (out of an
#: issuance account, less what went back): recorded apart from the balances, so the
#: conservation checker compares two independent accounts of it
_INFLOW = """
SELECT trim(t.currency) AS currency,
       sum(CASE WHEN src.kind = 'issuance' THEN t.amount ELSE 0 END)
     - sum(CASE WHEN dst.kind = 'issuance' THEN t.amount ELSE 0 END) AS inflow
  FROM transfers t
  JOIN accounts src ON src.id = t.from_account
  JOIN accounts dst ON dst.id = t.to_account
 WHERE t.status NOT IN ('declined', 'rejected', 'failed', 'cancelled')
 GROUP BY 1
"""

_SETTLE = """
SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL) AS unpublished,
       (SELECT count(*) FROM outbox o WHERE NOT EXISTS
            (SELECT 1 FROM processed_events p WHERE p.event_id = o.event_id)) AS unapplied,
       (SELECT coalesce(sum(abs(coalesce(p.balance, 0) - a.balance)), 0)
          FROM accounts a LEFT JOIN projections p ON p.account_id = a.id) AS drift
"""


async def _settle(stack: StackInfo) -> list[str]:
    conn = await asyncpg.connect(stack.endpoints["database_url"], timeout=5)
    try:
        row = await conn.fetchrow(_SETTLE, timeout=10)
    finally:
        await conn.close()
    assert row is not None  # an aggregate query always answers one row
    problems = []
    if row["unpublished"]:
        problems.append(f"{row['unpublished']} outbox row(s) unpublished")
    unapplied = int(row["unapplied"])
    if unapplied:
        # an event parked in the dead letters will not be applied: that is settled too
        client = aioredis.from_url(stack.endpoints["redis_url"], socket_timeout=5)
        try:
            dead = await client.xlen(DEAD_LETTERS)
        finally:
            await client.aclose()
        unapplied = max(0, unapplied - int(dead))
    if unapplied:
        problems.append(f"{unapplied} event(s) not applied")
    if row["drift"]:
        problems.append(f"projections differ from the ledger by {row['drift']} in total")
    return problems


def settle_status(stack: StackInfo) -> list[str]:
    """Why the stack has not settled yet ([] = outbox published, every event applied or
    dead-lettered, projections equal to the balances)."""
    try:
        return asyncio.run(_settle(stack))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return [f"cannot read the state yet: {type(exc).__name__}: {exc}"]
