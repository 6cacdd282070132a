"""The fault timeline of one drill, run on the monotonic clock in its own thread.

Fixed faults start at ``at`` seconds from the load's start; triggered faults (``when``)
start once the system reaches a state — a metric crossing a bound, or a number of
completed operations — watched from ``at`` until their deadline. A fault with ``for``
heals that long after it really started; ``until`` is a fixed time; a kill's
``restart_after`` is its heal. One scheduler thread runs every step in time order
(heals before starts at a tie, so back-to-back windows do not overlap) and polls the
pending triggers every :data:`POLL` seconds.

Bringing a service back (a kill's restart, a graceful restart) waits for it to be
ready, which may take as long as the faults around it last: an api restarted while
its database hop stalls every connection is ready only once that toxic heals. Such a
step runs in a thread of its own, so the scheduler goes on healing and starting the
other faults (it used to wait in line: the toxic's heal waited for the restart, the
restart for the heal, for the launcher's whole 60 s readiness timeout — an
exploration drew exactly that). A later step on a service still coming back waits
for it, without holding up the rest.

A fault that cannot be injected is recorded (an ``error`` nemesis line), never fatal;
a trigger whose deadline passes is recorded as ``skipped`` (that fault did nothing,
which the verdict reports). ``heal_all()`` is what the runner calls on every exit path.
"""

from __future__ import annotations

import contextlib
import heapq
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from faultline.history import NemesisLog

__all__ = ["FaultTimeline", "StateProbe", "TimelineStep", "plan"]

#: seconds between two looks at the pending triggers
POLL = 0.1
#: the fault kinds the process nemesis injects
_PROCESS = ("kill", "pause", "restart")
#: seconds ``heal_all`` waits for services still coming back (the launcher's own
#: readiness timeout bounds each)
SLOW_JOIN = 90.0


class StateProbe(Protocol):
    """What triggered faults read: the system's metrics and the load's progress."""

    def metric(self, name: str) -> float | None:
        """The latest value of ``name`` (summed over services and labels), or None."""

    def operations(self) -> int:
        """Client operations completed so far."""


@dataclass(frozen=True, slots=True)
class TimelineStep:
    """At ``at`` seconds from the load start, ``action`` (start|stop) fault ``index``."""

    at: float
    action: str
    index: int


def _heal_after(fault: Any) -> float | None:
    """Seconds from its real start to its heal (``for``, a kill's ``restart_after``)."""
    if fault.kind == "restart":
        return None
    if fault.kind == "kill" and getattr(fault, "restart_after", None) is not None:
        return float(fault.restart_after)
    if fault.for_ is not None:
        return float(fault.for_)
    return None


def plan(faults: Sequence[Any]) -> list[TimelineStep]:
    """Every start and stop of the *fixed* faults, in time order (stops before starts at
    a tie). Faults without an end are healed by the runner when the load ends."""
    steps: list[TimelineStep] = []
    for i, f in enumerate(faults):
        if getattr(f, "when", None) is not None:
            continue
        steps.append(TimelineStep(float(f.at), "start", i))
        after = _heal_after(f)
        end = f.at + after if after is not None else (f.until if f.kind != "restart" else None)
        if end is not None:
            steps.append(TimelineStep(float(end), "stop", i))
    return sorted(steps, key=lambda s: (s.at, s.action != "stop", s.index))


class FaultTimeline:
    """Runs the faults against the nemeses (``nemeses``: fault kind -> nemesis).

    ``start(t0)`` begins at monotonic ``t0``; ``stop()`` ends the thread; ``heal_all()``
    undoes whatever is still in force and is safe to call twice, from any exit path.
    ``probe`` answers triggered faults (required when a fault has ``when``).
    """

    def __init__(self, faults: Sequence[Any], *, nemeses: Mapping[str, Any], log: NemesisLog,
                 probe: StateProbe | None = None, load_duration: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.faults = list(faults)
        self.nemeses = dict(nemeses)
        self.log = log
        self.probe = probe
        self.load_duration = load_duration
        self.clock = clock
        self.errors: list[str] = []
        #: index -> seconds from load start when it really started (or was skipped)
        self.started: dict[int, float] = {}
        self.skipped: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: service -> the thread bringing it back (a restart waiting for readiness)
        self._slow: dict[str, threading.Thread] = {}

    def _nemesis(self, fault: Any) -> Any:
        kind = "process" if fault.kind in _PROCESS else fault.kind
        nemesis = self.nemeses.get(kind)
        if nemesis is None:
            raise ValueError(f"this stack cannot inject {fault.kind} faults")
        return nemesis

    @staticmethod
    def _slow_step(action: str, fault: Any) -> bool:
        """Does this step wait for a service to become ready?"""
        return ((fault.kind == "kill" and action == "stop")
                or (fault.kind == "restart" and action == "start"))

    def _busy(self, fault: Any) -> bool:
        """Is the service of this process fault still coming back?"""
        if fault.kind not in _PROCESS:
            return False
        thread = self._slow.get(str(fault.target))
        return thread is not None and thread.is_alive()

    def _failed(self, action: str, index: int, exc: Exception) -> None:
        fault = self.faults[index]
        msg = f"{action} {fault.label}: {type(exc).__name__}: {exc}"
        self.errors.append(msg)
        self.log.record("error", {"index": index, "name": fault.label,
                                  "fault": fault.kind, "error": msg})

    def _do(self, action: str, index: int) -> bool:
        fault = self.faults[index]
        try:
            with self._lock:
                if self._stop.is_set():
                    return False
                nemesis = self._nemesis(fault)
                if self._slow_step(action, fault):
                    self._in_background(nemesis, action, index)
                elif action == "start":
                    nemesis.start(index, fault)
                else:
                    nemesis.stop(index)
            return True
        except Exception as exc:  # recorded; the drill goes on and heal still runs
            self._failed(action, index, exc)
            return False

    def _in_background(self, nemesis: Any, action: str, index: int) -> None:
        fault = self.faults[index]

        def step() -> None:
            try:  # not under the lock: the other faults go on meanwhile
                if action == "start":
                    nemesis.start(index, fault)
                else:
                    nemesis.stop(index)
            except Exception as exc:
                self._failed(action, index, exc)

        thread = threading.Thread(target=step, name=f"nemesis-{fault.target}", daemon=True)
        self._slow[str(fault.target)] = thread
        thread.start()

    def _join_slow(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self._slow.values()):
            thread.join(max(0.0, deadline - time.monotonic()))

    def _condition(self, trigger: Any) -> bool:
        if self.probe is None:
            return False
        if trigger.operations is not None:
            return bool(self.probe.operations() >= trigger.operations)
        value = self.probe.metric(trigger.metric)
        if value is None:
            return False
        if trigger.above is not None:
            return bool(value > trigger.above)
        return bool(value < trigger.below)

    def _run(self, t0: float) -> None:
        queue: list[tuple[float, int, int, str]] = [
            (s.at, s.action != "stop", s.index, s.action) for s in plan(self.faults)]
        heapq.heapify(queue)
        end = self.load_duration if self.load_duration is not None else float("inf")
        waiting = {i: f for i, f in enumerate(self.faults) if f.when is not None}
        while not self._stop.is_set() and (queue or waiting):
            now = self.clock() - t0
            for index, fault in list(waiting.items()):
                if now < fault.at:
                    continue
                deadline = fault.when.deadline if fault.when.deadline is not None else end
                if self._condition(fault.when):
                    del waiting[index]
                    heapq.heappush(queue, (now, 1, index, "start"))
                elif now >= deadline:
                    del waiting[index]
                    reason = (f"{fault.when.describe()} did not happen between {fault.at:g}s "
                              f"and {deadline:g}s")
                    self.skipped[index] = reason
                    self.log.record("skipped", {"index": index, "name": fault.label,
                                                "fault": fault.kind, "reason": reason})
            deferred = []
            held: set[str] = set()  # services with a step deferred: their later ones wait too
            while queue and queue[0][0] <= self.clock() - t0:
                at, order, index, action = heapq.heappop(queue)
                fault = self.faults[index]
                if self._busy(fault) or (fault.kind in _PROCESS and str(fault.target) in held):
                    deferred.append((at, order, index, action))  # still coming back
                    held.add(str(fault.target))
                    continue
                if not self._do(action, index) or action != "start":
                    continue
                self.started[index] = self.clock() - t0
                fault = self.faults[index]
                after = _heal_after(fault)
                if after is not None and fault.when is not None:
                    heapq.heappush(queue, (self.started[index] + after, 0, index, "stop"))
            for item in deferred:
                heapq.heappush(queue, item)
            wake = queue[0][0] - (self.clock() - t0) if queue else POLL
            if deferred:  # due already, waiting for a service: look again soon, not in a spin
                wake = POLL
            elif waiting:
                wake = min(wake, POLL)
            if self._stop.wait(max(0.0, wake)):
                return

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
        for nemesis in self.nemeses.values():
            with contextlib.suppress(Exception):
                out += nemesis.active
        return out

    def heal_all(self) -> list[str]:
        """Stop the schedule and undo every fault (network first: a service being started
        again needs its hops)."""
        self._stop.set()
        undone: list[str] = []
        order = sorted(self.nemeses, key=lambda k: {"toxic": 0, "action": 1}.get(k, 2))
        with self._lock:
            for kind in order:
                if kind == "process":  # a service still coming back first gets there
                    self._join_slow(SLOW_JOIN)
                try:
                    undone += self.nemeses[kind].heal_all()
                except Exception as exc:
                    self.errors.append(f"heal: {type(exc).__name__}: {exc}")
        return undone
