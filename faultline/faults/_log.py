"""The nemesis side of the history: one ``info`` line per fault start and stop."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["NemesisLog"]


class NemesisLog:
    """Thread-safe list of nemesis lines (contracts §6), also appended to ``path`` as they
    happen so that a run killed mid-drill still shows which faults it had injected."""

    def __init__(self, path: Path | None = None, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.path = path
        self.clock = clock
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, f: str, value: dict[str, Any]) -> dict[str, Any]:
        """Append ``{"process": "nemesis", "type": "info", "f": f, "value": value, ...}``."""
        line = {"process": "nemesis", "type": "info", "f": f, "time": self.clock(),
                "wall": time.time(), "value": value}
        with self._lock:
            self.lines.append(line)
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(line, default=str) + "\n")
        return line

    def add(self, line: dict[str, Any]) -> None:
        """Append a line built elsewhere (e.g. by the container nemesis)."""
        with self._lock:
            self.lines.append(line)
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(line, default=str) + "\n")
