"""Run ``loadtests/locustfile.py`` headless, as a subprocess, and follow its history.

Locust is never imported here: it monkey-patches the whole process with gevent, which
would break the runner's threads and asyncio. The subprocess gets everything through
its environment (see the locustfile's docstring) and writes one history file per Locust
process into ``history_dir``; :func:`faultline.load.merge_histories` joins them.

Bounds: only a ``127.0.0.1`` target is accepted; the run ends by the load shape at the
scenario's duration, Locust's own ``--run-time`` a little later, and a hard kill of the
process group after that, whatever happens.
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

__all__ = ["LOCUSTFILE", "LoadError", "LoadProgress", "LocustRun", "check_target"]

#: the drills' locustfile (the repository's ``loadtests/``)
LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtests" / "locustfile.py"
#: upper bounds on what one drill may ask of this machine
MAX_USERS = 2000
MAX_DURATION = 6 * 3600.0
#: seconds Locust gets after the shape ends before it is stopped, then killed
GRACE = 10.0


class LoadError(RuntimeError):
    """The load could not be started or was refused (the message says why)."""


def check_target(url: str) -> str:
    """``url`` if its host is 127.0.0.1; otherwise :class:`LoadError` (drills only ever
    load a stack on this machine)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname != "127.0.0.1":
        raise LoadError(f"refusing to load {url!r}: drills only target http://127.0.0.1:PORT")
    return url.rstrip("/")


@dataclass(slots=True)
class LoadProgress:
    """Counts so far (from the history files): completed operations, errors, rate."""

    operations: int = 0
    errors: int = 0
    rate: float = 0.0


@dataclass
class LocustRun:
    """One headless Locust run against ``host``.

    ``load`` is the scenario's load as JSON (``Scenario.load.model_dump(by_alias=True)``),
    ``stack_file`` the seed JSON, ``history_dir`` where the history files go. ``workers``
    > 1 runs Locust with ``--processes N`` (one master, N forked workers).
    """

    host: str
    load: dict[str, Any]
    stack_file: Path
    history_dir: Path
    seed: int = 0
    workers: int = 1
    client_timeout: float = 2.0
    log_file: Path | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)
    started_at: float | None = field(default=None, init=False)
    _offsets: dict[Path, int] = field(default_factory=dict, init=False)
    _progress: LoadProgress = field(default_factory=LoadProgress, init=False)
    _last: tuple[float, int] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.host = check_target(self.host)
        users = int(self.load.get("users", 1))
        spike = self.load.get("spike") or {}
        peak = users * float(spike.get("multiplier", 3.0)) if self.load.get("profile") == "spike" else users
        if peak > MAX_USERS:
            raise LoadError(f"{peak:g} users is more than this harness runs ({MAX_USERS})")
        if not 0 < float(self.load.get("duration", 0)) <= MAX_DURATION:
            raise LoadError(f"load duration must be between 0 and {MAX_DURATION:g}s")
        if not 1 <= self.workers <= 64:
            raise LoadError("--workers must be between 1 and 64")

    @property
    def duration(self) -> float:
        return float(self.load["duration"])

    def command(self) -> list[str]:
        """The Locust command line."""
        # the shape ends a client timeout after the duration; --run-time is the backstop
        run_time = max(1, int(self.duration + self.client_timeout + 4 + 0.999))
        cmd = [
            sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless",
            "--host", self.host, "--run-time", f"{run_time}s", "--stop-timeout", "3",
            "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
        ]
        if self.workers > 1:
            cmd += ["--processes", str(self.workers)]
        return cmd

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCUST_", "FAULTLINE_"))}
        env.update({
            "FAULTLINE_LOAD": json.dumps(self.load, default=str),
            "FAULTLINE_STACK": str(self.stack_file),
            "FAULTLINE_HISTORY_DIR": str(self.history_dir),
            "FAULTLINE_SEED": str(self.seed),
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
                cwd=str(LOCUSTFILE.parent),
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
                          - time.monotonic())
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            return self.proc.wait()

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

    def history_files(self) -> list[Path]:
        """The history files written so far."""
        return sorted(self.history_dir.glob("history-*.jsonl"))

    def progress(self) -> LoadProgress:
        """Tail the history files: completed operations, errors, operations/s (since the
        previous call)."""
        from faultline.checks import is_error

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
