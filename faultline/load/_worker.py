"""``faultline load-worker``: a Locust worker on a load machine, for a master elsewhere.

The worker runs the system's locustfile (its profile's workload) as ``locust
--worker``; everything about the drill (load, seed, client timeout, the workload data,
the system's address) comes from the master with its spawn messages, and the worker's
history goes back to the master over the same channel (``faultline.load.client._relay``):
the load machine needs Faultline and the system's package installed, and the master's
address, nothing else.

Bounds: if the master has not answered within ``connect_timeout`` the worker is stopped
with a clear :class:`LoadError`; once connected it runs until the master ends the run
(Locust's quit message), until the master stays silent for 15 s, or ``max_time``,
whichever comes first.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ._locust import MASTER_PORT, MAX_DURATION, LoadError

__all__ = ["LocustWorker"]


@dataclass
class LocustWorker:
    """One Locust worker process for the master at ``master_host:master_port``."""

    master_host: str
    #: the workload's Locust file (``SystemProfile.workload.locustfile``)
    locustfile: Path
    master_port: int = MASTER_PORT
    #: seconds to wait for the master to answer
    connect_timeout: float = 60.0
    #: seconds the whole run may take at most (the worker waits for a drill to start)
    max_time: float = MAX_DURATION + 3600.0

    def __post_init__(self) -> None:
        if not self.master_host or any(c.isspace() for c in self.master_host):
            raise LoadError(f"--master-host {self.master_host!r} is not a host")
        if not 1 <= self.master_port <= 65535:
            raise LoadError(f"--master-port {self.master_port} is not a port")
        if not 0 < self.connect_timeout <= 24 * 3600:
            raise LoadError("--connect-timeout must be positive")

    @property
    def address(self) -> str:
        return f"{self.master_host}:{self.master_port}"

    def command(self) -> list[str]:
        """The Locust command line (headless; the master decides the rest)."""
        return [sys.executable, "-m", "locust", "-f", str(self.locustfile), "--worker",
                "--master-host", self.master_host, "--master-port", str(self.master_port),
                "--headless", "--only-summary", "--loglevel", "WARNING",
                "--exit-code-on-error", "0"]

    def environment(self, ready: Path) -> dict[str, str]:
        # no FAULTLINE_HISTORY_DIR: that is what makes the locustfile send its history
        # to the master; FAULTLINE_CLOCK_SKEW_NS (tests only) passes through
        drop = ("FAULTLINE_HISTORY_DIR", "FAULTLINE_PARENT_PID", "FAULTLINE_WORKER_READY")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("LOCUST_") and k not in drop}
        env.update({"FAULTLINE_WORKER_READY": str(ready),
                    "FAULTLINE_PARENT_PID": str(os.getpid()), "PYTHONUNBUFFERED": "1"})
        return env

    def run(self, say: Callable[[str], None] = lambda _msg: None) -> int:
        """Connect, serve one drill, return Locust's exit code; :class:`LoadError` when
        the master cannot be reached or the run goes past ``max_time``."""
        with tempfile.TemporaryDirectory(prefix="faultline-worker-") as tmp:
            ready = Path(tmp) / "connected"
            try:
                proc = subprocess.Popen(self.command(), env=self.environment(ready),
                                        stdin=subprocess.DEVNULL, start_new_session=True,
                                        cwd=tmp)
            except OSError as exc:
                raise LoadError(f"could not start locust: {exc}") from exc
            try:
                return self._serve(proc, ready, say)
            finally:
                _stop(proc)

    def _serve(self, proc: subprocess.Popen[bytes], ready: Path,
               say: Callable[[str], None]) -> int:
        began = time.monotonic()
        say(f"connecting to the Locust master at {self.address} "
            f"(up to {self.connect_timeout:g}s)")
        while not ready.exists():
            code = proc.poll()
            if code is not None:
                raise LoadError(f"the Locust worker ended (exit {code}) before the master at "
                                f"{self.address} answered")
            if time.monotonic() - began > self.connect_timeout:
                raise LoadError(
                    f"could not reach the Locust master at {self.address} within "
                    f"{self.connect_timeout:g}s: is `faultline run --master` running there, "
                    f"and can this machine reach that port (e.g. through `ssh -L`)?")
            time.sleep(0.1)
        say(f"connected to the Locust master at {self.address}; running until it ends the drill")
        try:
            code = proc.wait(timeout=max(1.0, self.max_time - (time.monotonic() - began)))
        except subprocess.TimeoutExpired:
            raise LoadError(f"the worker ran past --max-time {self.max_time:g}s") from None
        say(f"the master ended the drill (locust exit {code})")
        return code


def _stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the worker's process group, SIGKILL it after ``grace`` (idempotent)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)
