"""Stacks for drills: started once and reused by consecutive drills while healthy.

One ``faultline run`` of several scenarios (and ``faultline explore``) drills the same
system on the same target with the same bugs many times; starting PostgreSQL, a replica,
Redis and the services for each would cost most of the drill. Every drill still heals
its faults, reseeds the fault proxy with its own seed, proves the steady state first and
judges only what happened after its own baseline. A drill that ends with the stack
unhealthy (exit 3 or 4) returns it as such, and the next drill gets a fresh one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from faultline.stack import Launcher, StackError, StackInfo

__all__ = ["StackPool"]


class StackPool:
    """Hands out one started stack per (system, target, bugs); ``reuse=False`` gives
    every drill its own (stopped when the drill releases it)."""

    def __init__(self, *, reuse: bool = True) -> None:
        self.reuse = reuse
        self.key: tuple[str, str, tuple[str, ...]] | None = None
        self.launcher: Launcher | None = None
        self.info: StackInfo | None = None
        self.started_for: str | None = None

    def acquire(self, profile: Any, target: str, bugs: Sequence[str], run_dir: Path,
                log: Callable[[str], None]) -> tuple[Launcher, StackInfo, bool]:
        """A running stack; the last value says whether it was started just now."""
        key = (profile.name, target, tuple(bugs))
        if self.launcher is not None and self.key == key and self.info is not None:
            return self.launcher, self.launcher.info(), False
        self.close(log)
        launcher = profile.launcher(target, run_dir=run_dir, bugs=list(bugs))
        try:
            info = launcher.start()
        except BaseException:
            with contextlib.suppress(Exception):
                launcher.stop()
            raise
        self.key, self.launcher, self.info = key, launcher, info
        self.started_for = str(run_dir)
        return launcher, info, True

    def release(self, *, healthy: bool, log: Callable[[str], None]) -> None:
        """The drill is done with it: keep it for the next one, or stop it."""
        if not (self.reuse and healthy):
            self.close(log)

    def close(self, log: Callable[[str], None] = lambda m: None) -> None:
        """Stop the stack held (idempotent)."""
        launcher, self.launcher, self.info, self.key = self.launcher, None, None, None
        if launcher is not None:
            try:
                launcher.stop()
            except (StackError, OSError) as exc:
                log(f"stopping the stack: {exc}")
