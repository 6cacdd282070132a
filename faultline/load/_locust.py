"""Run a workload's locustfile headless, as a subprocess, and follow its history.

Locust is never imported here: it monkey-patches the whole process with gevent, which
would break the runner's threads and asyncio. The subprocess gets everything through
its environment (see :mod:`faultline.load.client.user`) and writes one history file per
Locust process into ``history_dir``; :func:`faultline.history.merge_histories` joins them.

Bounds: only a ``127.0.0.1`` target is accepted; the run ends by the load shape at the
scenario's duration, Locust's own ``--run-time`` a little later, and a hard kill of the
process group after that, whatever happens.

With a :class:`LocustMaster`, the subprocess is a Locust master that runs no users
itself: it waits (bounded) for ``expect_workers`` workers, which
``faultline load-worker`` starts on other machines, drives the shape, and writes the
history its workers send over Locust's channel into ``history_dir``
(``faultline.load.client._relay``), one file per worker, on this machine's clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["LoadError", "LoadProgress", "LocustMaster", "LocustRun", "check_target"]

#: upper bounds on what one drill may ask of this machine
MAX_USERS = 2000
MAX_DURATION = 6 * 3600.0
#: seconds Locust gets after the shape ends before it is stopped, then killed
GRACE = 10.0
#: Locust's default master port
MASTER_PORT = 5557
#: seconds a master waits for its last history lines (``history_relay.FINISH_TIMEOUT``)
FINISH_WAIT = 10.0


class LoadError(RuntimeError):
    """The load could not be started or was refused (the message says why)."""


def check_target(url: str) -> str:
    """``url`` if its host is 127.0.0.1; otherwise :class:`LoadError` (drills only ever
    load a stack on this machine)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname != "127.0.0.1":
        raise LoadError(f"refusing to load {url!r}: drills only target http://127.0.0.1:PORT")
    return url.rstrip("/")


@dataclass(frozen=True, slots=True)
class LocustMaster:
    """Run the load as a Locust master for workers on other machines.

    The master binds ``bind_host:bind_port``: 127.0.0.1 by default, which remote workers
    reach through a tunnel (``ssh -L``). Locust's master/worker protocol has no
    authentication and no encryption: whoever reaches a wider ``bind_host`` can join the
    drill as a worker, read its settings (the stack's seed api keys) and send history
    lines that the verdict is computed from. Widen it only on a trusted network.
    """

    expect_workers: int = 1
    bind_host: str = "127.0.0.1"
    bind_port: int = MASTER_PORT
    #: seconds to wait for every worker to connect
    workers_timeout: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.expect_workers <= 256:
            raise LoadError("--expect-workers must be between 1 and 256")
        if not 1 <= self.bind_port <= 65535:
            raise LoadError(f"--master-bind-port {self.bind_port} is not a port")
        if not 0 < self.workers_timeout <= 3600:
            raise LoadError("--workers-timeout must be between 0 and 3600 seconds")
        if not self.bind_host or any(c.isspace() for c in self.bind_host):
            raise LoadError(f"--master-bind-host {self.bind_host!r} is not a host")

    @property
    def loopback(self) -> bool:
        return self.bind_host in ("127.0.0.1", "localhost", "::1")

    def arguments(self) -> list[str]:
        """Locust's command-line arguments for this master."""
        return ["--master", "--expect-workers", str(self.expect_workers),
                "--expect-workers-max-wait", f"{self.workers_timeout:g}",
                "--master-bind-host", self.bind_host,
                "--master-bind-port", str(self.bind_port)]


@dataclass(slots=True)
class LoadProgress:
    """Counts so far (from the history files): completed operations, errors, rate."""

    operations: int = 0
    errors: int = 0
    rate: float = 0.0


@dataclass
class LocustRun:
    """One headless Locust run of ``locustfile`` against ``host``.

    ``load`` is the scenario's load as JSON (``Scenario.load.model_dump(by_alias=True)``),
    ``stack_file`` the workload data, ``history_dir`` where the history files go; the
    users' choices come from ``seed`` and their keys carry ``run_tag``. ``workers``
    > 1 runs Locust with ``--processes N`` (one master, N forked workers); ``master``
    makes it a master for remote workers instead.
    """

    host: str
    locustfile: Path
    load: dict[str, Any]
    stack_file: Path
    history_dir: Path
    seed: int = 0
    run_tag: str = ""
    probe: bool = False
    workers: int = 1
    client_timeout: float = 2.0
    log_file: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    master: LocustMaster | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    started_at: float | None = field(default=None, init=False)
    _offsets: dict[Path, int] = field(default_factory=dict, init=False)
    _progress: LoadProgress = field(default_factory=LoadProgress, init=False)
    _last: tuple[float, int] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.host = check_target(self.host)
        # Locust runs in loadtests/: a relative path would name another file there
        self.locustfile = Path(self.locustfile).resolve()
        self.stack_file = Path(self.stack_file).resolve()
        self.history_dir = Path(self.history_dir).resolve()
        if self.log_file is not None:
            self.log_file = Path(self.log_file).resolve()
        users = int(self.load.get("users", 1))
        spike = self.load.get("spike") or {}
        peak = users * float(spike.get("multiplier", 3.0)) if self.load.get("profile") == "spike" else users
        if peak > MAX_USERS:
            raise LoadError(f"{peak:g} users is more than this harness runs ({MAX_USERS})")
        if not 0 < float(self.load.get("duration", 0)) <= MAX_DURATION:
            raise LoadError(f"load duration must be between 0 and {MAX_DURATION:g}s")
        if not 1 <= self.workers <= 64:
            raise LoadError("--workers must be between 1 and 64")
        if self.master is not None and self.workers > 1:
            raise LoadError("--workers runs local processes; with --master the workers are "
                            "`faultline load-worker`s (use --expect-workers)")

    @property
    def duration(self) -> float:
        return float(self.load["duration"])

    def command(self) -> list[str]:
        """The Locust command line."""
        # the shape ends a client timeout after the duration; --run-time is the backstop
        run_time = max(1, int(self.duration + self.client_timeout + 4 + 0.999))
        cmd = [
            sys.executable, "-m", "locust", "-f", str(self.locustfile), "--headless",
            "--host", self.host, "--run-time", f"{run_time}s", "--stop-timeout", "3",
            "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
        ]
        if self.workers > 1:
            cmd += ["--processes", str(self.workers)]
        if self.master is not None:
            cmd += self.master.arguments()
        return cmd

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "FAULTLINE_"))}
        env.update({
            "FAULTLINE_LOAD": json.dumps(self.load, default=str),
            "FAULTLINE_STACK": str(self.stack_file),
            "FAULTLINE_HISTORY_DIR": str(self.history_dir),
            "FAULTLINE_SEED": str(self.seed),
            "FAULTLINE_RUN_TAG": self.run_tag,
            "FAULTLINE_PROBE": "1" if self.probe else "0",
            "FAULTLINE_CLIENT_TIMEOUT": str(self.client_timeout),
            "FAULTLINE_PARENT_PID": str(os.getpid()),
            "PYTHONUNBUFFERED": "1",
        })
        env.update(self.extra_env)
        return env

    def start(self) -> LocustRun:
        """Start Locust in its own process group; returns at once."""
        self.history_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_file or os.devnull, "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                self.command(), env=self.environment(), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                cwd=str(self.history_dir),
            )
        except OSError as exc:
            raise LoadError(f"could not start locust: {exc}") from exc
        finally:
            log.close()
        self.started_at = time.monotonic()
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for Locust to end (bounded: duration + grace unless ``timeout``); a run
        past its bound is stopped. Returns Locust's exit code."""
        if self.proc is None:
            raise LoadError("wait() before start()")
        if timeout is None:
            assert self.started_at is not None
            timeout = max(0.0, self.started_at + self.duration + self.client_timeout + GRACE
                          + self.startup_allowance - time.monotonic())
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return self.proc.wait()

    def ended(self, within: float) -> bool:
        """Wait up to ``within`` seconds for Locust to end (nothing is stopped); whether
        it has."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=within)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds (idempotent)."""
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=wait)
        # forked workers may outlive their master by a moment: end the whole group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    @property
    def startup_allowance(self) -> float:
        """Seconds the load may take to begin (a master waits for its workers) and, for
        a master, to collect its workers' last lines at the end."""
        if self.master is None:
            return 0.0
        return self.master.workers_timeout + FINISH_WAIT

    def wait_started(self, timeout: float = 30.0) -> None:
        """Return once the first history line is written; :class:`LoadError` if Locust
        ends or ``timeout`` (plus a master's ``workers_timeout``) passes first. A master
        whose workers did not all come says how many did."""
        if self.proc is None:
            raise LoadError("wait_started() before start()")
        deadline = time.monotonic() + timeout + (self.master.workers_timeout if self.master else 0)
        while not any(f.stat().st_size for f in self.history_files()):
            if not self.running() or time.monotonic() > deadline:
                if self.master is not None:
                    self.stop()
                    raise LoadError(self._missing_workers())
                raise LoadError(f"the load did not start (see {self.log_file})")
            time.sleep(0.05)

    def workers_status(self) -> dict[str, Any]:
        """A master's ``workers.json``: ``connected`` worker ids, and per remote worker
        its history file, lines, clock ``offset_ns`` and whether its ``final`` lines came."""
        try:
            return dict(json.loads((self.history_dir / "workers.json").read_text()))
        except (OSError, ValueError):
            return {}

    def connected_workers(self) -> list[str]:
        """Worker ids that reported to the master so far."""
        return list(self.workers_status().get("connected") or [])

    def unfinished_workers(self) -> list[str]:
        """Remote workers whose last lines never reached the master (lost mid-run?)."""
        remote = self.workers_status().get("remote") or {}
        return [w for w, status in remote.items() if not status.get("final")]

    def _missing_workers(self) -> str:
        assert self.master is not None
        assert self.started_at is not None
        m = self.master
        code = self.proc.poll() if self.proc is not None else None
        if code is not None and time.monotonic() - self.started_at < m.workers_timeout:
            return (f"the Locust master on {m.bind_host}:{m.bind_port} ended (exit {code}) "
                    f"before its workers came: {self._last_log_line()}")
        got = len(self.connected_workers())
        if got >= m.expect_workers:
            return (f"the Locust master's {got} worker(s) connected but no operation was "
                    f"recorded (see {self.log_file})")
        return (f"only {got} of {m.expect_workers} load worker(s) connected to the Locust "
                f"master on {m.bind_host}:{m.bind_port} within {m.workers_timeout:g}s; start "
                f"them on the load machines with `faultline load-worker --master-host HOST "
                f"--master-port {m.bind_port}` (see {self.log_file})")

    def _last_log_line(self) -> str:
        try:
            lines = Path(self.log_file or os.devnull).read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        last = next((x.strip() for x in reversed(lines) if x.strip()), "")
        return f"{last[:300]} (see {self.log_file})" if last else f"see {self.log_file}"

    def history_files(self) -> list[Path]:
        """The history files written so far."""
        return sorted(self.history_dir.glob("history-*.jsonl"))

    def progress(self) -> LoadProgress:
        """Tail the history files: completed operations, errors, operations/s (since the
        previous call)."""
        from faultline.history import is_error

        p = self._progress
        for path in self.history_files():
            offset = self._offsets.get(path, 0)
            try:
                with open(path, "rb") as fh:
                    fh.seek(offset)
                    chunk = fh.read()
            except OSError:
                continue
            end = chunk.rfind(b"\n") + 1
            self._offsets[path] = offset + end
            for raw in chunk[:end].splitlines():
                try:
                    line = json.loads(raw)
                except ValueError:
                    continue
                if line.get("type") == "invoke":
                    continue
                p.operations += 1
                if is_error(line.get("type", ""), line.get("status")):
                    p.errors += 1
        now = time.monotonic()
        if self._last is not None and now > self._last[0]:
            p.rate = (p.operations - self._last[1]) / (now - self._last[0])
        self._last = (now, p.operations)
        return LoadProgress(p.operations, p.errors, p.rate)
