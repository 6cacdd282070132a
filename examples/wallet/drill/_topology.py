"""The wallet as local processes: its hops, services and :class:`LocalTopology`.

One PostgreSQL server holding two databases, the wallet's and the merchant's; the
wallet API (gunicorn); the notifier that sends the ``payment.completed`` webhooks; the
merchant's webhook receiver. Every process reaches the others only through its own
hop's fault proxy. Before the apps start, ``setup`` migrates both databases and seeds
clients, wallets and their opening balances; what the seed prints is the workload data
the Jepsen clients read (tokens, wallet ids) and what the snapshot reads (how much money
entered from outside).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from faultline.stack import App, LocalTopology, Postgres, StackError, Wiring
from faultline.system import Hop, Service

__all__ = ["HOPS", "SEED", "SERVICES", "local_topology"]

#: the folder that holds the ``wallet`` package (``python -m wallet.service`` runs here)
ROOT = Path(__file__).resolve().parents[2]
#: ``python -m wallet.service.seed`` arguments: 2 clients x 5 wallets of 500.00 EUR
SEED = ("--clients", "2", "--wallets", "5", "--balance", "500.00")

#: every network hop, each behind its own fault proxy
HOPS: tuple[Hop, ...] = (
    Hop("wallet->postgres", "wallet_postgres", "wallet", "postgres", "postgres"),
    Hop("notifier->postgres", "notifier_postgres", "notifier", "postgres", "postgres"),
    Hop("notifier->merchant", "notifier_merchant", "notifier", "merchant", "http"),
    Hop("merchant->postgres", "merchant_postgres", "merchant", "postgres", "postgres"),
)

#: what process faults can act on
SERVICES: tuple[Service, ...] = (
    Service("postgres", "database"),
    Service("wallet", "api"),
    Service("notifier", "worker"),
    Service("merchant", "consumer"),
)
#: the merchant's own database, on the same PostgreSQL server
MERCHANT_DB = "merchant"


def _env(w: Wiring) -> Mapping[str, str]:
    """What every process of the stack gets (apps and setup tools)."""
    return {
        "DJANGO_SETTINGS_MODULE": "wallet.service.settings",
        "WALLET_BUGS": ",".join(w.bugs),
        "WALLET_SECRET_KEY": w.secret("django_secret_key"),
        "WALLET_WEBHOOK_SECRET": w.secret("webhook_secret"),
        # the package lives in examples/, which is not installed
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                      if p),
    }


def _tool(w: Wiring, *argv: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WALLET_")}
    env.update(_env(w))
    # setup goes direct, not through the hops
    env["WALLET_DATABASE_URL"] = w.url("postgres")
    env["MERCHANT_DATABASE_URL"] = _database(w.url("postgres"), MERCHANT_DB)
    res = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=180)
    if res.returncode != 0:
        raise StackError(f"{' '.join(argv)} failed (exit {res.returncode}):\n"
                         f"{(res.stderr or res.stdout)[-1500:]}")
    return res.stdout


def _database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server."""
    return f"{url.rsplit('/', 1)[0]}/{name}"


def _setup(w: Wiring) -> dict[str, Any]:
    """Create and migrate both databases, seed; the seed's JSON is the workload data
    (``stack.json``)."""
    import psycopg

    with psycopg.connect(w.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {MERCHANT_DB}")
    _tool(w, "-m", "wallet.merchant", "migrate")
    _tool(w, "-m", "django", "migrate", "--noinput")
    out = _tool(w, "-m", "wallet.service.seed", *SEED)
    try:
        return dict(json.loads(out.strip().splitlines()[-1]))
    except (ValueError, IndexError) as exc:
        raise StackError(f"wallet.service.seed printed no JSON: {out[-500:]!r}") from exc


def _endpoints(w: Wiring) -> dict[str, str]:
    """Direct addresses for the snapshot and the settle probe (never through a proxy)."""
    return {"database_url": w.url("postgres"),
            "merchant_database_url": _database(w.url("postgres"), MERCHANT_DB)}


def local_topology() -> LocalTopology:
    """The wallet's local stack."""
    return LocalTopology(
        system="wallet",
        servers=(Postgres("postgres", database="wallet"),),
        apps=(
            App("wallet", ("{python}", "-m", "wallet.service"),
                env=lambda w: {"WALLET_DATABASE_URL": w.via("wallet->postgres")},
                health="/readyz", port_env="WALLET_PORT", metrics=None, cwd=ROOT,
                role="api"),
            App("merchant", ("{python}", "-m", "wallet.merchant"),
                env=lambda w: {"MERCHANT_DATABASE_URL": _database(
                    w.via("merchant->postgres"), MERCHANT_DB)},
                health="/readyz", port_env="WALLET_PORT", metrics=None, cwd=ROOT,
                role="consumer"),
            App("notifier", ("{python}", "-m", "wallet.service.notifier"),
                env=lambda w: {"WALLET_DATABASE_URL": w.via("notifier->postgres"),
                               "WALLET_WEBHOOK_URL": w.via("notifier->merchant") + "/webhooks"},
                health="/healthz", port_env="WALLET_PORT", metrics=None, cwd=ROOT,
                role="worker"),
        ),
        hops=HOPS,
        entry="wallet",
        setup=_setup,
        env=_env,
        endpoints=_endpoints,
        clean_env_prefix="WALLET_",
    )
