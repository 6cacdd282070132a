"""The ``local`` launcher (the default): the whole payment stack as local processes.

``LocalStack.start()`` brings up, in order: the PostgreSQL primary; the fault proxy (a
``faultline proxy serve`` subprocess) with one proxy per hop (contracts §3); Redis; a
streaming replica whose base backup and replication both go through the
``replication`` proxy; migrations and the seed (``RUN_DIR/stack.json``); then risk, api,
relay, worker-1 and worker-2, each reaching its dependencies through its own proxy. It
returns once every service answers its health endpoint.

Every child leads its own process group (so a signal reaches its whole tree), is told
to die with us (``PR_SET_PDEATHSIG``), and is written into a state file as soon as it
runs (``faultline.stack._state``), so a later ``sweep()`` ends what a SIGKILLed owner
left. Children are spawned from one long-lived thread, since Linux sends the death
signal when the spawning *thread* ends; it also serialises start, restart and stop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from faultline.stack._embedded import (
    LOOPBACK,
    EmbeddedPostgres,
    EmbeddedRedis,
    die_with_parent,
    free_port,
    wait_for_port,
)
from faultline.stack._launcher import HOPS, SERVICES, StackError, StackInfo
from faultline.stack._state import StackState, stat_fields, stop_group, sweep

__all__ = ["LocalStack", "StackInterrupted", "stop_on_signals"]

REPO = Path(__file__).resolve().parents[2]
DEFAULT_SEED = ("--merchants", "2", "--accounts", "10", "--balance", "100000",
                "--currency", "EUR")
#: proxy name -> what it fronts
_UPSTREAM = {
    "api_postgres": "postgres", "relay_postgres": "postgres", "worker_postgres": "postgres",
    "replication": "postgres", "api_replica": "replica", "api_redis": "redis",
    "relay_redis": "redis", "worker_redis": "redis", "api_risk": "risk",
}
#: the payment services, in start order: name -> (module, health path)
_APPS = {
    "risk": ("risk", "/healthz"),
    "api": ("api", "/readyz"),
    "relay": ("relay", "/healthz"),
    "worker-1": ("worker", "/healthz"),
    "worker-2": ("worker", "/healthz"),
}
T = TypeVar("T")


class StackInterrupted(BaseException):
    """SIGTERM (or SIGINT) arrived inside :func:`stop_on_signals`: unwind and stop."""


@contextlib.contextmanager
def stop_on_signals(signals: Sequence[int] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """Turn SIGTERM/SIGINT into :class:`StackInterrupted` in the main thread, so that the
    ``finally`` (or ``with LocalStack()``) around the drill stops the stack in order.
    Outside the main thread it does nothing."""
    def handler(signum: int, frame: Any) -> None:
        raise StackInterrupted(signal.Signals(signum).name)

    old: dict[int, Any] = {}
    try:
        for s in signals:
            old[s] = signal.signal(s, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _http_status(url: str, timeout: float = 1.0) -> int | str:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except Exception as exc:
        return type(exc).__name__


@dataclass
class _App:
    """One payment service process and how to (re)start it."""

    name: str
    module: str
    port: int
    health: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def spawn(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"payments.{self.module}"], cwd=REPO,
                env={**self.env, "PAYMENTS_PORT": str(self.port)}, stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=die_with_parent)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: int | str = "no answer"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise StackError(f"{self.name} exited (code {code}) during start; last lines "
                                 f"of {self.log}:\n{_tail(self.log)}")
            last = _http_status(self.url + self.health)
            if last == 200:
                return
            time.sleep(0.1)
        raise StackError(f"{self.name} not ready after {timeout:.0f}s (GET {self.url}"
                         f"{self.health} -> {last}); last lines of {self.log}:\n"
                         f"{_tail(self.log)}")


class LocalStack:
    """The payment stack as local processes, every hop through the fault proxy.

    ``with LocalStack(run_dir=d) as info:`` starts it and always stops it. ``bugs`` is
    passed to every service as ``PAYMENTS_BUGS``; ``env`` adds/overrides service
    environment variables. Without ``run_dir`` a temp dir holds the logs (and is
    removed by ``stop()``).
    """

    def __init__(self, *, run_dir: str | os.PathLike[str] | None = None,
                 bugs: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 replica: bool = True, seed_args: Sequence[str] = DEFAULT_SEED,
                 proxy_seed: int | None = None, ready_timeout: float = 60.0,
                 detached: bool = False, log: Callable[[str], None] | None = None) -> None:
        # absolute: the children run in the repository, not in our working directory
        self.run_dir = Path(run_dir).resolve() if run_dir is not None else None
        self.bugs = [b for b in bugs if b]
        self.extra_env = dict(env or {})
        self.with_replica = replica
        self.seed_args = list(seed_args)
        self.proxy_seed = proxy_seed
        self.ready_timeout = ready_timeout
        self.log = log or (lambda msg: None)
        self.state = StackState(detached=detached)
        self.primary: EmbeddedPostgres | None = None
        self.replica: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.proxy: subprocess.Popen[bytes] | None = None
        self.proxy_url: str | None = None
        self.listen: dict[str, int] = {}
        self.apps: dict[str, _App] = {}
        self.seed: dict[str, Any] = {}
        self._info: StackInfo | None = None
        self._stopped = False
        self._abort = False
        self._spawner = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faultline-stack")
        self.startup_seconds: float | None = None

    # ------------------------------------------------------------ plumbing
    def _on_spawner(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the spawning thread (children die with it; one at a time)."""
        return self._spawner.submit(fn).result()

    def _record(self, name: str, pid: int | None) -> None:
        if pid is not None:
            self.state.groups[name] = pid
            self.state.save()

    def _temp_dir(self, prefix: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"faultline-{prefix}-"))
        self.state.temp_dirs.append(str(path))
        self.state.save()
        return path

    def _step(self, msg: str) -> None:
        if self._abort:
            raise StackInterrupted("start abandoned")
        self.log(msg)

    @property
    def logs_dir(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "logs"

    # ------------------------------------------------------------ start
    def start(self, service: str | None = None) -> StackInfo:
        """Start the whole stack, or (with ``service``) one service that is not running."""
        if service is not None:
            self._on_spawner(lambda: self._start_service(service))
            return self.info()
        if self._info is not None:
            return self._info
        if self._stopped:
            raise StackError("this LocalStack was stopped; make a new one to start again")
        self._check_bugs()
        for line in sweep():
            self.log(f"swept: {line}")
        t0 = time.monotonic()
        future = self._spawner.submit(self._start_all)
        try:
            info = future.result()
        except BaseException:
            # Ctrl-C lands here while the spawning thread may still be mid-step: ask it
            # to give up at the next step and wait, so stop() sees everything it started
            self._abort = True
            with contextlib.suppress(BaseException):
                futures_wait([future], timeout=120)
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - t0
        self.log(f"stack up in {self.startup_seconds:.1f}s")
        return info

    def _check_bugs(self) -> None:
        """Unknown bug names fail here, not as five services dying at start."""
        if not self.bugs:
            return
        try:
            from payments.bugs import BUGS
        except ImportError:
            return
        unknown = sorted(set(self.bugs) - set(BUGS))
        if unknown:
            raise StackError(f"unknown bug(s) {', '.join(unknown)}; known: {', '.join(sorted(BUGS))}")

    def _start_all(self) -> StackInfo:
        if self.run_dir is None:
            self.run_dir = self._temp_dir("run")
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.state.run_dir = str(self.run_dir)
        self.state.save()

        self._step("starting PostgreSQL")
        self.primary = EmbeddedPostgres(base_dir=self._temp_dir("pg"), tie_to_parent=True,
                                        extra_conf={"wal_keep_size": "'256MB'"})
        self._guarded(self.primary.start, "postgres", lambda: self.primary)

        self._step("starting the fault proxy")
        self._start_proxy()

        self._step("starting Redis")
        self.redis = EmbeddedRedis(base_dir=self._temp_dir("redis"), tie_to_parent=True)
        self._guarded(self.redis.start, "redis", lambda: self.redis)

        ports = {"postgres": self.primary.port, "redis": self.redis.port,
                 "replica": free_port(), "risk": free_port()}
        from faultline.proxy.client import ProxyClient

        client = ProxyClient(self.proxy_url)
        for name, what in _UPSTREAM.items():
            got = client.create_proxy(name, listen=f"{LOOPBACK}:0",
                                      upstream=f"{LOOPBACK}:{ports[what]}")
            self.listen[name] = int(str(got["listen"]).rsplit(":", 1)[1])

        if self.with_replica:
            self._step("starting the replica (base backup through the replication proxy)")
            self.replica = EmbeddedPostgres(
                port=ports["replica"], base_dir=self._temp_dir("replica"),
                replica_of=self.primary, primary_port=self.listen["replication"],
                tie_to_parent=True)
            self._guarded(self.replica.start, "replica", lambda: self.replica)

        env = self._service_env()
        self._step("migrating and seeding")
        self._run_tool("migrate", [], env)
        out = self._run_tool("seed", self.seed_args, env)
        try:
            self.seed = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError) as exc:
            raise StackError(f"payments.seed printed no JSON: {out[-500:]!r}") from exc
        (self.run_dir / "stack.json").write_text(json.dumps(self.seed, indent=2))

        self._define_apps(env, ports["risk"])
        for app in self.apps.values():
            self._step(f"starting {app.name}")
            app.spawn()
            self._record(app.name, app.proc.pid if app.proc else None)
        for app in self.apps.values():
            app.wait_ready(self.ready_timeout)
        self._info = self._describe()
        self.state.info = self._info.to_dict()
        self.state.save()
        return self._info

    def _guarded(self, start: Callable[[], Any], name: str, server: Callable[[], Any]) -> None:
        """Start an embedded server, recording its group even when the start fails."""
        try:
            start()
        finally:
            proc = getattr(server(), "proc", None)
            self._record(name, proc.pid if proc is not None else None)

    def _start_proxy(self) -> None:
        assert self.run_dir is not None
        port = free_port()
        argv = [sys.executable, "-m", "faultline", "proxy", "serve", "--host", LOOPBACK,
                "--port", str(port), "--events-file", str(self.run_dir / "proxy-events.jsonl")]
        if self.proxy_seed is not None:
            argv += ["--seed", str(self.proxy_seed)]
        log_path = self.logs_dir / "proxy.log"
        with open(log_path, "ab") as log:
            self.proxy = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          preexec_fn=die_with_parent)
        self._record("proxy", self.proxy.pid)
        self.proxy_url = f"http://{LOOPBACK}:{port}"
        self.state.proxy_url = self.proxy_url
        deadline = time.monotonic() + 20
        while True:
            try:
                wait_for_port(port, timeout=0.5)
                return
            except Exception as exc:
                if self.proxy.poll() is None and time.monotonic() < deadline:
                    continue
                why = ("exited" if self.proxy.poll() is not None else "did not listen in 20s")
                raise StackError(f"the fault proxy {why}; last lines of {log_path}:\n"
                                 f"{_tail(log_path)}") from exc

    def _service_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAYMENTS_")}
        env.update({
            "PAYMENTS_HOST": LOOPBACK,
            "PAYMENTS_BUGS": ",".join(self.bugs),
            "PAYMENTS_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    def _run_tool(self, module: str, args: list[str], env: dict[str, str]) -> str:
        assert self.primary is not None
        res = subprocess.run([sys.executable, "-m", f"payments.{module}", *args], cwd=REPO,
                             env={**env, "PAYMENTS_DATABASE_URL": self.primary.url},
                             capture_output=True, text=True, timeout=120,
                             preexec_fn=die_with_parent)
        if res.returncode != 0:
            raise StackError(f"python -m payments.{module} failed (exit {res.returncode}):\n"
                             f"{(res.stderr or res.stdout)[-1500:]}")
        return res.stdout

    def _via(self, hop: str, server: EmbeddedPostgres | EmbeddedRedis) -> str:
        if isinstance(server, EmbeddedRedis):
            return f"redis://{LOOPBACK}:{self.listen[hop]}/0"
        return server.url_via(self.listen[hop])

    def _define_apps(self, env: dict[str, str], risk_port: int) -> None:
        assert self.primary is not None
        assert self.redis is not None
        assert self.run_dir
        own = {
            "risk": {},
            "api": {"PAYMENTS_DATABASE_URL": self._via("api_postgres", self.primary),
                    "PAYMENTS_REDIS_URL": self._via("api_redis", self.redis),
                    "PAYMENTS_RISK_URL": f"http://{LOOPBACK}:{self.listen['api_risk']}",
                    **({"PAYMENTS_REPLICA_URL": self._via("api_replica", self.primary)}
                       if self.replica is not None else {})},
            "relay": {"PAYMENTS_DATABASE_URL": self._via("relay_postgres", self.primary),
                      "PAYMENTS_REDIS_URL": self._via("relay_redis", self.redis)},
        }
        for w in ("worker-1", "worker-2"):
            own[w] = {"PAYMENTS_DATABASE_URL": self._via("worker_postgres", self.primary),
                      "PAYMENTS_REDIS_URL": self._via("worker_redis", self.redis),
                      "PAYMENTS_WORKER_NAME": w}
        for name, (module, health) in _APPS.items():
            port = risk_port if name == "risk" else free_port()
            # the services' own variables win over the caller's env only for wiring
            self.apps[name] = _App(name, module, port, health, {**env, **own[name]},
                                   self.logs_dir / f"{name}.log")

    def _describe(self) -> StackInfo:
        assert self.primary is not None
        assert self.redis is not None
        metrics = {name: f"{app.url}/metrics" for name, app in self.apps.items()}
        return StackInfo(
            api_url=self.apps["api"].url,
            database_url=self.primary.url,
            redis_url=self.redis.url,
            replica_url=self.replica.url if self.replica is not None else None,
            proxy_url=self.proxy_url,
            metrics_urls=metrics,
            hops=dict(HOPS) if self.with_replica else
            {h: p for h, p in HOPS.items() if p not in ("replication", "api_replica")},
            seed=dict(self.seed),
            pids=self.pids(),
            run_dir=str(self.run_dir),
            target="local",
        )

    # ------------------------------------------------------------ info
    def info(self) -> StackInfo:
        """Where the running stack answers (``StackError`` before ``start()``)."""
        if self._info is None:
            raise StackError("the local stack is not running")
        self._info.pids = self.pids()
        return self._info

    urls = info

    def pids(self) -> dict[str, int]:
        """Service name -> pid (= its process group) of what is running now."""
        out: dict[str, int] = {}
        for name in ("proxy", *SERVICES):
            proc = self._proc(name)
            if proc is not None and proc.poll() is None:
                out[name] = proc.pid
        return out

    def snapshot(self) -> dict[str, Any]:
        """The final-state snapshot (contracts §5), read directly (not through proxies)."""
        from payments.snapshot import take_snapshot

        info = self.info()
        return dict(asyncio.run(take_snapshot(info.database_url, info.redis_url)))

    # ------------------------------------------------------------ service control
    def _proc(self, service: str) -> subprocess.Popen[bytes] | None:
        if service == "proxy":
            return self.proxy
        server = {"postgres": self.primary, "replica": self.replica,
                  "redis": self.redis}.get(service)
        if server is not None:
            return server.proc
        app = self.apps.get(service)
        return app.proc if app is not None else None

    def _check(self, service: str) -> None:
        if self._info is None:
            raise StackError("the local stack is not running")
        if service not in SERVICES or (service == "replica" and self.replica is None):
            known = [s for s in SERVICES if s != "replica" or self.replica is not None]
            raise StackError(f"unknown service {service!r}; expected one of {', '.join(known)}")

    def kill(self, service: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the service's process group; waits for it to exit when ``sig``
        ends it (SIGKILL/SIGTERM/SIGINT/SIGQUIT)."""
        self._check(service)
        proc = self._proc(service)
        if proc is None or proc.poll() is not None:
            return
        if sig in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)  # a paused process would not exit
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                stop_group(proc.pid, signal.SIGKILL, timeout=5)
                proc.wait(timeout=5)

    def pause(self, service: str) -> None:
        """SIGSTOP the service's whole process group; returns once the kernel shows the
        group leader stopped (signal delivery is asynchronous, and a drill's timeline
        must not record a pause that has not happened yet)."""
        self._check(service)
        proc = self._proc(service)
        if proc is None or proc.poll() is not None:
            raise StackError(f"{service} is not running")
        os.killpg(proc.pid, signal.SIGSTOP)
        wait_stopped(proc.pid)

    def resume(self, service: str) -> None:
        """SIGCONT the service's whole process group."""
        self._check(service)
        proc = self._proc(service)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)

    def restart(self, service: str) -> None:
        """Stop the service gracefully (resumed first if paused) and start it again on
        the same port; returns when it answers again."""
        self._check(service)
        graceful = signal.SIGINT if service in ("postgres", "replica") else signal.SIGTERM
        self.kill(service, graceful)
        self._on_spawner(lambda: self._start_service(service))

    def _start_service(self, service: str) -> None:
        self._check(service)
        proc = self._proc(service)
        if proc is not None and proc.poll() is None:
            return
        if service in ("postgres", "replica"):
            server = self.primary if service == "postgres" else self.replica
            assert server is not None
            server.launch()
            self._record(service, server.proc.pid if server.proc else None)
        elif service == "redis":
            assert self.redis is not None
            self.redis.start()
            self._record(service, self.redis.proc.pid if self.redis.proc else None)
        else:
            app = self.apps[service]
            app.spawn()
            self._record(service, app.proc.pid if app.proc else None)
            app.wait_ready(self.ready_timeout)

    # ------------------------------------------------------------ stop
    def heal(self) -> None:
        """Remove every toxic and re-enable every proxy (the proxy's reset)."""
        if self.proxy_url and self.proxy is not None and self.proxy.poll() is None:
            from faultline.proxy.client import ProxyClient

            with contextlib.suppress(Exception):
                ProxyClient(self.proxy_url, timeout=3.0).reset()

    def stop(self) -> None:
        """Heal, then stop every process, remove temp dirs and the state file.
        Idempotent; safe after a failed start."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.heal()
            apps = [a.proc for a in self.apps.values() if a.proc is not None]
            for proc in apps:  # signal all first, then wait: they stop in parallel
                for s in (signal.SIGCONT, signal.SIGTERM):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, s)
            for proc in apps:
                stop_group(proc.pid, signal.SIGTERM, timeout=10)
                with contextlib.suppress(Exception):
                    proc.wait(timeout=1)
            for server in (self.replica, self.primary, self.redis):
                if server is not None:
                    if server.proc is not None:
                        with contextlib.suppress(ProcessLookupError):
                            os.killpg(server.proc.pid, signal.SIGCONT)
                    with contextlib.suppress(Exception):
                        server.stop()
            if self.proxy is not None:
                stop_group(self.proxy.pid, signal.SIGTERM, timeout=5)
                with contextlib.suppress(Exception):
                    self.proxy.wait(timeout=1)
            for pgid in self.state.groups.values():  # anything restarted under another pid
                stop_group(pgid, signal.SIGTERM, timeout=2)
        finally:
            self._keep_server_logs()
            for d in self.state.temp_dirs:
                shutil.rmtree(d, ignore_errors=True)
            self.state.remove()
            self._info = None
            self._spawner.shutdown(wait=False)

    def _keep_server_logs(self) -> None:
        """Copy the servers' logs out of their temp dirs into ``RUN_DIR/logs``."""
        if self.run_dir is None or str(self.run_dir) in self.state.temp_dirs:
            return
        servers = {"postgres": (self.primary, "postgres.log"),
                   "replica": (self.replica, "postgres.log"), "redis": (self.redis, "redis.log")}
        for name, (server, filename) in servers.items():
            base = getattr(server, "base_dir", None)
            if base is not None and (Path(base) / filename).exists():
                with contextlib.suppress(OSError):
                    shutil.copyfile(Path(base) / filename, self.logs_dir / f"{name}.log")

    def __enter__(self) -> StackInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_stopped(pid: int, timeout: float = 2.0) -> bool:
    """Wait until ``/proc/PID/stat`` shows the process stopped (``T``); False on timeout
    or when the process is gone."""
    deadline = time.monotonic() + timeout
    while True:
        fields = stat_fields(pid)
        if fields is None:
            return False
        if fields[0] in ("T", "t"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.002)
