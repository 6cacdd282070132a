"""Embedded PostgreSQL and Redis servers: real binaries, temp dirs, free loopback ports.

Used by the local launcher and by the test suite. When run as root, PostgreSQL runs as
the unprivileged ``nobody`` user (it refuses root); only the temp dir we create is
chowned, never a system folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "EmbeddedPostgres",
    "EmbeddedRedis",
    "ServerStartError",
    "default_signals",
    "die_with_parent",
    "find_binary",
    "free_port",
    "wait_for_port",
]

LOOPBACK = "127.0.0.1"


class ServerStartError(RuntimeError):
    """An embedded server could not be started; the message says which and why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, host: str = LOOPBACK, timeout: float = 20.0) -> None:
    """Block until something accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServerStartError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def find_binary(name: str) -> str:
    """Locate a server binary: PATH, Debian's versioned PostgreSQL dirs, the venv."""
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    venv_bin = Path(os.sys.executable).parent / name  # type: ignore[attr-defined]
    if venv_bin.exists():
        return str(venv_bin)
    raise ServerStartError(
        f"{name!r} not found: install PostgreSQL/Redis (make bootstrap does) or set its URL"
    )


_PR_SET_PDEATHSIG = 1
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux/glibc
    _LIBC = None


#: the signals a fault may send a service (and their friends): a service starts with
#: their default actions, whatever the process that started Faultline ignored
_RESET_SIGNALS = (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP,
                  signal.SIGABRT, signal.SIGUSR1, signal.SIGUSR2, signal.SIGPIPE)


def default_signals() -> None:
    """``preexec_fn``: every signal a drill may send back to its default action, none
    blocked, as a service manager starts a service.

    An ignored signal survives ``exec``: Faultline started from a script's background
    job (``faultline run ... &`` ignores SIGINT and SIGQUIT) handed that on to every
    service, and a drill's ``kill: api, signal: SIGQUIT`` then changed nothing (the
    process lived on until the launcher's 15 s wait escalated to SIGKILL). libc's
    ``signal`` is called directly: this runs in the forked child, perhaps from the
    timeline's thread, where Python's ``signal.signal`` refuses.
    """
    if _LIBC is None:
        return
    with contextlib.suppress(Exception):
        for sig in _RESET_SIGNALS:
            _LIBC.signal(int(sig), 0)  # SIG_DFL
        signal.pthread_sigmask(signal.SIG_SETMASK, [])


def die_with_parent() -> None:
    """``preexec_fn``: ask Linux to SIGKILL this child when the thread that spawned it
    dies, with the default signal actions (:func:`default_signals`).

    Runs after the setuid of ``user=``, so the setting survives the credential change.
    Elsewhere than Linux it does nothing (the launcher's sweep still covers it).
    """
    default_signals()
    if _LIBC is not None:
        with contextlib.suppress(Exception):
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _unprivileged() -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    return {"user": "nobody", "group": "nogroup", "extra_groups": []}


def _chown_for_server(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "nobody", "nogroup")


@dataclass
class EmbeddedPostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1.

    ``replica_of`` makes it a streaming replica started from a base backup of that
    primary (``primary_port`` may point at a fault proxy in front of the primary).
    """

    port: int = 0
    base_dir: Path | None = None
    replica_of: EmbeddedPostgres | None = None
    primary_port: int | None = None
    extra_conf: dict[str, str] = field(default_factory=dict)
    #: ``pg_hba.conf`` lines before the loopback ``trust`` lines
    hba: list[str] = field(default_factory=list)
    #: children die with their parent (PR_SET_PDEATHSIG); off for session-wide fixtures
    tie_to_parent: bool = False
    user: str = "faultline"
    password: str = "faultline"
    database: str = "payments"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        assert self.base_dir is not None
        return self.base_dir / "data"

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{LOOPBACK}:{self.port}/{self.database}"

    def url_via(self, port: int) -> str:
        """The same database reached through another port (a proxy's listen port)."""
        return f"postgresql://{self.user}:{self.password}@{LOOPBACK}:{port}/{self.database}"

    def start(self) -> EmbeddedPostgres:
        if not self.port:
            self.port = free_port()
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="faultline-pg-"))
        _chown_for_server(self.base_dir)
        if self.replica_of is None:
            self._initdb()
        else:
            self._basebackup()
        self.launch()
        if self.replica_of is None:
            self._create_role_and_db()
        return self

    def launch(self) -> EmbeddedPostgres:
        """Start the server on the existing data directory (also after a stop or kill)."""
        assert self.base_dir is not None
        with open(self.base_dir / "postgres.log", "ab") as log:
            self.proc = subprocess.Popen(  # type: ignore[call-overload]
                [find_binary("postgres"), "-D", str(self.data_dir), "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent if self.tie_to_parent else default_signals,
                **_unprivileged(),
            )
        try:
            wait_for_port(self.port, timeout=30)
            self._wait_ready()
        except ServerStartError as exc:
            self.stop()
            raise ServerStartError(f"PostgreSQL: {exc}; see {self.base_dir}/postgres.log") from exc
        return self

    def _run(self, args: list[str], **kw: object) -> None:
        res = subprocess.run(args, capture_output=True, **_unprivileged(), **kw)  # type: ignore[call-overload]
        if res.returncode != 0:
            raise ServerStartError(f"{args[0]} failed: {res.stderr.decode(errors='replace')[-800:]}")

    def _initdb(self) -> None:
        self._run([find_binary("initdb"), "-D", str(self.data_dir), "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--no-sync", "--locale=C"])
        conf = {
            "listen_addresses": f"'{LOOPBACK}'",
            "unix_socket_directories": "''",
            "fsync": "off",
            "synchronous_commit": "on",
            "full_page_writes": "off",
            "wal_level": "replica",
            "max_wal_senders": "10",
            "max_replication_slots": "10",
            "hot_standby": "on",
            "max_connections": "300",
            "shared_buffers": "128MB",
            "log_min_messages": "warning",
            **self.extra_conf,
        }
        with open(self.data_dir / "postgresql.conf", "a") as f:
            for k, v in conf.items():
                f.write(f"{k} = {v}\n")
        with open(self.data_dir / "pg_hba.conf", "w") as f:
            for line in self.hba:
                f.write(line.rstrip("\n") + "\n")
            f.write("host all all 127.0.0.1/32 trust\n")
            f.write("host replication all 127.0.0.1/32 trust\n")

    def _basebackup(self) -> None:
        primary = self.replica_of
        assert primary is not None
        port = self.primary_port or primary.port
        self._run([find_binary("pg_basebackup"), "-h", LOOPBACK, "-p", str(port), "-U",
                   "postgres", "-D", str(self.data_dir), "-R", "-X", "stream", "--no-sync",
                   "--checkpoint=fast"])
        with open(self.data_dir / "postgresql.auto.conf", "a") as f:
            f.write(f"port = {self.port}\n")
            f.write("hot_standby_feedback = on\n")
            for k, v in self.extra_conf.items():
                f.write(f"{k} = {v}\n")

    def _psql(self, sql: str, db: str = "postgres") -> None:
        self._run([find_binary("psql"), "-h", LOOPBACK, "-p", str(self.port), "-U",
                   "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            res = subprocess.run([find_binary("pg_isready"), "-h", LOOPBACK, "-p",
                                  str(self.port), "-U", "postgres"], capture_output=True)
            if res.returncode == 0:
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerStartError("postgres exited during start")
            time.sleep(0.1)
        raise ServerStartError("not ready")

    def _create_role_and_db(self) -> None:
        self._psql(f"CREATE ROLE {self.user} LOGIN SUPERUSER PASSWORD '{self.password}'")
        self._psql(f"CREATE DATABASE {self.database} OWNER {self.user}")

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Fast shutdown (SIGINT), then SIGKILL the group if it lingers."""
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)


@dataclass
class EmbeddedRedis:
    """A throwaway ``redis-server`` on 127.0.0.1 (AOF on, so a restart keeps streams)."""

    port: int = 0
    base_dir: Path | None = None
    appendonly: bool = True
    #: the child dies with its parent (PR_SET_PDEATHSIG); off for session-wide fixtures
    tie_to_parent: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> EmbeddedRedis:
        if not self.port:
            self.port = free_port()
        if self.base_dir is None:
            self.base_dir = Path(tempfile.mkdtemp(prefix="faultline-redis-"))
        with open(self.base_dir / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(
                [find_binary("redis-server"), "--port", str(self.port), "--bind", LOOPBACK,
                 "--dir", str(self.base_dir), "--save", "",
                 "--appendonly", "yes" if self.appendonly else "no",
                 "--appendfsync", "everysec", "--protected-mode", "yes", "--daemonize", "no"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent if self.tie_to_parent else default_signals,
            )
        try:
            wait_for_port(self.port)
        except ServerStartError as exc:
            self.stop()
            raise ServerStartError(f"Redis: {exc}; see {self.base_dir}/redis.log") from exc
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
