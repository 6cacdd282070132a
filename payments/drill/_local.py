"""The payment stack as local processes: its :class:`~faultline.stack.LocalTopology`.

PostgreSQL primary and a streaming replica (replicating through the ``replication``
hop), Redis, then risk, api, relay and two workers, each reaching PostgreSQL, Redis and
the risk service only through its own hops' proxies (docs/contracts.md: hops).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faultline.stack import App, LocalTopology, Postgres, Redis, StackError, Wiring

from ._topology import HOPS

__all__ = ["DEFAULT_SEED", "local_topology"]

#: ``python -m payments.seed`` arguments: merchants, accounts and their funding
DEFAULT_SEED = ("--merchants", "2", "--accounts", "10", "--balance", "100000",
                "--currency", "EUR")
#: the source tree (the services run as ``python -m payments.X`` from here)
ROOT = Path(__file__).resolve().parents[2]
#: the services' own PostgreSQL login: no superuser, least privileges (payments/_db_role.py),
#: SCRAM password even on loopback; migrations and the seed run as the superuser
APP_ROLE = "payments_app"


def _app(w: Wiring) -> tuple[str, str]:
    return APP_ROLE, w.secret("app_password", 16, hex=True)


def _common_env(w: Wiring) -> Mapping[str, str]:
    return {
        "PAYMENTS_HOST": "127.0.0.1",
        "PAYMENTS_BUGS": ",".join(w.bugs),
        "PAYMENTS_ENCRYPTION_KEY": w.secret("encryption_key"),
    }


def _tool(w: Wiring, module: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
    env.update(_common_env(w))
    env["PAYMENTS_DATABASE_URL"] = w.url("postgres")
    env["PAYMENTS_APP_ROLE"], env["PAYMENTS_APP_PASSWORD"] = _app(w)
    res = subprocess.run([sys.executable, "-m", f"payments.{module}", *args], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise StackError(f"python -m payments.{module} failed (exit {res.returncode}):\n"
                         f"{(res.stderr or res.stdout)[-1500:]}")
    return res.stdout


def _setup(w: Wiring) -> dict[str, Any]:
    """Migrate, then seed merchants and accounts; the seed's JSON is the workload data."""
    _tool(w, "migrate")
    out = _tool(w, "seed", *DEFAULT_SEED)
    try:
        return dict(json.loads(out.strip().splitlines()[-1]))
    except (ValueError, IndexError) as exc:
        raise StackError(f"payments.seed printed no JSON: {out[-500:]!r}") from exc


def _endpoints(w: Wiring) -> dict[str, str]:
    """Direct addresses for the snapshot and the settle probe (never through a proxy)."""
    out = {"database_url": w.url("postgres"), "redis_url": w.url("redis")}
    if "replica" in w.ports:
        out["replica_url"] = w.url("replica")
        # the replica's superuser (trust on loopback), for the replay-pause action
        out["replica_admin_url"] = f"postgresql://postgres@127.0.0.1:{w.port('replica')}/postgres"
    return out


def _module(name: str) -> tuple[str, ...]:
    return ("{python}", "-m", f"payments.{name}")


def _api_env(w: Wiring) -> Mapping[str, str]:
    env = {"PAYMENTS_DATABASE_URL": w.via("api->postgres", _app(w)),
           "PAYMENTS_REDIS_URL": w.via("api->redis"),
           "PAYMENTS_RISK_URL": w.via("api->risk")}
    if "replica" in w.ports:
        env["PAYMENTS_REPLICA_URL"] = w.via("api->replica", _app(w))
    return env


def _worker_env(name: str) -> Any:
    def env(w: Wiring) -> Mapping[str, str]:
        return {"PAYMENTS_DATABASE_URL": w.via("worker->postgres", _app(w)),
                "PAYMENTS_REDIS_URL": w.via("worker->redis"), "PAYMENTS_WORKER_NAME": name}
    return env


def local_topology(*, replica: bool = True) -> LocalTopology:
    """The payment stack's local topology (``replica=False``: no read replica)."""
    servers: tuple[Postgres | Redis, ...] = (
        Postgres("postgres", database="payments", conf={"wal_keep_size": "'256MB'"},
                 hba=(f"host all {APP_ROLE} 127.0.0.1/32 scram-sha-256",)),
        Redis("redis"),
    )
    hops = HOPS
    if replica:
        servers += (Postgres("replica", database="payments", replica_of="postgres",
                             replication_hop="replication", role="replica"),)
    else:
        hops = tuple(h for h in HOPS if "replica" not in (h.source, h.target))
    apps = (
        App("risk", _module("risk"), port_env="PAYMENTS_PORT", cwd=ROOT, role="risk"),
        App("api", _module("api"), env=_api_env, health="/readyz", port_env="PAYMENTS_PORT",
            cwd=ROOT, role="api"),
        App("relay", _module("relay"),
            env=lambda w: {"PAYMENTS_DATABASE_URL": w.via("relay->postgres", _app(w)),
                           "PAYMENTS_REDIS_URL": w.via("relay->redis")},
            port_env="PAYMENTS_PORT", cwd=ROOT, role="relay"),
        App("worker-1", _module("worker"), env=_worker_env("worker-1"),
            port_env="PAYMENTS_PORT", cwd=ROOT, role="worker"),
        App("worker-2", _module("worker"), env=_worker_env("worker-2"),
            port_env="PAYMENTS_PORT", cwd=ROOT, role="worker"),
    )
    return LocalTopology(system="payments", servers=servers, apps=apps, hops=hops,
                         entry="api", setup=_setup, env=_common_env, endpoints=_endpoints,
                         clean_env_prefix="PAYMENTS_")
