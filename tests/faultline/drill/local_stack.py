"""A small stand-in for the local launcher, for the drill tests: real PostgreSQL, Redis,
fault proxy and payment services as subprocesses, every hop through the proxy.

Used until (and beside) ``faultline.stack``'s own launcher: it builds the
:class:`faultline._drill_stack.DrillStack` the runner needs. One PostgreSQL server is
shared (a fresh database per drill); Redis, the proxy and the services are per drill.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from faultline._drill_stack import DrillStack
from faultline.proxy.client import ProxyClient
from faultline.stack._embedded import EmbeddedPostgres, EmbeddedRedis, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[3]
HOPS = {
    "api_postgres": "pg", "relay_postgres": "pg", "worker_postgres": "pg",
    "api_redis": "redis", "relay_redis": "redis", "worker_redis": "redis", "api_risk": "risk",
    "api_replica": "pg",  # no replica here: the primary stands in, reached by its own hop
}


class LocalServices:
    """Payment services as process groups; the ServiceControl of the process nemesis."""

    def __init__(self, run_dir: Path, env: dict[str, str], redis: EmbeddedRedis) -> None:
        self.run_dir = run_dir
        self.env = env
        self.redis = redis
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, tuple[str, dict[str, str], int]] = {}

    def add(self, name: str, module: str, port: int, **extra: str) -> None:
        self.specs[name] = (module, extra, port)
        self.start(name)

    def start(self, service: str) -> None:
        if service == "redis":
            self.redis.start()
            return
        module, extra, port = self.specs[service]
        log = open(self.run_dir / f"{service}.log", "ab")  # noqa: SIM115
        env = {**self.env, **extra, "PAYMENTS_PORT": str(port)}
        self.procs[service] = subprocess.Popen(
            [sys.executable, "-m", f"payments.{module}"], cwd=REPO, env=env, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        wait_for_port(port, timeout=20)

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        if service == "redis":
            self.redis.stop(sig)
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[service].pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.procs[service].wait(timeout=10)

    def pause(self, service: str) -> None:
        pid = self.redis.proc.pid if service == "redis" and self.redis.proc else self.procs[service].pid
        os.killpg(pid, signal.SIGSTOP)

    def resume(self, service: str) -> None:
        pid = self.redis.proc.pid if service == "redis" and self.redis.proc else self.procs[service].pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGCONT)

    def restart(self, service: str) -> None:
        self.kill(service, signal.SIGTERM)
        self.start(service)

    def stop_all(self) -> None:
        for _name, proc in self.procs.items():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGCONT)
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def _create_db(server: EmbeddedPostgres, name: str) -> str:
    async def go() -> None:
        conn = await asyncpg.connect(server.url)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(go())
    return server.url.rsplit("/", 1)[0] + "/" + name


class StandInStack:
    """``factory(target, run_dir, bugs) -> DrillStack`` on a shared PostgreSQL."""

    def __init__(self, postgres: EmbeddedPostgres) -> None:
        self.postgres = postgres
        self.count = 0

    def __call__(self, target: str, run_dir: Path, bugs: list[str]) -> DrillStack:
        self.count += 1
        db = _create_db(self.postgres, f"drill_{os.getpid()}_{self.count}_{int(time.time())}")
        redis = EmbeddedRedis(base_dir=run_dir / "redis")
        (run_dir / "redis").mkdir(parents=True, exist_ok=True)
        redis.start()
        proxy_port = free_port()
        proxy_log = open(run_dir / "proxy.log", "ab")  # noqa: SIM115
        proxy = subprocess.Popen(
            [sys.executable, "-m", "faultline", "proxy", "serve", "--port", str(proxy_port),
             "--seed", "1"], cwd=REPO, stdout=proxy_log, stderr=subprocess.STDOUT,
            start_new_session=True)
        proxy_log.close()
        wait_for_port(proxy_port, timeout=20)
        client = ProxyClient(f"http://127.0.0.1:{proxy_port}")
        pg_port = int(db.rsplit(":", 1)[1].split("/")[0])
        risk_port = free_port()
        upstream = {"pg": pg_port, "redis": redis.port, "risk": risk_port}
        listen = {}
        for name, kind in HOPS.items():
            got = client.create_proxy(name, upstream=f"127.0.0.1:{upstream[kind]}")
            listen[name] = int(got["listen"].rsplit(":", 1)[1])

        def via(hop: str, url: str, port: int) -> str:
            return url.replace(f":{port}/", f":{listen[hop]}/")

        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
        env.update({
            "PAYMENTS_HOST": "127.0.0.1",
            "PAYMENTS_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
            "PAYMENTS_WORKER_CLAIM_IDLE_MS": "2000",
            "PAYMENTS_BUGS": ",".join(bugs),
        })
        subprocess.run([sys.executable, "-m", "payments.migrate"], cwd=REPO, check=True,
                       env={**env, "PAYMENTS_DATABASE_URL": db}, capture_output=True, timeout=60)
        services = LocalServices(run_dir, env, redis)
        services.add("risk", "risk", risk_port)
        ports = {n: free_port() for n in ("api", "relay", "worker-1", "worker-2")}
        api_env = {"PAYMENTS_DATABASE_URL": via("api_postgres", db, pg_port),
                   "PAYMENTS_REDIS_URL": via("api_redis", redis.url, redis.port),
                   "PAYMENTS_REPLICA_URL": via("api_replica", db, pg_port),
                   "PAYMENTS_RISK_URL": f"http://127.0.0.1:{listen['api_risk']}"}
        services.add("api", "api", ports["api"], **api_env)
        services.add("relay", "relay", ports["relay"],
                     PAYMENTS_DATABASE_URL=via("relay_postgres", db, pg_port),
                     PAYMENTS_REDIS_URL=via("relay_redis", redis.url, redis.port))
        for w in ("worker-1", "worker-2"):
            services.add(w, "worker", ports[w], PAYMENTS_WORKER_NAME=w,
                         PAYMENTS_DATABASE_URL=via("worker_postgres", db, pg_port),
                         PAYMENTS_REDIS_URL=via("worker_redis", redis.url, redis.port))
        out = subprocess.run(
            [sys.executable, "-m", "payments.seed", "--merchants", "2", "--accounts", "10",
             "--balance", "100000", "--currency", "EUR"], cwd=REPO, check=True,
            env={**env, "PAYMENTS_DATABASE_URL": db}, capture_output=True, timeout=60)
        seed = json.loads(out.stdout)

        def stop() -> None:
            services.stop_all()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proxy.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proxy.wait(timeout=5)
            redis.stop()

        metrics = {n: f"http://127.0.0.1:{p}/metrics" for n, p in ports.items()}
        metrics["risk"] = f"http://127.0.0.1:{risk_port}/metrics"
        return DrillStack(
            api_url=f"http://127.0.0.1:{ports['api']}", database_url=db, redis_url=redis.url,
            proxy_url=client.url, metrics_urls=metrics, seed=seed, services=services,
            stop=stop,
            pids=[proxy.pid, *(p.pid for p in services.procs.values()),
                  *([redis.proc.pid] if redis.proc else [])],
            target="local")
