"""Merchant API keys -> merchant ids, cached in the api process, revoked at once.

Looking the key up in PostgreSQL on every request would add a round trip to every call;
a plain 60 s cache kept a revoked key working for up to a minute. So the cache is kept
honest by the database: a trigger (migrations/0006) NOTIFYs ``payments_merchant_keys``
when a key is cleared or rotated or a merchant deleted, and one listening connection per
api process empties the cache when it hears it (milliseconds after the revoking commit).

The listener can fail silently (a cut or stalled connection, which a drill makes on
purpose), so it is pinged every second; while it is not known to be listening, cached
keys are trusted for only ``degraded_ttl_s`` (1 s) instead of ``ttl_s``. A generation
number, bumped on every eviction, keeps a lookup that raced a revocation from putting the
revoked key back into the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg

__all__ = ["CHANNEL", "MerchantKeys"]

CHANNEL = "payments_merchant_keys"
_MAX_ENTRIES = 10_000

log = logging.getLogger("payments.api")


class MerchantKeys:
    """The api's cache of merchant keys (by sha256 digest), evicted on revocation."""

    def __init__(self, dsn: str, *, ttl_s: float = 60.0, degraded_ttl_s: float = 1.0,
                 ping_s: float = 1.0) -> None:
        self._dsn = dsn
        self._ttl_s, self._degraded_ttl_s, self._ping_s = ttl_s, degraded_ttl_s, ping_s
        self._entries: dict[bytes, tuple[str, float]] = {}
        self._listening = False
        self._task: asyncio.Task[None] | None = None
        self.generation = 0

    @property
    def listening(self) -> bool:
        """Whether revocations are being heard right now."""
        return self._listening

    def get(self, digest: bytes) -> str | None:
        """The merchant id of a cached key still trusted, else ``None``."""
        hit = self._entries.get(digest)
        if hit is None:
            return None
        ttl = self._ttl_s if self._listening else self._degraded_ttl_s
        return hit[0] if time.monotonic() - hit[1] < ttl else None

    def put(self, digest: bytes, merchant_id: str, generation: int) -> None:
        """Cache a key looked up in generation ``generation`` (dropped if an eviction
        happened since: the lookup may have read the key just before it was revoked)."""
        if generation != self.generation:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = (merchant_id, time.monotonic())

    def evict_all(self) -> None:
        """Forget every cached key (revocations are rare; precision is not worth a scan)."""
        self.generation += 1
        self._entries.clear()

    def start(self) -> None:
        """Start listening for revocations (in the background; never blocks start-up)."""
        self._task = asyncio.create_task(self._listen(), name="merchant-key-listener")

    async def stop(self) -> None:
        """Stop listening."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _heard(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self.evict_all()

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            conn: Any = None
            try:
                conn = await asyncpg.connect(self._dsn, timeout=3)
                await conn.add_listener(CHANNEL, self._heard)
                # Revocations made while nobody listened were never heard: start clean.
                self.evict_all()
                self._listening, delay = True, 0.2
                while True:
                    await asyncio.sleep(self._ping_s)
                    await conn.fetchval("SELECT 1", timeout=self._ping_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is down or the hop is cut: retry
                if self._listening:
                    log.warning("merchant key listener lost (%s); cached keys now trusted "
                                "for %.0f s only", type(exc).__name__, self._degraded_ttl_s)
            finally:
                self._listening = False
                if conn is not None:
                    conn.terminate()  # no graceful close over a connection that may hang
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
