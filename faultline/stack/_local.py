"""The ``local`` launcher: a system's stack as local processes (docs/contracts.md).

``LocalStack(topology).start()`` brings up, in order: the PostgreSQL primaries and Redis
servers of the :class:`~faultline.stack.LocalTopology`; the fault proxy (a ``faultline
proxy serve`` subprocess) with one proxy per hop; the streaming replicas, whose base
backup and replication go through their replication hop; the topology's ``setup``
(migrations, seed data, written to ``RUN_DIR/stack.json`` with mode 0600); then the
apps, each reaching its dependencies only through its hops' proxies. It returns once
every app answers its health endpoint.

Every child leads its own process group (so a signal reaches its whole tree), is told
to die with us (``PR_SET_PDEATHSIG``), and is written into a state file as soon as it
runs (``faultline.stack._state``), so a later ``sweep()`` ends what a SIGKILLed owner
left. Children are spawned from one long-lived thread, since Linux sends the death
signal when the spawning *thread* ends; it also serialises start, restart and stop.
"""

from __future__ import annotations

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
from faultline.stack._launcher import StackError, StackInfo
from faultline.stack._state import StackState, stat_fields, stop_group, sweep
from faultline.stack._topology import App, LocalTopology, Postgres, Redis, Wiring

__all__ = ["LocalStack", "StackInterrupted", "stop_on_signals", "write_private"]

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


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` readable by its owner only (it holds API keys)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT
    return path


@dataclass
class _Process:
    """One app of the topology as a process, and how to (re)start it."""

    app: App
    port: int
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self.app.name

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def spawn(self) -> None:
        argv = [sys.executable if a == "{python}" else a for a in self.app.argv]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=self.app.cwd, env={**self.env, self.app.port_env: str(self.port)},
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last: int | str = "no answer"
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = None if self.proc is None else self.proc.returncode
                raise StackError(f"{self.name} exited (code {code}) during start; last lines "
                                 f"of {self.log}:\n{_tail(self.log)}")
            last = _http_status(self.url + self.app.health)
            if last == 200:
                return
            time.sleep(0.1)
        raise StackError(f"{self.name} not ready after {timeout:.0f}s (GET {self.url}"
                         f"{self.app.health} -> {last}); last lines of {self.log}:\n"
                         f"{_tail(self.log)}")


Server = EmbeddedPostgres | EmbeddedRedis


class LocalStack:
    """A system's stack as local processes, every hop through the fault proxy.

    ``with LocalStack(topology, run_dir=d) as info:`` starts it and always stops it.
    ``bugs`` reach the topology's ``env`` (the system decides how to switch them on);
    ``env`` adds/overrides every app's environment; ``proxy_seed`` seeds the fault
    proxy's decisions. Without ``run_dir`` a temp dir holds the logs (removed by
    ``stop()``). A stopped LocalStack does not start again: make a new one.
    """

    controls = frozenset({"kill", "pause", "restart"})

    def __init__(self, topology: LocalTopology, *, run_dir: str | os.PathLike[str] | None = None,
                 bugs: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 proxy_seed: int | None = None, ready_timeout: float = 60.0,
                 detached: bool = False, log: Callable[[str], None] | None = None) -> None:
        self.topology = topology
        # absolute: the children run in other directories than ours
        self.run_dir = Path(run_dir).resolve() if run_dir is not None else None
        self.bugs = [b for b in bugs if b]
        self.extra_env = dict(env or {})
        self.proxy_seed = proxy_seed
        self.ready_timeout = ready_timeout
        self.log = log or (lambda msg: None)
        self.state = StackState(detached=detached)
        self.servers: dict[str, Server] = {}
        self.proxy: subprocess.Popen[bytes] | None = None
        self.proxy_url: str | None = None
        self.apps: dict[str, _Process] = {}
        self.wiring: Wiring | None = None
        #: ports handed out for servers not listening yet: no two of them may be the same,
        #: and no kernel-chosen port may be one of them (see :meth:`_port`)
        self._reserved: set[int] = set()
        self.workload_data: dict[str, Any] = {}
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
            self.state.remember(name, pid)
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
    def start(self) -> StackInfo:
        """Start the whole stack; returns once every app answers."""
        if self._info is not None:
            return self._info
        if self._stopped:
            raise StackError("this LocalStack was stopped; make a new one to start again")
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

    def _start_all(self) -> StackInfo:
        topo = self.topology
        if self.run_dir is None:
            self.run_dir = self._temp_dir("run")
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.state.run_dir = str(self.run_dir)
        self.state.save()
        wiring = self.wiring = Wiring(run_dir=self.run_dir, bugs=list(self.bugs), topology=topo)
        for server in topo.servers:
            if isinstance(server, Postgres) and server.replica_of is not None:
                wiring.ports[server.name] = self._port()  # started after the proxies
                continue
            self._step(f"starting {server.name}")
            self._start_server(server)
            wiring.ports[server.name] = self.servers[server.name].port
        for app in topo.apps:
            wiring.ports[app.name] = self._port()

        self._step("starting the fault proxy")
        self._start_proxy()
        from faultline.proxy.client import ProxyClient

        client = ProxyClient(self.proxy_url)
        for hop in topo.hops:
            wiring.listen[hop.proxy] = self._create_hop_proxy(
                client, hop.proxy, f"{LOOPBACK}:{wiring.ports[hop.target]}")

        for server in topo.servers:
            if isinstance(server, Postgres) and server.replica_of is not None:
                self._step(f"starting {server.name} (a replica of {server.replica_of})")
                self._start_server(server)

        env = self._env()
        if topo.setup is not None:
            self._step("setting up (migrations, seed data)")
            self.workload_data = dict(topo.setup(wiring) or {})
        write_private(self.run_dir / "stack.json", json.dumps(self.workload_data, indent=2))

        for app in topo.apps:
            self.apps[app.name] = _Process(app, wiring.ports[app.name],
                                           {**env, **app.env(wiring), **self.extra_env},
                                           self.logs_dir / f"{app.name}.log")
        for proc in self.apps.values():
            self._step(f"starting {proc.name}")
            proc.spawn()
            self._record(proc.name, proc.proc.pid if proc.proc else None)
        for proc in self.apps.values():
            proc.wait_ready(self.ready_timeout)
        self._info = self._describe()
        self.state.info = self._info.to_dict()
        self.state.save()
        return self._info

    def _start_server(self, spec: Postgres | Redis) -> None:
        server: Server
        if isinstance(spec, Redis):
            server = EmbeddedRedis(base_dir=self._temp_dir(spec.name), tie_to_parent=True)
        elif spec.replica_of is None:
            server = EmbeddedPostgres(base_dir=self._temp_dir(spec.name), tie_to_parent=True,
                                      database=spec.database, extra_conf=dict(spec.conf),
                                      hba=list(spec.hba))
        else:
            assert self.wiring is not None
            primary = self.servers[spec.replica_of]
            assert isinstance(primary, EmbeddedPostgres)
            via = self.wiring.listen.get(spec.replication_hop or "", primary.port)
            server = EmbeddedPostgres(port=self.wiring.ports[spec.name],
                                      base_dir=self._temp_dir(spec.name), replica_of=primary,
                                      primary_port=via, tie_to_parent=True,
                                      database=spec.database, extra_conf=dict(spec.conf))
        self.servers[spec.name] = server
        try:
            server.start()
        finally:
            self._record(spec.name, server.proc.pid if server.proc is not None else None)

    def _port(self) -> int:
        """A free port for a server that binds it later, distinct from every port
        reserved so far. A port the kernel handed out and we closed is free again at
        once: before, an app's port could come back as a hop's listen port (the proxy
        then refused the hop as a loop into itself) or as another app's port."""
        while True:
            port = free_port()
            if port not in self._reserved:
                self._reserved.add(port)
                return port

    def _create_hop_proxy(self, client: Any, name: str, upstream: str) -> int:
        """Create the hop's proxy on a reserved port; another process may take a port
        between our choosing and the proxy's binding it, so a refusal is tried again
        on another port (three times)."""
        from faultline.proxy.client import ProxyAPIError

        for attempt in range(3):
            port = self._port()
            try:
                client.create_proxy(name, listen=f"{LOOPBACK}:{port}", upstream=upstream)
                return port
            except ProxyAPIError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _start_proxy(self) -> None:
        assert self.run_dir is not None
        port = self._port()
        argv = [sys.executable, "-m", "faultline", "proxy", "serve", "--host", LOOPBACK,
                "--port", str(port), "--events-file", str(self.logs_dir / "proxy-events.jsonl")]
        if self.proxy_seed is not None:
            argv += ["--seed", str(self.proxy_seed)]
        log_path = self.logs_dir / "proxy.log"
        with open(log_path, "ab") as log:
            self.proxy = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
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

    def _env(self) -> dict[str, str]:
        """The environment every app and setup tool gets: ours, the topology's, the caller's."""
        assert self.wiring is not None
        prefix = self.topology.clean_env_prefix
        env = {k: v for k, v in os.environ.items() if not (prefix and k.startswith(prefix))}
        env.update(self.topology.env(self.wiring))
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        return env

    def _describe(self) -> StackInfo:
        assert self.wiring is not None
        topo = self.topology
        metrics = {p.name: f"{p.url}{p.app.metrics}" for p in self.apps.values()
                   if p.app.metrics}
        return StackInfo(
            system=topo.system,
            target="local",
            base_url=self.apps[topo.entry].url,
            proxy_url=self.proxy_url,
            hops={h.name: h.proxy for h in topo.hops},
            services=list(topo.service_names),
            metrics_urls=metrics,
            endpoints=dict(topo.endpoints(self.wiring)),
            workload_data=dict(self.workload_data),
            pids=self.pids(),
            run_dir=str(self.run_dir),
        )

    # ------------------------------------------------------------ info
    def info(self) -> StackInfo:
        """Where the running stack answers (``StackError`` before ``start()``)."""
        if self._info is None:
            raise StackError("the local stack is not running")
        self._info.pids = self.pids()
        return self._info

    def pids(self) -> dict[str, int]:
        """Service name -> pid (= its process group) of what is running now."""
        out: dict[str, int] = {}
        for name in ("proxy", *self.topology.service_names):
            proc = self._proc(name)
            if proc is not None and proc.poll() is None:
                out[name] = proc.pid
        return out

    # ------------------------------------------------------------ service control
    def _proc(self, service: str) -> subprocess.Popen[bytes] | None:
        if service == "proxy":
            return self.proxy
        server = self.servers.get(service)
        if server is not None:
            return server.proc
        app = self.apps.get(service)
        return app.proc if app is not None else None

    def _check(self, service: str) -> None:
        if self._info is None:
            raise StackError("the local stack is not running")
        if service not in self.topology.service_names:
            raise StackError(f"unknown service {service!r}; expected one of "
                             f"{', '.join(self.topology.service_names)}")

    def kill(self, service: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to the service's process group; waits for it to exit when ``sig``
        ends it (SIGKILL/SIGTERM/SIGINT/SIGQUIT). Returns the processes signalled."""
        self._check(service)
        proc = self._proc(service)
        if proc is None or proc.poll() is not None:
            return 0
        reached = len(group_members(proc.pid))
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
        return reached

    def pause(self, service: str) -> int:
        """SIGSTOP the service's whole process group; returns once the kernel shows the
        group leader stopped (signal delivery is asynchronous, and a drill's timeline
        must not record a pause that has not happened yet)."""
        self._check(service)
        proc = self._proc(service)
        if proc is None or proc.poll() is not None:
            raise StackError(f"{service} is not running")
        reached = len(group_members(proc.pid))
        os.killpg(proc.pid, signal.SIGSTOP)
        wait_stopped(proc.pid)
        return reached

    def resume(self, service: str) -> int:
        """SIGCONT the service's whole process group."""
        self._check(service)
        proc = self._proc(service)
        if proc is None or proc.poll() is not None:
            return 0
        reached = len(group_members(proc.pid))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGCONT)
        return reached

    def restart(self, service: str) -> None:
        """Stop the service gracefully (resumed first if paused) and start it again on
        the same port; returns when it answers again."""
        self._check(service)
        graceful = signal.SIGINT if isinstance(self.servers.get(service),
                                               EmbeddedPostgres) else signal.SIGTERM
        self.kill(service, graceful)
        self.start_service(service)

    def start_service(self, service: str) -> None:
        """Start a service that is not running (after a kill), on its old port."""
        self._check(service)
        self._on_spawner(lambda: self._start_service(service))

    def _start_service(self, service: str) -> None:
        proc = self._proc(service)
        if proc is not None and proc.poll() is None:
            return
        server = self.servers.get(service)
        if isinstance(server, EmbeddedPostgres):
            server.launch()
            self._record(service, server.proc.pid if server.proc else None)
        elif isinstance(server, EmbeddedRedis):
            server.start()
            self._record(service, server.proc.pid if server.proc else None)
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
            # replicas before their primaries (they were started after them)
            for server in reversed(list(self.servers.values())):
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
                if self.state.still_ours(pgid):
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
        for name, server in self.servers.items():
            filename = "postgres.log" if isinstance(server, EmbeddedPostgres) else "redis.log"
            base = server.base_dir
            if base is not None and (Path(base) / filename).exists():
                with contextlib.suppress(OSError):
                    shutil.copyfile(Path(base) / filename, self.logs_dir / f"{name}.log")

    def __enter__(self) -> StackInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def group_members(pgid: int) -> list[int]:
    """The pids of process group ``pgid`` (from /proc; the leader alone if unreadable)."""
    members: list[int] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            fields = stat_fields(int(entry.name))
            if fields is not None and len(fields) > 2 and fields[2] == str(pgid):
                members.append(int(entry.name))
    return members or [pgid]


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
