"""The history of a drill: its one format, its writers and its readers (Jepsen's model).

One JSON object per line of ``history.jsonl``::

    {"index": 17, "type": "invoke|ok|fail|info", "process": "w0-p123-u3", "f": "transfer",
     "time": <monotonic ns>, "wall": <epoch s>, "key": "idempotency key or null",
     "value": {...}, "status": 201, "body": {...}, "error": null, "latency_ms": 4.2}

- Every client operation is an ``invoke`` line, then exactly one completion of the same
  ``process``: ``ok`` (it definitely happened), ``fail`` (it definitely did not) or
  ``info`` (unknown: timeout, reset, 5xx after sending). An invoke without a completion
  (a killed client) counts as ``info``.
- Operations that carry an idempotency key are named by :data:`KEYED_OPERATIONS` (what
  the idempotency checkers read); others are free (``balance``, ``statement``...).
- Fault events are lines of process ``nemesis``, typed ``info``, with ``f`` = ``start`` /
  ``stop`` (or ``error``) and ``value`` = ``{"index": <fault position in the scenario>,
  "name", "fault", "hop"|"service"|"action", ..., "effect": {...} on stop}``.
- ``time`` is ``time.monotonic_ns()`` of the machine running the drill: one clock for
  the clients, the nemesis and the metrics scraper. Remote load workers' lines are
  translated onto it (and keep their own as ``worker_time``).

Writers: :class:`HistoryLog` (one per Locust process, a file of its own, flushed per
line) and :class:`NemesisLog` (the fault side). :func:`merge_histories` joins the files
of one drill by time, streaming, into ``history.jsonl``; :func:`iter_jsonl` reads it back
one line at a time.
"""

from __future__ import annotations

import heapq
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "CLOCK_SKEW_NS",
    "COMPLETIONS",
    "KEYED_OPERATIONS",
    "NEMESIS",
    "HistoryLog",
    "NemesisLog",
    "clock_ns",
    "is_error",
    "iter_jsonl",
    "merge_histories",
    "read_jsonl",
    "write_jsonl",
]

#: the process name of fault events
NEMESIS = "nemesis"
#: the types that complete an invoke
COMPLETIONS = ("ok", "fail", "info")
#: the operation names (``f``) the idempotency checkers understand: ``transfer`` (a fresh
#: key), ``replay`` (the same key and body again: a retry), ``replay_diff`` (the same key,
#: another body: must be refused). A workload records its keyed operations under these.
KEYED_OPERATIONS = frozenset({"transfer", "replay", "replay_diff"})

#: TEST ONLY: nanoseconds added to this process's clock (``FAULTLINE_CLOCK_SKEW_NS``), so
#: that a test can play a load machine whose monotonic clock is unrelated to the
#: master's. Never set it in a real drill: lines of a local process are not translated.
CLOCK_SKEW_NS = int(os.environ.get("FAULTLINE_CLOCK_SKEW_NS", "0") or 0)


def clock_ns() -> int:
    """The history clock: ``time.monotonic_ns()`` (one clock for every process of one
    machine), plus the test-only skew."""
    return time.monotonic_ns() + CLOCK_SKEW_NS


def is_error(type_: str, status: Any) -> bool:
    """Does this completion count against the error rate?

    ``info`` always does (the client cannot know); a ``fail`` does when nothing was
    answered (refused before sending), on 5xx, and on 429. Business refusals (422,
    409, insufficient funds) are correct answers, not errors.
    """
    if type_ == "info":
        return True
    if type_ == "fail":
        return status is None or status >= 500 or status == 429
    return False


def _dumps(line: dict[str, Any]) -> str:
    return json.dumps(line, separators=(",", ":"), default=str)


class HistoryLog:
    """The client history of one process: ``<dir>/history-<pid>.jsonl``, append-only.

    Every line is written and flushed at once, so a process killed mid-run still leaves
    a readable history (its last invoke stays open, which counts as ``info``) and the
    runner's progress line can tail it. A remote load worker, which cannot reach the
    run's folder, gives the log a ``sink`` instead (its lines travel to the master).
    Locust runs on gevent: greenlets only switch on I/O, so one ``write`` per line never
    interleaves with another greenlet's line.
    """

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
        out.write(_dumps(line) + "\n")
        out.flush()
        return line

    def close(self) -> None:
        """Flush and close (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None


class NemesisLog:
    """The fault side of the history: thread-safe, appended to ``path`` as it happens,
    so a run killed mid-drill still shows which faults it had injected."""

    def __init__(self, path: Path | None = None, clock: Callable[[], int] = clock_ns) -> None:
        self.path = path
        self.clock = clock
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def record(self, f: str, value: dict[str, Any]) -> dict[str, Any]:
        """Append ``{"process": "nemesis", "type": "info", "f": f, "value": value, ...}``."""
        line = {"process": NEMESIS, "type": "info", "f": f, "time": self.clock(),
                "wall": time.time(), "value": value}
        self.add(line)
        return line

    def add(self, line: dict[str, Any]) -> None:
        """Append a line built elsewhere."""
        with self._lock:
            self.lines.append(line)
            if self.path is not None:
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(_dumps(line) + "\n")


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete JSON line of ``path``, one at a time (a torn last line of a killed
    writer, or any line that is not JSON, is skipped)."""
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            raw = raw.strip()
            if not raw:
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            if isinstance(line, dict):
                yield line


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of ``path`` (see :func:`iter_jsonl`)."""
    return list(iter_jsonl(path))


def write_jsonl(path: Path, lines: Iterable[dict[str, Any]]) -> int:
    """One JSON object per line; returns how many."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(_dumps(line) + "\n")
            n += 1
    return n


def _timed(source: Path | Iterable[dict[str, Any]], n: int) -> Iterator[tuple[int, int, int, dict[str, Any]]]:
    # in-memory sources (the nemesis lines of several threads) are small: sort them
    lines = iter_jsonl(source) if isinstance(source, Path) else sorted(
        source, key=lambda line: int(line.get("time") or 0))
    for i, line in enumerate(lines):
        yield int(line.get("time") or 0), n, i, line


def merge_histories(sources: Iterable[Path | Iterable[dict[str, Any]]],
                    out: Path | None = None) -> list[dict[str, Any]] | int:
    """All lines of all sources ordered by ``time`` (stable within a source), re-indexed
    from 0. Each source (a file, or lines such as the nemesis events) is already in time
    order, as its writer stamps lines when it writes them, so this is a streaming k-way
    merge: with ``out`` the result is written there line by line and the count returned
    (memory stays flat however long the drill); without, the merged list is returned."""
    streams = [_timed(s, n) for n, s in enumerate(sources)]
    merged = heapq.merge(*streams, key=lambda t: (t[0], t[1], t[2]))

    def reindexed() -> Iterator[dict[str, Any]]:
        for index, (_, _, _, line) in enumerate(merged):
            line = dict(line)
            line["index"] = index
            yield line

    if out is not None:
        return write_jsonl(out, reindexed())
    return list(reindexed())
