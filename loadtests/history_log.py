"""The client history of one Locust process (docs/contracts.md §6), as JSON lines.

Each Locust process (the single local runner, or each worker of ``--processes N``)
appends to its own file ``<dir>/history-<pid>.jsonl``; the drill runner merges them by
monotonic time and re-indexes. Every line is written and flushed at once so that a
process killed mid-run still leaves a readable history (its last invoke stays open,
which the checkers count as ``info``) and the runner's progress line can tail it.

A remote load worker (``faultline load-worker``, another machine) has no access to that
directory: it gives the log a ``sink`` and its lines travel to the master over Locust's
own channel (``history_relay.py``), stamped on this process's clock.

Locust runs on gevent: greenlets only switch on I/O, so one ``write`` per line never
interleaves with another greenlet's line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

__all__ = ["CLOCK_SKEW_NS", "HistoryLog", "clock_ns"]

#: TEST ONLY: nanoseconds added to this process's clock (``FAULTLINE_CLOCK_SKEW_NS``), so
#: that a test can play a load machine whose monotonic clock is unrelated to the
#: master's. Never set it in a real drill: lines of a local process are not translated.
CLOCK_SKEW_NS = int(os.environ.get("FAULTLINE_CLOCK_SKEW_NS", "0") or 0)


def clock_ns() -> int:
    """This process's clock for the history ``time`` field: ``time.monotonic_ns()``
    (one clock for every process of one machine), plus the test-only skew."""
    return time.monotonic_ns() + CLOCK_SKEW_NS


class HistoryLog:
    """Append-only history of this process; ``invoke`` then one completion per op."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        #: when set, lines go there instead of the file (a remote worker's relay)
        self.sink: Callable[[dict[str, Any]], None] | None = None
        self._file: TextIO | None = None
        self._pid = 0
        self._index = 0

    @property
    def path(self) -> Path:
        """This process's file (Locust ``--processes`` forks after the import)."""
        return self.directory / f"history-{os.getpid()}.jsonl"

    def _out(self) -> TextIO:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the process
        return self._file

    def write(self, line: dict[str, Any]) -> dict[str, Any]:
        """Stamp ``index``, ``time`` (:func:`clock_ns`) and ``wall`` unless given; append."""
        if self._pid != os.getpid():  # a forked worker: its own file, its own index
            self._file, self._pid, self._index = None, os.getpid(), 0
        line.setdefault("time", clock_ns())
        line.setdefault("wall", time.time())
        line["index"] = self._index
        self._index += 1
        if self.sink is not None:
            self.sink(line)
            return line
        out = self._out()
        out.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
        out.flush()
        return line

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
