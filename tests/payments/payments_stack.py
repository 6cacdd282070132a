"""Helpers for the payments tests. Real payment services as subprocesses on free loopback ports, against a fresh
database per test module on the session's PostgreSQL (the launcher in faultline/stack is
not used here, so these tests pin the services' own contract: ``python -m payments.X``
configured purely by environment variables)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson

from faultline.stack._embedded import EmbeddedPostgres, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[2]


def run_async(coro: Any) -> Any:
    """Run a coroutine from a sync fixture."""
    return asyncio.new_event_loop().run_until_complete(coro)


def create_database(server: EmbeddedPostgres, prefix: str) -> str:
    """A fresh database on the shared server, migrated; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}".lower()

    async def go() -> None:
        conn = await asyncpg.connect(server.url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    run_async(go())
    url = server.url.rsplit("/", 1)[0] + "/" + name
    env = {**os.environ, "PAYMENTS_DATABASE_URL": url}
    subprocess.run([sys.executable, "-m", "payments.migrate"], env=env, cwd=REPO, check=True,
                   capture_output=True, timeout=60)
    return url


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(timeout=5)


@dataclass
class Stack:
    """Services of one test module; ``start`` adds one, ``stop_all`` ends them all."""

    database_url: str
    redis_url: str
    base_env: dict[str, str]
    log_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="payments-test-")))
    services: dict[str, Service] = field(default_factory=dict)
    seed: dict[str, Any] = field(default_factory=dict)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
        env.update(self.base_env)
        env.update({"PAYMENTS_DATABASE_URL": self.database_url,
                    "PAYMENTS_REDIS_URL": self.redis_url, "PAYMENTS_HOST": "127.0.0.1"})
        env.update(extra)
        return env

    def start(self, module: str, name: str | None = None, **extra: str) -> Service:
        name = name or module
        port = free_port()
        log = self.log_dir / f"{name}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", f"payments.{module}"], cwd=REPO,
            env=self.env(PAYMENTS_PORT=str(port), **extra),
            stdout=open(log, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
            start_new_session=True)
        svc = Service(name, proc, port, log)
        self.services[name] = svc
        try:
            wait_for_port(port, timeout=20)
        except Exception:
            svc.stop()
            raise RuntimeError(f"{name} did not start:\n{log.read_text()[-3000:]}") from None
        return svc

    def run_seed(self, *args: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "payments.seed", *args], cwd=REPO,
                             env=self.env(), check=True, capture_output=True, timeout=60)
        self.seed = orjson.loads(out.stdout)
        return self.seed

    def stop_all(self) -> None:
        for svc in list(self.services.values()):
            svc.stop()

    def client(self, name: str = "api", key: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.services[name].url, headers=headers, timeout=10, **kw)

    def snapshot(self) -> dict[str, Any]:
        """The final state as the drill engine reads it (the payments profile's snapshot)."""
        from faultline.stack import StackInfo
        from faultline.system import DictSink
        from payments.drill._state import snapshot

        sink = DictSink()
        info = StackInfo(system="payments", target="external", base_url=self.services["api"].url
                         if "api" in self.services else "http://127.0.0.1:1",
                         endpoints={"database_url": self.database_url,
                                    "redis_url": self.redis_url})
        snapshot(info, sink)
        return sink.state

    def snapshot_db_only(self) -> dict[str, Any]:
        """The database part of the snapshot (works while Redis is down)."""

        async def go() -> dict[str, Any]:
            conn = await asyncpg.connect(self.database_url)
            try:
                rows = await conn.fetch("SELECT id, event_id, published_at FROM outbox")
                return {"outbox": [dict(r) for r in rows]}
            finally:
                await conn.close()

        return dict(run_async(go()))

    def wait_converged(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until every outbox event was published and applied; return the snapshot."""
        deadline = time.monotonic() + timeout
        problems: list[str] = ["not checked"]
        snap: dict[str, Any] = {}
        while time.monotonic() < deadline:
            snap = self.snapshot()
            problems = convergence_problems(snap)
            if not problems:
                return snap
            time.sleep(0.3)
        raise AssertionError(f"not converged after {timeout}s: {problems[:5]}")


def convergence_problems(snap: dict[str, Any]) -> list[str]:
    """Why projections/stream have not (yet) caught up with the ledger."""
    problems = []
    events = {o["event_id"] for o in snap["outbox"]}
    if any(o["published_at"] is None for o in snap["outbox"]):
        problems.append("unpublished outbox rows")
    in_stream = {s["event_id"] for s in snap["stream"]}
    if events - in_stream:
        problems.append(f"{len(events - in_stream)} events missing from the stream")
    processed = {p["event_id"] for p in snap["processed_events"]}
    if events - processed:
        problems.append(f"{len(events - processed)} events not processed")
    projected = {p["account_id"]: p["balance"] for p in snap["projections"]}
    for acc in snap["accounts"]:
        if projected.get(acc["id"], 0) != acc["balance"]:
            problems.append(f"projection of {acc['id']} differs")
            break
    return problems


def ledger_problems(snap: dict[str, Any]) -> list[str]:
    """Conservation and non-negativity (contracts §5)."""
    problems = []
    per_currency: dict[str, int] = {}
    by_account: dict[str, int] = {}
    by_transfer: dict[str, int] = {}
    for e in snap["entries"]:
        by_account[e["account_id"]] = by_account.get(e["account_id"], 0) + e["amount"]
        by_transfer[e["transfer_id"]] = by_transfer.get(e["transfer_id"], 0) + e["amount"]
    for acc in snap["accounts"]:
        per_currency[acc["currency"]] = per_currency.get(acc["currency"], 0) + acc["balance"]
        if acc["balance"] != by_account.get(acc["id"], 0):
            problems.append(f"balance of {acc['id']} != sum of its entries")
        if acc["non_negative"] and acc["balance"] < 0:
            problems.append(f"{acc['id']} is negative")
    problems += [f"{c} sums to {s}" for c, s in per_currency.items() if s != 0]
    problems += [f"transfer {t} entries sum to {s}" for t, s in by_transfer.items() if s != 0]
    if len(by_transfer) != len(snap["transfers"]):
        problems.append("transfers without entries")
    return problems


def random_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(12)).decode()


def new_stack(postgres: EmbeddedPostgres, redis_url: str, prefix: str,
              **env: str) -> Stack:
    url = create_database(postgres, prefix)
    base = {"PAYMENTS_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
            "PAYMENTS_WORKER_CLAIM_IDLE_MS": "1000", **env}
    return Stack(url, redis_url, base)
