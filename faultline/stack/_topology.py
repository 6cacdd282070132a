"""What a system looks like as local processes: servers, hops, setup, apps.

A profile describes its local stack as a :class:`LocalTopology`; the generic
:class:`faultline.stack.LocalStack` starts it: the servers (embedded PostgreSQL, with
optional streaming replicas, and Redis), the fault proxy with one proxy per hop, the
``setup`` step (migrations, seed data), then the apps, each reaching its dependencies
only through the hops' proxies. A :class:`Wiring` tells the profile's callables where
everything answers.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faultline.system import Hop

__all__ = ["App", "LocalTopology", "Postgres", "Redis", "Wiring"]

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class Postgres:
    """An embedded PostgreSQL cluster. With ``replica_of`` it is a streaming replica of
    that server, its base backup and replication going through the proxy of hop
    ``replication_hop`` (so that faults on that hop reach replication)."""

    name: str = "postgres"
    database: str = "app"
    replica_of: str | None = None
    replication_hop: str | None = None
    conf: Mapping[str, str] = field(default_factory=dict)
    role: str = "database"
    #: ``pg_hba.conf`` lines placed before the loopback ``trust`` (e.g. a service role
    #: that must log in with a SCRAM password); a replica inherits its primary's
    hba: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Redis:
    """An embedded ``redis-server`` (AOF on, so a restart keeps its data)."""

    name: str = "redis"
    role: str = "cache"


@dataclass(frozen=True, slots=True)
class App:
    """One service of the system, a process started from ``argv`` (``{python}`` is this
    interpreter). It listens on 127.0.0.1 at the port put in ``port_env`` and is ready
    when ``GET health`` answers 200. ``env(wiring)`` gives its own variables (where its
    dependencies answer, through the hops)."""

    name: str
    argv: tuple[str, ...]
    env: Callable[[Wiring], Mapping[str, str]] = lambda w: {}
    health: str = "/healthz"
    port_env: str = "PORT"
    metrics: str | None = "/metrics"
    role: str = "app"
    cwd: Path | None = None


@dataclass(frozen=True)
class LocalTopology:
    """A system's local stack. ``entry`` is the app the workload's clients call;
    ``setup(wiring)`` runs once the servers and proxies are up, before the apps, and
    returns the workload data (seed accounts, keys); ``env(wiring)`` is given to every
    app and to ``setup``'s tools; ``endpoints(wiring)`` are the system's own direct
    addresses (for its snapshot and settle probe)."""

    system: str
    servers: tuple[Postgres | Redis, ...]
    apps: tuple[App, ...]
    hops: tuple[Hop, ...]
    entry: str
    setup: Callable[[Wiring], dict[str, Any]] | None = None
    env: Callable[[Wiring], Mapping[str, str]] = lambda w: {}
    endpoints: Callable[[Wiring], dict[str, str]] = lambda w: {}
    #: variables with this prefix are not inherited from the caller's environment: only
    #: the topology sets them (a stray ``PAYMENTS_BUGS`` in a shell must not leak in)
    clean_env_prefix: str | None = None

    def server(self, name: str) -> Postgres | Redis | None:
        return next((s for s in self.servers if s.name == name), None)

    def app(self, name: str) -> App | None:
        return next((a for a in self.apps if a.name == name), None)

    @property
    def service_names(self) -> tuple[str, ...]:
        """Every server and app, in start order."""
        return tuple(s.name for s in self.servers) + tuple(a.name for a in self.apps)


@dataclass
class Wiring:
    """Where the parts of a starting (or running) local stack answer."""

    run_dir: Path
    bugs: list[str]
    ports: dict[str, int] = field(default_factory=dict)
    listen: dict[str, int] = field(default_factory=dict)
    topology: LocalTopology | None = None
    #: PostgreSQL login used by the apps and tools (set by the launcher)
    db_user: str = "faultline"
    db_password: str = "faultline"
    python: str = sys.executable
    #: secrets made for this stack (:meth:`secret`), the same for every app and tool
    secrets: dict[str, str] = field(default_factory=dict)

    def secret(self, name: str, nbytes: int = 32, *, hex: bool = False) -> str:
        """A random secret of this stack, made on first use and the same for every app
        and tool (an encryption key, a database password): base64, or ``hex`` where it
        must be safe inside a URL."""
        if name not in self.secrets:
            raw = os.urandom(nbytes)
            self.secrets[name] = raw.hex() if hex else base64.b64encode(raw).decode()
        return self.secrets[name]

    def _hop(self, name: str) -> Hop:
        assert self.topology is not None
        for hop in self.topology.hops:
            if hop.name == name or hop.proxy == name:
                return hop
        raise KeyError(f"no hop {name!r}")

    def _url(self, target: str, port: int, login: tuple[str, str] | None = None) -> str:
        assert self.topology is not None
        server = self.topology.server(target)
        if isinstance(server, Postgres):
            user, password = login or (self.db_user, self.db_password)
            return f"postgresql://{user}:{password}@{LOOPBACK}:{port}/{server.database}"
        if isinstance(server, Redis):
            return f"redis://{LOOPBACK}:{port}/0"
        return f"http://{LOOPBACK}:{port}"

    def url(self, target: str, login: tuple[str, str] | None = None) -> str:
        """``target`` (a server or app) reached directly, not through any proxy;
        ``login`` = (user, password) for a database other than the launcher's own."""
        return self._url(target, self.ports[target], login)

    def via(self, hop: str, login: tuple[str, str] | None = None) -> str:
        """The target of ``hop`` reached through the hop's fault proxy."""
        h = self._hop(hop)
        return self._url(h.target, self.listen[h.proxy], login)

    def port(self, name: str) -> int:
        """The port a server or app listens on."""
        return self.ports[name]
