"""The runs in progress (``runs/.active/<runner pid>.json``), so that nothing a SIGKILLed
runner started outlives it.

A record names the runner and every process group it started (Locust, a stack's
services), each with its identity: the kernel's start time (``/proc/PID/stat``) and its
command line, plus this boot's id. Pids are reused within minutes on a busy machine, so
the sweep signals a process only when it is still the very process recorded — same
start time, same command line, same boot — and drops records of another boot. The next
``faultline run`` and ``faultline stack down`` sweep.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faultline.stack._state import stat_fields

__all__ = ["ProcessIdentity", "RunRegistry", "boot_id", "identity"]

ProcessIdentity = dict[str, Any]


def boot_id() -> str:
    """This boot's id (``/proc/sys/kernel/random/boot_id``; empty where there is none)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def identity(pid: int) -> ProcessIdentity | None:
    """``{"pid", "start", "cmd"}`` of a running process, None when it is gone."""
    fields = stat_fields(pid)
    if fields is None or len(fields) < 20:
        return None
    return {"pid": pid, "start": fields[19], "cmd": _cmdline(pid) or ""}


def same_process(recorded: ProcessIdentity) -> bool:
    """Is ``recorded`` still running as the same process (not a reused pid)?"""
    now = identity(int(recorded.get("pid") or 0))
    return (now is not None and now["start"] == recorded.get("start")
            and now["cmd"] == recorded.get("cmd"))


class RunRegistry:
    """``<runs dir>/.active``: one record per live runner."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @property
    def path(self) -> Path:
        return self.directory / f"{os.getpid()}.json"

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def _write(self, data: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, default=str))
        tmp.replace(self.path)

    def register(self, *, run_dir: str | None = None, proxy_url: str | None = None,
                 groups: list[int] = ()) -> None:  # type: ignore[assignment]
        """Create or update this runner's record; ``groups`` are process group leaders
        it started (their identity is read now)."""
        data = self._read(self.path) or {"runner": identity(os.getpid()), "boot": boot_id(),
                                         "groups": []}
        if run_dir is not None:
            data["run_dir"] = run_dir
        if proxy_url is not None:
            data["proxy_url"] = proxy_url
        for pgid in groups:
            ident = identity(pgid)
            if ident is not None:
                data["groups"].append(ident)
        self._write(data)

    def unregister(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def sweep(self, log: Callable[[str], None] = lambda m: None) -> list[str]:
        """Clean up after runners that died: heal their fault proxy and end the process
        groups they started — only those still provably theirs. Returns what was done."""
        done: list[str] = []
        entries = sorted(self.directory.glob("*.json")) if self.directory.is_dir() else []
        me = os.getpid()
        for entry in entries:
            data = self._read(entry)
            if data is None or data.get("boot") != boot_id():
                entry.unlink(missing_ok=True)  # unreadable, or of another boot: pids mean nothing
                continue
            runner = data.get("runner") or {}
            if runner.get("pid") == me or same_process(runner):
                continue  # that runner is alive: its processes are its own business
            proxy = data.get("proxy_url")
            if proxy:
                with contextlib.suppress(Exception):
                    from faultline.faults import heal_proxy
                    from faultline.proxy.client import ProxyClient

                    undone = heal_proxy(ProxyClient(proxy, timeout=2.0))
                    if undone:
                        done.append(f"healed {len(undone)} fault(s) on {proxy}")
            mine = [g for g in data.get("groups") or [] if same_process(g)]
            stale = len(data.get("groups") or []) - len(mine)
            for sig in (signal.SIGTERM, signal.SIGKILL):
                for group in mine:
                    if sig == signal.SIGKILL and not same_process(group):
                        continue  # it exited on SIGTERM (its pid may be reused already)
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(int(group["pid"]), sig)
                if sig == signal.SIGTERM and mine:
                    time.sleep(1.0)
            if mine or stale:
                done.append(f"run {data.get('run_dir', runner.get('pid'))}: ended "
                            f"{len(mine)} process group(s)"
                            + (f", left {stale} whose pid now belongs to another process"
                               if stale else ""))
            entry.unlink(missing_ok=True)
        for line in done:
            log(line)
        return done
