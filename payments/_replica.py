"""Reads for statements and reporting: the replica when it is up and fresh, else the primary.

A background probe measures replay lag (0 when the replica has replayed the primary's
current WAL position, else the age of its last replayed transaction). Reads go through a
circuit breaker; a replica that is down or lagging past the bound counts as a failure, so
the breaker opens and reads go straight to the primary until it probes healthy again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge

from payments._policies import breaker

__all__ = ["ReplicaLaggingError", "ReplicaReader"]

T = TypeVar("T")
log = logging.getLogger("payments.replica")

REPLICA_LAG = Gauge("payments_replica_lag_seconds", "Read replica replay lag (-1 = unknown)")
READS = Counter("payments_reads_total", "Statement/reporting reads by source", ["source"])


class ReplicaLaggingError(Exception):
    """The replica is further behind than the configured bound."""


class ReplicaReader:
    """Routes read-only work to the replica pool with fallback to the primary pool."""

    def __init__(self, primary: Any, replica: Any | None, max_lag_s: float) -> None:
        self.primary, self.replica, self.max_lag_s = primary, replica, max_lag_s
        self.lag: float | None = None
        self.breaker = breaker("replica", minimum_calls=3, window=10, open_duration=2.0)
        self._probe: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin probing lag once a second."""
        if self.replica is not None:
            self._probe = asyncio.create_task(self._probe_loop())

    async def stop(self) -> None:
        """Stop probing."""
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe

    async def _measure(self) -> float:
        assert self.replica is not None
        primary_lsn = await self.primary.fetchval("SELECT pg_current_wal_lsn()", timeout=1)
        return float(await self.replica.fetchval(
            "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0"
            " WHEN pg_last_wal_replay_lsn() >= $1::pg_lsn THEN 0"
            " ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)"
            " END", primary_lsn, timeout=1))

    async def _probe_loop(self) -> None:
        while True:
            try:
                self.lag = await self._measure()
                REPLICA_LAG.set(self.lag)
            except Exception as exc:  # any failure means "unknown"
                self.lag = None
                REPLICA_LAG.set(-1)
                log.debug("replica lag probe failed: %s", type(exc).__name__)
            await asyncio.sleep(1.0)

    async def read(self, work: Callable[[Any], Awaitable[T]]) -> tuple[T, str]:
        """Run ``work(pool)`` on the replica if healthy, else on the primary."""
        if self.replica is not None:
            try:
                result = await self.breaker.call_async(self._on_replica, work)
                READS.labels("replica").inc()
                return result, "replica"
            except Exception as exc:  # every replica problem falls back
                log.debug("replica read fell back to primary: %s", type(exc).__name__)
        READS.labels("primary").inc()
        return await work(self.primary), "primary"

    async def _on_replica(self, work: Callable[[Any], Awaitable[T]]) -> T:
        if self.lag is not None and self.lag > self.max_lag_s:
            raise ReplicaLaggingError(f"replica lag {self.lag:.1f}s > {self.max_lag_s}s")
        return await asyncio.wait_for(work(self.replica), 2.0)
