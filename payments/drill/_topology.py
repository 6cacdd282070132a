"""The payment stack's hops and services: the one table of them (docs/contracts.md)."""

from __future__ import annotations

from faultline.system import Hop, Service

__all__ = ["HOPS", "SERVICES"]

#: every network hop, each behind its own fault proxy
HOPS: tuple[Hop, ...] = (
    Hop("api->postgres", "api_postgres", "api", "postgres", "postgres"),
    Hop("api->replica", "api_replica", "api", "replica", "postgres"),
    Hop("api->redis", "api_redis", "api", "redis", "redis"),
    Hop("api->risk", "api_risk", "api", "risk", "http"),
    Hop("replication", "replication", "replica", "postgres", "postgres"),
    Hop("relay->postgres", "relay_postgres", "relay", "postgres", "postgres"),
    Hop("relay->redis", "relay_redis", "relay", "redis", "redis"),
    Hop("worker->postgres", "worker_postgres", "worker", "postgres", "postgres"),
    Hop("worker->redis", "worker_redis", "worker", "redis", "redis"),
)

#: what process faults can act on
SERVICES: tuple[Service, ...] = (
    Service("postgres", "database"),
    Service("replica", "replica"),
    Service("redis", "cache"),
    Service("risk", "risk"),
    Service("api", "api"),
    Service("relay", "relay"),
    Service("worker-1", "worker"),
    Service("worker-2", "worker"),
)
