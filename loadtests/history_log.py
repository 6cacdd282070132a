"""The client history of one Locust process (docs/contracts.md §6), as JSON lines.

Each Locust process (the single local runner, or each worker of ``--processes N``)
appends to its own file ``<dir>/history-<pid>.jsonl``; the drill runner merges them by
monotonic time and re-indexes. Every line is written and flushed at once so that a
process killed mid-run still leaves a readable history (its last invoke stays open,
which the checkers count as ``info``) and the runner's progress line can tail it.

Locust runs on gevent: greenlets only switch on I/O, so one ``write`` per line never
interleaves with another greenlet's line.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["HistoryLog"]


class HistoryLog:
    """Append-only history file of this process; ``invoke`` then one completion per op."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._file: TextIO | None = None
        self._pid = 0
        self._index = 0

    @property
    def path(self) -> Path:
        """This process's file (Locust ``--processes`` forks after the import)."""
        return self.directory / f"history-{os.getpid()}.jsonl"

    def _out(self) -> TextIO:
        if self._pid != os.getpid():  # a forked worker: its own file, its own index
            self._file, self._pid, self._index = None, os.getpid(), 0
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - lives with the process
        return self._file

    def write(self, line: dict[str, Any]) -> dict[str, Any]:
        """Stamp ``index``, ``time`` (monotonic ns) and ``wall`` unless given; append."""
        line.setdefault("time", time.monotonic_ns())
        line.setdefault("wall", time.time())
        out = self._out()
        line["index"] = self._index
        self._index += 1
        out.write(json.dumps(line, separators=(",", ":"), default=str) + "\n")
        out.flush()
        return line

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
