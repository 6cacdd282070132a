"""Faults only the payment stack has, for scenarios (``action: replica_replay_pause``).

Replication lag is the classic way a read replica lies: it answers, quickly, from the
past. Cutting the api's hop to the replica only makes it unreachable; pausing the
replica's WAL replay makes it *stale* while it stays up, so the api's lag probe must see
it and route statements back to the primary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import asyncpg

from faultline.stack import StackError, StackInfo
from faultline.system import Action

__all__ = ["ACTIONS"]


async def _admin(stack: StackInfo, sql: str) -> Any:
    url = stack.endpoints.get("replica_admin_url")
    if not url:
        raise StackError("this stack has no replica (or does not expose its admin URL)")
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return await conn.fetchrow(sql, timeout=10)
    finally:
        await conn.close()


def _pause(stack: StackInfo) -> Mapping[str, int]:
    asyncio.run(_admin(stack, "SELECT pg_wal_replay_pause()"))
    return {"replay_paused": 1}


def _resume(stack: StackInfo) -> Mapping[str, int]:
    # what the pause held back: WAL received but not replayed, and how stale reads were
    row = asyncio.run(_admin(stack, """
        SELECT coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(),
                                        pg_last_wal_replay_lsn()), 0)::bigint AS held,
               coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
                   AS lag_s,
               pg_is_wal_replay_paused() AS paused"""))
    asyncio.run(_admin(stack, "SELECT pg_wal_replay_resume()"))
    return {"wal_bytes_held": int(row["held"]),
            "lag_ms": int(float(row["lag_s"]) * 1000) if row["held"] else 0}


ACTIONS: dict[str, Action] = {
    "replica_replay_pause": Action(
        name="replica_replay_pause",
        description="pause the read replica's WAL replay (it stays up, its data goes stale)",
        start=_pause, stop=_resume, service="replica"),
}
