"""What a stack started, on disk, so that nothing outlives a killed owner.

Each running stack keeps ``<state dir>/<id>.json``: the owner's pid (and its start time,
so a reused pid is not mistaken for the owner), every process group it started, its
temp dirs and where its fault proxy answers. The file is rewritten as each part starts,
so a SIGKILL at any moment leaves a true list. :func:`sweep` ends the groups and removes
the dirs of every stack whose owner is gone; the next ``start()`` and ``faultline stack
down`` call it.

The state dir is ``$FAULTLINE_STATE_DIR`` or ``~/.cache/faultline/stacks``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["StackState", "process_alive", "stat_fields", "state_dir", "stop_group", "sweep"]


def state_dir() -> Path:
    """Where stack state files live (created on demand)."""
    raw = os.environ.get("FAULTLINE_STATE_DIR")
    path = Path(raw) if raw else Path.home() / ".cache" / "faultline" / "stacks"
    path.mkdir(parents=True, exist_ok=True)
    return path


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (state first), None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rsplit(")", 1)[1].split()


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (field 22 of /proc/pid/stat), None if gone."""
    fields = stat_fields(pid)
    return None if fields is None else fields[19]


def process_alive(pid: int, start_time: str | None = None) -> bool:
    """Whether ``pid`` runs (and, when given, is the same process that started then)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if start_time is None:
        return True
    now = _start_time(pid)
    return now is None or now == start_time


def group_alive(pgid: int) -> bool:
    """Whether any process of the group is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, sig: int = signal.SIGTERM, timeout: float = 10.0) -> None:
    """``sig`` to the whole group (woken first with SIGCONT: a stopped group ignores
    SIGTERM until continued), SIGKILL when it lingers past ``timeout``."""
    for s in (signal.SIGCONT, sig):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, s)
    deadline = time.monotonic() + timeout
    while group_alive(pgid) and time.monotonic() < deadline:
        _reap(pgid)
        time.sleep(0.05)
    if group_alive(pgid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while group_alive(pgid) and time.monotonic() < deadline:
            _reap(pgid)
            time.sleep(0.05)


def _reap(pgid: int) -> None:
    """Collect our own zombies of the group (a zombie still counts as a member)."""
    with contextlib.suppress(ChildProcessError, OSError):
        while True:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
            if pid == 0:
                return


@dataclass
class StackState:
    """One stack's record; ``save()`` after every change."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    owner_pid: int = field(default_factory=os.getpid)
    owner_start: str | None = field(default_factory=lambda: _start_time(os.getpid()))
    created: float = field(default_factory=time.time)
    run_dir: str = ""
    #: where the stack was started from (``faultline stack status/down`` act on the
    #: stacks of their own directory unless told otherwise)
    workdir: str = field(default_factory=lambda: str(Path.cwd().resolve()))
    proxy_url: str | None = None
    detached: bool = False
    #: service name -> process group id (each child leads its own group)
    groups: dict[str, int] = field(default_factory=dict)
    #: process group id -> its leader's start time (``/proc``), so that a pid reused by
    #: another process is never taken for ours
    starts: dict[str, str] = field(default_factory=dict)
    temp_dirs: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return state_dir() / f"{self.id}.json"

    def save(self) -> None:
        """Write the record atomically, readable by its owner only (it holds the
        stack's workload data: API keys)."""
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(asdict(self), indent=2, default=str))
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def owner_alive(self) -> bool:
        return process_alive(self.owner_pid, self.owner_start)

    def remember(self, name: str, pgid: int) -> None:
        """Record a process group we started, with its leader's identity."""
        self.groups[name] = pgid
        start = _start_time(pgid)
        if start is not None:
            self.starts[str(pgid)] = start

    def still_ours(self, pgid: int) -> bool:
        """Is group ``pgid`` still the one we started? Its leader alive with another
        start time means the pid was reused (never signal it); a leader that is gone
        while members remain is ours (a group id is not reused while the group lives)."""
        recorded = self.starts.get(str(pgid))
        now = _start_time(pgid)
        return recorded is None or now is None or now == recorded

    @classmethod
    def load(cls, path: Path) -> StackState:
        data = json.loads(path.read_text())
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def all(cls) -> list[StackState]:
        """Every readable state file (broken ones are deleted)."""
        out = []
        for path in sorted(state_dir().glob("*.json")):
            try:
                out.append(cls.load(path))
            except (OSError, ValueError, TypeError):
                path.unlink(missing_ok=True)
        return out

    def end(self) -> list[str]:
        """Heal the proxy, end every group, remove every temp dir and this file."""
        done: list[str] = []
        if self.proxy_url and "proxy" in self.groups and group_alive(self.groups["proxy"]):
            with contextlib.suppress(Exception):
                from faultline.proxy.client import ProxyClient

                ProxyClient(self.proxy_url, timeout=2.0).reset()
        alive = {name: g for name, g in self.groups.items()
                 if group_alive(g) and self.still_ours(g)}
        for pgid in alive.values():  # all at once first: they may depend on each other
            for s in (signal.SIGCONT, signal.SIGTERM):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, s)
        for pgid in alive.values():
            stop_group(pgid, signal.SIGTERM, timeout=5.0)
        if alive:
            done.append(f"ended {', '.join(sorted(alive))}")
        for d in self.temp_dirs:
            if Path(d).exists():
                shutil.rmtree(d, ignore_errors=True)
                done.append(f"removed {d}")
        self.remove()
        return done


def sweep() -> list[str]:
    """End the leftovers of every stack whose owner process is dead; returns what was done
    (one line per stack), empty when there was nothing to sweep."""
    done: list[str] = []
    for state in StackState.all():
        if state.owner_pid == os.getpid() or state.owner_alive():
            continue
        what = state.end()
        done.append(f"stack {state.id} (owner pid {state.owner_pid} gone): "
                    + ("; ".join(what) or "nothing left running"))
    return done
