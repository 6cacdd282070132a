"""Process faults: kill, pause (SIGSTOP ... SIGCONT) and restart services of the stack."""

from __future__ import annotations

import contextlib
import signal as _signal
from typing import Any, Protocol

from ._log import NemesisLog

__all__ = ["ProcessNemesis", "ServiceControl"]


class ServiceControl(Protocol):
    """What the process nemesis needs from a stack launcher."""

    def kill(self, service: str, sig: int = ...) -> None:
        """Send ``sig`` to the service's process (group)."""

    def pause(self, service: str) -> None:
        """SIGSTOP the service."""

    def resume(self, service: str) -> None:
        """SIGCONT the service."""

    def start(self, service: str) -> None:
        """Start a service that is not running (after a kill)."""

    def restart(self, service: str) -> None:
        """Stop the service gracefully and start it again."""


class ProcessNemesis:
    """Faults on services through a :class:`ServiceControl`; heal resumes every paused
    service and starts every killed one."""

    def __init__(self, services: ServiceControl, log: NemesisLog) -> None:
        self.services = services
        self.log = log
        self._active: dict[int, Any] = {}
        self._paused: set[str] = set()
        self._down: set[str] = set()

    def _value(self, index: int, fault: Any, **extra: Any) -> dict[str, Any]:
        return {"index": index, "name": fault.label, "fault": fault.kind,
                "service": fault.service, **extra}

    def start(self, index: int, fault: Any) -> None:
        """Kill, pause or restart (the restart's stop line follows when it is back)."""
        service = fault.service
        if fault.kind == "kill":
            self._active[index] = fault
            self._down.add(service)
            self.services.kill(service, int(getattr(_signal, fault.signal)))
            self.log.record("start", self._value(index, fault, signal=fault.signal))
        elif fault.kind == "pause":
            self._active[index] = fault
            self._paused.add(service)
            self.services.pause(service)
            self.log.record("start", self._value(index, fault))
        elif fault.kind == "restart":
            self.log.record("start", self._value(index, fault))
            try:
                self.services.restart(service)
            finally:
                self.log.record("stop", self._value(index, fault))
        else:
            raise ValueError(f"not a process fault: {fault.kind}")

    def stop(self, index: int) -> None:
        """Start the killed service again / resume the paused one."""
        fault = self._active.pop(index, None)
        if fault is None:
            return
        service = fault.service
        try:
            if fault.kind == "kill" and service in self._down:
                self.services.start(service)
                self._down.discard(service)
            elif fault.kind == "pause" and service in self._paused:
                self.services.resume(service)
                self._paused.discard(service)
        finally:
            self.log.record("stop", self._value(index, fault))

    @property
    def active(self) -> list[str]:
        """Labels of the faults in force."""
        return [f.label for f in self._active.values()]

    def heal_all(self) -> list[str]:
        """Every paused service resumed, every killed service started."""
        undone: list[str] = []
        for index in list(self._active):
            with contextlib.suppress(Exception):
                self.stop(index)
                undone.append(f"fault {index}")
        for service in list(self._paused):
            with contextlib.suppress(Exception):
                self.services.resume(service)
                self._paused.discard(service)
                undone.append(f"resumed {service}")
        for service in list(self._down):
            with contextlib.suppress(Exception):
                self.services.start(service)
                self._down.discard(service)
                undone.append(f"started {service}")
        return undone
