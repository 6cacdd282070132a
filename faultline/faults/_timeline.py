"""The fault timeline of one drill, run on the monotonic clock in its own thread."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ._log import NemesisLog

__all__ = ["FaultTimeline", "TimelineStep", "plan"]


@dataclass(frozen=True, slots=True)
class TimelineStep:
    """At ``at`` seconds from the load start, ``action`` (start|stop) fault ``index``."""

    at: float
    action: str
    index: int


def plan(faults: Sequence[Any]) -> list[TimelineStep]:
    """Every start and stop of ``faults`` in time order (stops before starts at a tie, so
    back-to-back windows do not overlap). Faults without an end are healed by the runner
    when the load ends; a kill's ``restart_after`` is its stop."""
    steps: list[TimelineStep] = []
    for i, f in enumerate(faults):
        steps.append(TimelineStep(float(f.at), "start", i))
        end = f.end
        if f.kind == "kill" and getattr(f, "restart_after", None) is not None:
            end = f.at + f.restart_after
        if f.kind != "restart" and end is not None:
            steps.append(TimelineStep(float(end), "stop", i))
    return sorted(steps, key=lambda s: (s.at, s.action != "stop", s.index))


class FaultTimeline:
    """Runs :func:`plan` against the nemeses: ``network`` (toxic faults) and ``process``
    (kill, pause, restart). ``start(t0)`` begins at monotonic ``t0``; ``stop()`` ends the
    thread; ``heal_all()`` undoes whatever is still in force and is safe to call twice,
    from any exit path. A fault that cannot be injected is recorded, never fatal."""

    def __init__(self, faults: Sequence[Any], *, network: Any, process: Any, log: NemesisLog,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.faults = list(faults)
        self.network = network
        self.process = process
        self.log = log
        self.clock = clock
        self.steps = plan(self.faults)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _nemesis(self, fault: Any) -> Any:
        return self.network if fault.kind == "toxic" else self.process

    def _run(self, t0: float) -> None:
        for step in self.steps:
            delay = t0 + step.at - self.clock()
            if delay > 0 and self._stop.wait(delay):
                return
            if self._stop.is_set():
                return
            fault = self.faults[step.index]
            nemesis = self._nemesis(fault)
            try:
                with self._lock:
                    if step.action == "start":
                        nemesis.start(step.index, fault)
                    else:
                        nemesis.stop(step.index)
            except Exception as exc:  # recorded; the drill goes on and heal still runs
                msg = f"{step.action} {fault.label}: {type(exc).__name__}: {exc}"
                self.errors.append(msg)
                self.log.record("error", {"index": step.index, "name": fault.label,
                                          "fault": fault.kind, "error": msg})

    def start(self, t0: float | None = None) -> FaultTimeline:
        """Run the timeline in a daemon thread from ``t0`` (default: now)."""
        begin = self.clock() if t0 is None else t0
        self._thread = threading.Thread(target=self._run, args=(begin,), name="nemesis",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """End the schedule (a step in progress finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def active(self) -> list[str]:
        """Labels of the faults in force now."""
        out: list[str] = []
        for nemesis in (self.network, self.process):
            if nemesis is not None:
                with contextlib.suppress(Exception):
                    out += nemesis.active
        return out

    def heal_all(self) -> list[str]:
        """Stop the schedule and undo every fault (network first: a service being started
        again needs its hops)."""
        self._stop.set()
        undone: list[str] = []
        with self._lock:
            for nemesis in (self.network, self.process):
                if nemesis is None:
                    continue
                try:
                    undone += nemesis.heal_all()
                except Exception as exc:
                    self.errors.append(f"heal: {type(exc).__name__}: {exc}")
        return undone
