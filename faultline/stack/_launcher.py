"""The shape every launcher has (local processes, compose, an external stack).

The drill runner needs the same few things from each: ``start()`` returning a
:class:`StackInfo`, ``stop()``, the service faults of the process nemesis
(``kill``/``pause``/``resume``/``start(service)``/``restart``) and ``snapshot()`` of the
final state (contracts §5).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = ["HOPS", "SERVICES", "Launcher", "StackError", "StackInfo"]

#: scenario hop name -> fault proxy name (contracts §3)
HOPS: dict[str, str] = {
    "api->postgres": "api_postgres",
    "api->replica": "api_replica",
    "api->redis": "api_redis",
    "api->risk": "api_risk",
    "replication": "replication",
    "relay->postgres": "relay_postgres",
    "relay->redis": "relay_redis",
    "worker->postgres": "worker_postgres",
    "worker->redis": "worker_redis",
}
#: the services a launcher can kill, pause, resume and restart
SERVICES = ("postgres", "replica", "redis", "risk", "api", "relay", "worker-1", "worker-2")


class StackError(RuntimeError):
    """The stack could not be started, attached or controlled; the message says why."""


@dataclass
class StackInfo:
    """Where a running stack answers. Every URL is on 127.0.0.1.

    ``database_url`` and ``redis_url`` are direct (no proxy): they are for the final-state
    snapshot, which must see the truth whatever the faults. ``proxy_url`` is the fault
    proxy's API, ``hops`` maps scenario hop names to its proxy names, ``seed`` is the
    output of ``payments.seed`` (also ``RUN_DIR/stack.json``).
    """

    api_url: str
    database_url: str
    redis_url: str
    replica_url: str | None = None
    proxy_url: str | None = None
    metrics_urls: dict[str, str] = field(default_factory=dict)
    hops: dict[str, str] = field(default_factory=dict)
    seed: dict[str, Any] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    run_dir: str | None = None
    target: str = "local"

    @property
    def toxiproxy_url(self) -> str | None:
        """Same as ``proxy_url`` (the name the runner and Toxiproxy users look for)."""
        return self.proxy_url

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackInfo:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@runtime_checkable
class Launcher(Protocol):
    """What the drill runner calls on any stack."""

    def start(self, service: str | None = None) -> StackInfo:
        """Start the whole stack (no argument), or one stopped service of it."""

    def stop(self) -> None:
        """Heal every fault and stop everything started; idempotent."""

    def info(self) -> StackInfo:
        """Where the running stack answers."""

    def kill(self, service: str, sig: int = ...) -> None:
        """Send ``sig`` (default SIGKILL) to the service's process group."""

    def pause(self, service: str) -> None:
        """SIGSTOP the service's process group."""

    def resume(self, service: str) -> None:
        """SIGCONT the service's process group."""

    def restart(self, service: str) -> None:
        """Stop the service gracefully and start it again on the same port."""

    def snapshot(self) -> dict[str, Any]:
        """The final-state snapshot (contracts §5), read directly from the databases."""
