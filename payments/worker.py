"""The ledger projector: a consumer in group ``ledger-projector`` on ``payments.events``.

Exactly once in effect: the processed-event id and the projection update commit in one
transaction (a duplicate's insert conflicts, so it is skipped), and the entry is XACKed
only after that commit. Entries left pending by a dead consumer are taken over with
XAUTOCLAIM once idle past the claim timeout; poison entries (undecodable, or failing
``max_deliveries`` times) go to ``payments.events.dead``. When Redis restarts without the
group (NOGROUP), the group is recreated and the stream re-read from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any

import asyncpg
import orjson
import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError, ResponseError

from payments._config import Settings, load_settings
from payments._db import create_pool
from payments._policies import breaker
from payments._serve import install_stop_signals, run, setup_logging, start_ops_server
from payments._streams import DEAD_LETTERS, GROUP, STREAM
from resilience import CircuitOpenError

__all__ = ["PoisonError", "Worker", "decode_event", "main"]

log = logging.getLogger("payments.worker")

APPLIED = Counter("payments_worker_events_total", "Events handled", ["outcome"])
PENDING = Gauge("payments_worker_pending", "Entries delivered to the group but not acked")
LAG = Gauge("payments_worker_stream_lag", "Entries in the stream not yet delivered to the group")
DEAD = Counter("payments_worker_dead_letters_total", "Entries moved to the dead-letter stream")


class PoisonError(Exception):
    """An entry that can never be applied."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def decode_event(fields: dict[Any, Any]) -> dict[str, Any]:
    """Decode and validate a stream entry's event; raise ``PoisonError`` if it is garbage."""
    try:
        event = orjson.loads(fields[b"payload"] if b"payload" in fields else fields["payload"])
        legs = [(str(acc), int(amt)) for acc, amt in event["legs"]]
        if not event["event_id"] or sum(a for _, a in legs) != 0:
            raise ValueError("unbalanced or anonymous event")
    except (KeyError, TypeError, ValueError, orjson.JSONDecodeError) as exc:
        raise PoisonError(f"undecodable event: {type(exc).__name__}") from exc
    event["legs"] = sorted(legs)  # one lock order for projection rows
    return dict(event)


_APPLY = ("INSERT INTO projections (account_id, balance)"
          " SELECT * FROM unnest($1::text[], $2::bigint[])"
          " ON CONFLICT (account_id) DO UPDATE SET balance = projections.balance + EXCLUDED.balance")


class Worker:
    """One consumer's loop."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.name = settings.worker_name
        self.pool: Any = None
        self.redis: Any = None
        self.db_breaker = breaker("worker_postgres", minimum_calls=5, window=10,
                                  open_duration=1.0)
        self._failures: dict[str, int] = {}
        self.healthy = True

    async def start(self) -> None:
        """Connect lazily-tolerant."""
        self.pool = await create_pool(self.s.database_url, max_size=4, command_timeout=10)
        self.redis = aioredis.from_url(self.s.redis_url, socket_timeout=5.0,
                                       socket_connect_timeout=1.0)

    async def close(self) -> None:
        """Close connections."""
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pool.close(), 5)

    async def ensure_group(self) -> None:
        """Create the group (reading from the start) unless it exists."""
        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
            log.info("created consumer group %s", GROUP)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def apply(self, stream_id: str, event: dict[str, Any]) -> bool:
        """Apply one event exactly once in effect; True if it changed the projection."""

        async def tx() -> bool:
            async with self.pool.acquire(timeout=5) as conn, conn.transaction():
                fresh = await conn.fetchval(
                    "INSERT INTO processed_events (event_id, consumer, stream_id)"
                    " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
                    event["event_id"], self.name, stream_id)
                if not fresh and not self.s.bug("projection_double_apply"):
                    return False
                # BUG(projection_double_apply) applies even when the id was seen before.
                await conn.execute(_APPLY, [a for a, _ in event["legs"]],
                                   [x for _, x in event["legs"]])
                return True

        return bool(await self.db_breaker.call_async(tx))

    async def dead_letter(self, stream_id: str, fields: dict[Any, Any], reason: str) -> None:
        """Move an entry to the dead-letter stream and ack it."""
        entry = {_text(k): v for k, v in fields.items()}
        entry.update({"original_id": stream_id, "reason": reason, "consumer": self.name})
        entry.setdefault("event_id", "")
        await self.redis.xadd(DEAD_LETTERS, entry)
        await self.redis.xack(STREAM, GROUP, stream_id)
        DEAD.inc()
        self._failures.pop(stream_id, None)
        log.warning("dead-lettered %s: %s", stream_id, reason)

    async def handle(self, stream_id: str, fields: dict[Any, Any], deliveries: int = 1) -> None:
        """Decode, apply, ack one entry."""
        try:
            event = decode_event(fields)
        except PoisonError as exc:
            await self.dead_letter(stream_id, fields, str(exc))
            return
        if self.s.bug("worker_ack_before_apply"):
            # BUG(worker_ack_before_apply): a crash after this line loses the event.
            await self.redis.xack(STREAM, GROUP, stream_id)
        try:
            changed = await self.apply(stream_id, event)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError,
                CircuitOpenError) as exc:
            count = max(self._failures.get(stream_id, 0) + 1, deliveries)
            self._failures[stream_id] = count
            if count >= self.s.worker_max_deliveries and isinstance(exc, asyncpg.PostgresError) \
                    and not isinstance(exc, asyncpg.exceptions.PostgresConnectionError):
                await self.dead_letter(stream_id, fields, f"failed {count} times: "
                                       f"{type(exc).__name__}")
                return
            raise
        self._failures.pop(stream_id, None)
        await self.redis.xack(STREAM, GROUP, stream_id)
        APPLIED.labels("applied" if changed else "duplicate").inc()

    async def reclaim(self) -> None:
        """Take over entries idle past the claim timeout (their consumer died)."""
        start = "0-0"
        while True:
            result = await self.redis.xautoclaim(STREAM, GROUP, self.name,
                                                 self.s.worker_claim_idle_ms, start, count=100)
            next_start, entries = result[0], result[1]
            for sid, fields in entries:
                if fields is None:  # deleted from the stream meanwhile
                    continue
                sid_text = _text(sid)
                info = await self.redis.xpending_range(STREAM, GROUP, sid_text, sid_text, 1)
                deliveries = int(info[0]["times_delivered"]) if info else 1
                if deliveries > self.s.worker_max_deliveries + 1:
                    await self.dead_letter(sid_text, fields, f"delivered {deliveries} times")
                    continue
                APPLIED.labels("reclaimed").inc()
                await self.handle(sid_text, fields, deliveries)
            if _text(next_start) == "0-0":
                return
            start = _text(next_start)

    async def update_gauges(self) -> None:
        """Export pending entries and stream lag."""
        pending = await self.redis.xpending(STREAM, GROUP)
        PENDING.set(int(pending["pending"]))
        for group in await self.redis.xinfo_groups(STREAM):
            if _text(group.get("name", b"")) == GROUP and group.get("lag") is not None:
                LAG.set(int(group["lag"]))

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set."""
        loop = asyncio.get_running_loop()
        next_tick, backoff, group_ready = 0.0, 0.05, False
        while not stop.is_set():
            try:
                if not group_ready:
                    await self.ensure_group()
                    group_ready = True
                if loop.time() >= next_tick:
                    # Our own pending entries (from before a restart) first, then others'.
                    await self.reclaim()
                    await self.update_gauges()
                    next_tick = loop.time() + min(1.0, self.s.worker_claim_idle_ms / 2000)
                batches = await self.redis.xreadgroup(GROUP, self.name, {STREAM: ">"},
                                                      count=100, block=500)
                for _stream, entries in batches or []:
                    for sid, fields in entries:
                        await self.handle(_text(sid), fields)
                backoff, self.healthy = 0.05, True
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    log.warning("consumer group missing (redis restarted?); recreating")
                    group_ready = False
                    continue
                log.warning("redis error: %s", exc)
                await self._pause(stop, backoff)
                backoff = min(backoff * 2, 1.0)
            except (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    TimeoutError, CircuitOpenError) as exc:
                log.warning("worker iteration failed: %s", type(exc).__name__)
                self.healthy, group_ready = False, False
                await self._pause(stop, backoff)
                backoff = min(backoff * 2, 1.0)

    @staticmethod
    async def _pause(stop: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    install_stop_signals(stop)
    worker = Worker(settings)
    await worker.start()
    ops = await start_ops_server(settings.host, settings.port)
    try:
        await worker.run(stop)
    finally:
        ops.close()
        await worker.close()


def main() -> int:
    """Entry point of ``python -m payments.worker``."""
    settings = load_settings()
    setup_logging("worker")
    run(_main(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
