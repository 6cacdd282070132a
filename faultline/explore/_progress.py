"""The one live line of an exploration: iteration, drills run, failures, shrink steps.

Drills run in the foreground (the engine installs its signal handlers in the main
thread), so the line is redrawn by a small daemon thread: in place every second on a
terminal, as a new line every few seconds otherwise (CI logs keep a trace, not a
flood).
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

__all__ = ["ExploreProgress"]

#: seconds between two lines when stderr is not a terminal
PLAIN_EVERY = 5.0


@dataclass
class _State:
    phase: str = "explore"
    iteration: int = 0
    budget: str = "?"
    drills: int = 0
    failures: int = 0
    steps: int = 0
    accepted: int = 0
    current: str = ""
    size: str = ""


class ExploreProgress:
    """``update(**fields)`` changes the line; ``say(msg)`` prints a line above it."""

    def __init__(self, err: TextIO | None = None, *, live: bool = True) -> None:
        self.err = err or sys.stderr
        self.live = live
        self.tty = hasattr(self.err, "isatty") and self.err.isatty()
        self.state = _State()
        self.began = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._open = False
        self._last = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> ExploreProgress:
        if self.live:
            self._thread = threading.Thread(target=self._tick, name="explore-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        self.draw(force=True)
        with self._lock:
            if self._open:
                self.err.write("\n")
                self.err.flush()
                self._open = False

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            self.draw()

    def text(self) -> str:
        s = self.state
        elapsed = int(time.monotonic() - self.began)
        parts = [f"explore {s.phase}", f"iteration {s.iteration}/{s.budget}",
                 f"drills run {s.drills}", f"failures {s.failures}"]
        if s.steps:
            parts.append(f"shrink steps {s.steps} ({s.accepted} kept{', ' + s.size if s.size else ''})")
        parts.append(f"{elapsed // 60}m{elapsed % 60:02d}s")
        if s.current:
            parts.append(s.current)
        return "  ".join(parts)

    def draw(self, *, force: bool = False) -> None:
        """Redraw now (rate-limited when not a terminal)."""
        if not self.live:
            return
        now = time.monotonic()
        with self._lock:
            if not self.tty and not force and now - self._last < PLAIN_EVERY:
                return
            self._last = now
            if self.tty:
                self.err.write("\r\033[K" + self.text()[:200])
                self._open = True
            else:
                self.err.write(self.text() + "\n")
            self.err.flush()

    def update(self, **fields: object) -> None:
        for key, value in fields.items():
            setattr(self.state, key, value)
        self.draw(force=self.tty)

    def say(self, msg: str) -> None:
        with self._lock:
            if self._open:
                self.err.write("\r\033[K")
                self._open = False
            self.err.write(f"faultline explore: {msg}\n")
            self.err.flush()
        self.draw(force=self.tty)
