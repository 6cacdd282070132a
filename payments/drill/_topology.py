"""The payment stack's hops and services: the one table of them (docs/contracts.md)."""

from __future__ import annotations

from faultline.system import Hop, Service

__all__ = ["HOPS", "SERVICES"]

#: every network hop, each behind its own fault proxy. ``traffic`` (exploration draws a
#: hop's toxics in proportion) from bytes through each hop's proxy in 15 s of the default
#: workload, 8 users, no fault (docs/explore.md): api->postgres carries every request
#: (1.47 MB: three times the next application hop), api->redis only the api's readiness
#: probe (0 bytes while the load ran: a toxic there touches nothing); the others
#: 0.2-0.5 MB each (replication 3.8 MB of WAL on one connection: an ordinary hop)
HOPS: tuple[Hop, ...] = (
    Hop("api->postgres", "api_postgres", "api", "postgres", "postgres", traffic=3.0),
    Hop("api->replica", "api_replica", "api", "replica", "postgres"),
    Hop("api->redis", "api_redis", "api", "redis", "redis", traffic=0.1),
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
