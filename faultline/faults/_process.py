"""Process faults: kill, pause (SIGSTOP ... SIGCONT) and restart services of the stack,
through its :class:`~faultline.stack.Launcher` (local processes or containers alike).

Each fault's stop line carries its effect: the processes it reached and how long the
service was down or frozen.
"""

from __future__ import annotations

import contextlib
import signal as _signal
import time
from typing import Any

from faultline.history import NemesisLog

__all__ = ["ProcessNemesis"]


class ProcessNemesis:
    """Faults on services through a launcher; heal resumes every paused service and
    starts every killed one."""

    def __init__(self, launcher: Any, log: NemesisLog) -> None:
        self.launcher = launcher
        self.log = log
        self._active: dict[int, tuple[Any, float, int]] = {}
        self._paused: set[str] = set()
        self._down: set[str] = set()

    def _value(self, index: int, fault: Any, **extra: Any) -> dict[str, Any]:
        return {"index": index, "name": fault.label, "fault": fault.kind,
                "service": fault.service, **extra}

    def start(self, index: int, fault: Any) -> None:
        """Kill, pause or restart (a restart's stop line follows when it is back)."""
        service = fault.service
        if fault.kind not in self.launcher.controls:
            raise ValueError(f"this stack cannot {fault.kind} services")
        began = time.monotonic()
        if fault.kind == "kill":
            self._down.add(service)
            reached = self.launcher.kill(service, int(getattr(_signal, fault.signal)))
            self._active[index] = (fault, began, reached)
            self.log.record("start", self._value(index, fault, signal=fault.signal))
        elif fault.kind == "pause":
            self._paused.add(service)
            reached = self.launcher.pause(service)
            self._active[index] = (fault, time.monotonic(), reached)
            self.log.record("start", self._value(index, fault))
        elif fault.kind == "restart":
            self.log.record("start", self._value(index, fault))
            effect = {"restarts": 0, "downtime_ms": 0}
            try:
                self.launcher.restart(service)
                effect["restarts"] = 1
            finally:
                effect["downtime_ms"] = int((time.monotonic() - began) * 1000)
                self.log.record("stop", self._value(index, fault, effect=effect))
        else:
            raise ValueError(f"not a process fault: {fault.kind}")

    def stop(self, index: int) -> None:
        """Start the killed service again / resume the paused one."""
        entry = self._active.pop(index, None)
        if entry is None:
            return
        fault, began, reached = entry
        service = fault.service
        effect: dict[str, int] = {}
        try:
            if fault.kind == "kill":
                effect["processes_signalled"] = reached
                if service in self._down:
                    self.launcher.start_service(service)
                    self._down.discard(service)
                effect["downtime_ms"] = int((time.monotonic() - began) * 1000) if reached else 0
            elif fault.kind == "pause":
                effect["processes_paused"] = reached
                if service in self._paused:
                    self.launcher.resume(service)
                    self._paused.discard(service)
                effect["paused_ms"] = int((time.monotonic() - began) * 1000) if reached else 0
        finally:
            self.log.record("stop", self._value(index, fault, effect=effect))

    @property
    def active(self) -> list[str]:
        """Labels of the faults in force."""
        return [f.label for f, _, _ in self._active.values()]

    def heal_all(self) -> list[str]:
        """Every paused service resumed, every killed service started."""
        undone: list[str] = []
        for index in list(self._active):
            with contextlib.suppress(Exception):
                self.stop(index)
                undone.append(f"fault {index}")
        for service in list(self._paused):
            with contextlib.suppress(Exception):
                self.launcher.resume(service)
                self._paused.discard(service)
                undone.append(f"resumed {service}")
        for service in list(self._down):
            with contextlib.suppress(Exception):
                self.launcher.start_service(service)
                self._down.discard(service)
                undone.append(f"started {service}")
        return undone
