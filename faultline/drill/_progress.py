"""What a running drill tells the person watching it: one line per event, and a live
progress line (phase, elapsed/total, requests/s, errors, active faults, firing alerts),
redrawn in place on a terminal and every few seconds otherwise (CI logs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Terminal output of one drill (``name``): :meth:`say` and :meth:`line`."""

    def __init__(self, name: str, err: TextIO | None = None, *, live: bool = True) -> None:
        self.name = name
        self.err = err or sys.stderr
        self.live = live
        self.tty = hasattr(self.err, "isatty") and self.err.isatty()
        self._last = 0.0
        self._open = False

    def say(self, msg: str) -> None:
        """One line: ``faultline: msg`` (clears a live line first)."""
        if self._open:
            self.err.write("\r\033[K")
            self._open = False
        self.err.write(f"faultline: {msg}\n")
        self.err.flush()

    def line(self, phase: str, elapsed: float, total: float, rate: float, operations: int,
             errors: int, faults: list[str], alerts: list[str], force: bool = False) -> None:
        """The live progress line (rate-limited to every 5 s when not a terminal)."""
        if not self.live:
            return
        now = time.monotonic()
        if not self.tty and not force and now - self._last < 5.0:
            return
        self._last = now
        text = (f"[{self.name}] {phase:<8} {min(elapsed, total):5.0f}/{total:.0f}s"
                f"  {rate:6.1f} req/s  ops {operations}  errors {errors}"
                f"  faults: {', '.join(faults) or '-'}"
                + (f"  alerts: {', '.join(alerts)}" if alerts else ""))
        if self.tty:
            self.err.write("\r\033[K" + text[:200])
            self._open = True
        else:
            self.err.write(text + "\n")
        self.err.flush()

    def end_line(self) -> None:
        """Finish a live line on a terminal."""
        if self._open:
            self.err.write("\n")
            self.err.flush()
            self._open = False
