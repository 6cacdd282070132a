"""Structured events: every toxic added, updated, removed or fired, every proxy change.

Each event is one JSON object ``{"seq", "ts", "mono", "event", "proxy", ...}``:
``ts`` is ``time.time()`` and ``mono`` is ``time.monotonic()`` (the drill history's
clock), so a drill can show exactly when a fault was live. Events are kept in memory
(served at ``GET /events?since=<seq>``) and appended to ``--events-file`` when given.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO, Any

__all__ = ["EventLog"]

MAX_KEPT = 100_000  # in memory; the file keeps everything


class EventLog:
    """An append-only list of events, mirrored to a JSON-lines file."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._events: list[dict[str, Any]] = []
        self._offset = 0  # seq of self._events[0]
        self._lock = threading.Lock()
        self._file: IO[str] | None = None
        if path is not None:
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        """Record one event; returns it."""
        with self._lock:
            record: dict[str, Any] = {
                "seq": self._offset + len(self._events),
                "ts": time.time(),
                "mono": time.monotonic(),
                "event": event,
                **fields,
            }
            self._events.append(record)
            if len(self._events) > MAX_KEPT:
                drop = len(self._events) - MAX_KEPT
                del self._events[:drop]
                self._offset += drop
            if self._file is not None:
                self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
                self._file.flush()
        return record

    def since(self, seq: int) -> tuple[list[dict[str, Any]], int]:
        """Events with ``seq >= seq`` and the ``seq`` to ask for next time."""
        with self._lock:
            start = max(seq - self._offset, 0)
            return list(self._events[start:]), self._offset + len(self._events)

    def close(self) -> None:
        """Close the events file."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
