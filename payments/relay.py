"""The outbox relay: publishes committed outbox rows to the Redis stream, at least once.

Each batch is claimed with ``FOR UPDATE SKIP LOCKED`` (several relays may run), XADDed in
one pipeline, and marked published in the same database transaction, so a crash between
XADD and the mark only republishes (consumers are idempotent). If Redis comes back
without the entries we published (a restart that lost data), the relay notices the
missing entry and republishes every event (consumers skip the ones already applied).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from prometheus_client import Counter, Gauge
from redis.exceptions import RedisError

from payments._config import Settings, load_settings
from payments._db import create_pool
from payments._policies import breaker
from payments._serve import install_stop_signals, run, setup_logging, start_ops_server
from payments._streams import STREAM
from resilience import CircuitOpenError

__all__ = ["Relay", "main"]

log = logging.getLogger("payments.relay")

PUBLISHED = Counter("payments_relay_published_total", "Outbox events published to the stream")
ERRORS = Counter("payments_relay_errors_total", "Relay iterations that failed", ["kind"])
BACKLOG = Gauge("payments_outbox_backlog", "Outbox rows not yet published")
REPUBLISHED = Counter("payments_relay_republished_total",
                      "Outbox rows re-queued after Redis lost published entries")

_CLAIM = ("SELECT id, event_id, transfer_id, payload FROM outbox WHERE published_at IS NULL"
          " ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED")
_MARK = ("UPDATE outbox o SET published_at = now(), stream_id = u.sid"
         " FROM unnest($1::bigint[], $2::text[]) AS u(id, sid) WHERE o.id = u.id")


class Relay:
    """One relay process's loop."""

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.pool: Any = None
        self.redis: Any = None
        self.redis_breaker = breaker("relay_redis", minimum_calls=3, window=10,
                                     open_duration=1.0)
        self.db_breaker = breaker("relay_postgres", minimum_calls=3, window=10,
                                  open_duration=1.0)
        self._run_id: str | None = None
        self._verified = False
        self._next_identity_check = 0.0
        self.healthy = True

    async def start(self) -> None:
        """Connect (the pool connects lazily, so a down database does not stop us)."""
        self.pool = await create_pool(self.s.database_url, max_size=3, command_timeout=10)
        self.redis = aioredis.from_url(self.s.redis_url, socket_timeout=2.0,
                                       socket_connect_timeout=1.0)

    async def close(self) -> None:
        """Close connections."""
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pool.close(), 5)

    async def _check_redis_identity(self) -> None:
        """After a Redis (re)start, verify our last published entry survived."""
        now = asyncio.get_running_loop().time()
        if self._verified and now < self._next_identity_check:
            return
        self._next_identity_check = now + 1.0
        info = await self.redis.info("server")
        run_id = str(info.get("run_id"))
        if run_id == self._run_id and self._verified:
            return
        async with self.pool.acquire(timeout=5) as conn:
            last = await conn.fetchval(
                "SELECT stream_id FROM outbox WHERE stream_id IS NOT NULL ORDER BY id DESC LIMIT 1")
            if last is not None and not await self.redis.xrange(STREAM, last, last):
                # Redis lost entries we had published: requeue them all, so the stream
                # again holds every event; consumers skip the ones already applied.
                n = await conn.fetchval(
                    "WITH r AS (UPDATE outbox SET published_at = NULL, stream_id = NULL"
                    " WHERE published_at IS NOT NULL RETURNING 1) SELECT count(*) FROM r")
                REPUBLISHED.inc(n)
                log.warning("redis lost published entries (last %s missing); requeued %d", last, n)
        self._run_id, self._verified = run_id, True

    async def publish_batch(self) -> int:
        """Publish one batch; return how many rows it held."""
        try:
            await self.redis_breaker.call_async(self._check_redis_identity)
        except (RedisError, OSError, CircuitOpenError):
            self._verified = False
            # Never publish before verifying: entries added to a Redis that came back
            # empty would hide the loss from the next check.
            if not self.s.bug("relay_drops_on_error"):
                raise
            # BUG(relay_drops_on_error) goes on to "publish" into a Redis that is down.
        async with self.pool.acquire(timeout=5) as conn, conn.transaction():
            rows = await conn.fetch(_CLAIM, self.s.relay_batch)
            if not rows:
                return 0
            try:
                ids = await self.redis_breaker.call_async(self._xadd, rows)
            except (RedisError, OSError, CircuitOpenError):
                self._verified = False
                if not self.s.bug("relay_drops_on_error"):
                    raise
                # BUG(relay_drops_on_error): mark the batch published anyway.
                ids = [None] * len(rows)
            await conn.execute(_MARK, [r["id"] for r in rows],
                               [i.decode() if isinstance(i, bytes) else i for i in ids])
        PUBLISHED.inc(len(rows))
        return len(rows)

    async def _xadd(self, rows: list[Any]) -> list[Any]:
        pipe = self.redis.pipeline(transaction=False)
        for r in rows:
            pipe.xadd(STREAM, {"event_id": r["event_id"], "transfer_id": r["transfer_id"],
                               "payload": r["payload"]})
        return list(await pipe.execute())

    async def update_backlog(self) -> None:
        """Export the number of unpublished outbox rows."""
        async with self.pool.acquire(timeout=5) as conn:
            BACKLOG.set(await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE published_at IS NULL"))

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until ``stop`` is set; back off on errors."""
        backoff = 0.05
        loop = asyncio.get_running_loop()
        next_gauge = 0.0
        failures = (RedisError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                    TimeoutError, CircuitOpenError)
        while not stop.is_set():
            try:
                n = await self.publish_batch()
                backoff, self.healthy = 0.05, True
            except failures as exc:
                ERRORS.labels(type(exc).__name__).inc()
                log.warning("relay iteration failed: %s", type(exc).__name__)
                self._verified, self.healthy = False, False
                n = -1
            # The backlog is exported also while publishing fails (Redis down: exactly
            # when the outbox backs up and its alert must fire).
            if loop.time() >= next_gauge:
                next_gauge = loop.time() + 1.0
                try:
                    await self.update_backlog()
                except failures as exc:
                    ERRORS.labels(type(exc).__name__).inc()
            if n < 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            if n == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.s.relay_poll_s)


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    install_stop_signals(stop)
    relay = Relay(settings)
    await relay.start()
    ops = await start_ops_server(settings.host, settings.port)
    try:
        await relay.run(stop)
    finally:
        ops.close()
        await relay.close()


def main() -> int:
    """Entry point of ``python -m payments.relay``."""
    settings = load_settings()
    setup_logging("relay")
    run(_main(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
